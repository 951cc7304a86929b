"""``/api/v1/custom_object_instances`` (Intercom's Custom Object Instances, in its shapes and its
``error.list`` errors, so that scripts written for Intercom port over), the links of instances to
end users and conversations, and ``/api/v1/custom_object_types`` (administrators). Thin:
authenticate, call the domain, shape."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, Security

from findesk.agent_api.intercom import IntercomRoute, error_doc
from findesk.agent_api.security import agent_api_router, agent_bearer, current_agent
from findesk.kit.http import PROBLEM_JSON, db_of
from findesk.objects import schemas as s
from findesk.objects import service
from findesk.objects.models import ObjectInstance, ObjectType

TAG = "Custom object instances"


instances = APIRouter(
    prefix="/api/v1/custom_object_instances",
    route_class=IntercomRoute,
    dependencies=[Security(agent_bearer)],
    tags=[TAG],
    responses={
        401: error_doc("Missing or invalid agent token (`unauthorized`)."),
        404: error_doc(
            "`not_found`: the type (“Custom object type `X` not found”), the instance "
            "(“Custom object instance not found”), or the contact or conversation."
        ),
        413: {
            "description": "The request body is larger than the limit.",
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemOut"}}},
        },
        422: error_doc("`parameter_invalid` or `parameter_not_found`, naming the `field`."),
    },
)

TypeIdentifier = Annotated[
    str,
    Path(
        min_length=1,
        max_length=255,
        description="The type's identifier, such as `Order`.",
    ),
]
InstanceId = Annotated[
    str,
    Path(min_length=1, max_length=255, description="findesk's id of the instance."),
]
ExternalId = Annotated[
    str,
    Query(min_length=1, max_length=s.EXTERNAL_ID_MAX, description="The instance's external id."),
]


def instance_view(
    instance: ObjectInstance, object_type: ObjectType | None = None
) -> s.InstanceView:
    kind = object_type or instance.object_type

    def unix(value: Any) -> int | None:
        return None if value is None else int(value.timestamp())

    return s.InstanceView(
        id=instance.id,
        type=kind.identifier,
        external_id=instance.external_id,
        external_created_at=unix(instance.external_created_at),
        external_updated_at=unix(instance.external_updated_at),
        created_at=int(instance.created_at.timestamp()),
        updated_at=int(instance.updated_at.timestamp()),
        custom_attributes=dict(instance.custom_attributes or {}),
    )


@instances.post("/{custom_object_type_identifier}", response_model=s.InstanceView)
def create_or_update_instance(
    request: Request, custom_object_type_identifier: TypeIdentifier, body: s.InstanceIn
) -> s.InstanceView:
    """Create an instance, or update the one of this type with the same `external_id`: its
    `custom_attributes` are merged (null removes one). 200 either way, as Intercom answers."""
    with db_of(request).transaction() as session:
        done = service.upsert_instance(session, custom_object_type_identifier, body)
        return instance_view(done.instance)


@instances.get("/{custom_object_type_identifier}", response_model=s.InstanceView | s.InstanceList)
def list_instances(
    request: Request,
    custom_object_type_identifier: TypeIdentifier,
    external_id: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=s.EXTERNAL_ID_MAX,
            description="The one instance with this external id (not a list).",
        ),
    ] = None,
    references_contact_id: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=255,
            description="Instances linked to this end user (findesk's id or Intercom's).",
        ),
    ] = None,
    references_conversation_id: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=255,
            description="Instances linked to this conversation (findesk's id or Intercom's).",
        ),
    ] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=s.PER_PAGE_MAX)] = 50,
) -> s.InstanceView | s.InstanceList:
    """With `external_id`, that instance (Intercom 2.14's get by external id); otherwise
    Intercom Preview's list, newest first, optionally of the instances linked to an end user
    and/or a conversation."""
    identifier = custom_object_type_identifier
    with db_of(request).read_session() as session:
        if external_id is not None:
            return instance_view(service.get_by_external_id(session, identifier, external_id))
        found = service.list_instances(
            session,
            identifier,
            contact_id=references_contact_id,
            conversation_id=references_conversation_id,
            page=page,
            per_page=per_page,
        )
        data = [instance_view(i) for i in found.instances]
    total_pages = max(1, -(-found.total // per_page))
    next_url = str(request.url.include_query_params(page=page + 1)) if page < total_pages else None
    return s.InstanceList(
        pages=s.Pages(page=page, per_page=per_page, total_pages=total_pages, next=next_url),
        total_count=found.total,
        data=data,
    )


@instances.delete("/{custom_object_type_identifier}", response_model=s.InstanceDeleted)
def delete_instance_by_external_id(
    request: Request, custom_object_type_identifier: TypeIdentifier, external_id: ExternalId
) -> s.InstanceDeleted:
    """Delete the instance with this external id (its links go with it)."""
    with db_of(request).transaction() as session:
        gone = service.delete_by_external_id(session, custom_object_type_identifier, external_id)
        return s.InstanceDeleted(object=custom_object_type_identifier, id=gone.id, deleted=True)


@instances.get("/{custom_object_type_identifier}/{id}", response_model=s.InstanceView)
def get_instance(
    request: Request,
    custom_object_type_identifier: TypeIdentifier,
    id: Annotated[
        str, Path(min_length=1, max_length=255, description="The id or the external id.")
    ],
) -> s.InstanceView:
    with db_of(request).read_session() as session:
        return instance_view(service.get_instance(session, custom_object_type_identifier, id))


@instances.delete("/{custom_object_type_identifier}/{id}", response_model=s.InstanceDeleted)
def delete_instance(
    request: Request,
    custom_object_type_identifier: TypeIdentifier,
    id: InstanceId,
) -> s.InstanceDeleted:
    """Delete the instance with this id (its links go with it)."""
    with db_of(request).transaction() as session:
        gone = service.delete_by_id(session, custom_object_type_identifier, id)
        return s.InstanceDeleted(object=custom_object_type_identifier, id=gone.id, deleted=True)


LinkedId = Annotated[
    str,
    Path(min_length=1, max_length=255, description="findesk's id, or the id Intercom gave it."),
]
LINK_PATH = "/{custom_object_type_identifier}/{id}"


def _link(kind: str, linked_id: str, instance: ObjectInstance, on: bool) -> s.InstanceLink:
    return s.InstanceLink(type=kind, id=linked_id, instance=instance_view(instance), linked=on)


@instances.put(LINK_PATH + "/contacts/{contact_id}", response_model=s.InstanceLink)
def link_contact(
    request: Request,
    custom_object_type_identifier: TypeIdentifier,
    id: InstanceId,
    contact_id: LinkedId,
) -> s.InstanceLink:
    """Link the instance (by id or external id) to an end user; again: no change. Intercom does
    this by a relationship attribute of the contact; findesk links directly."""
    with db_of(request).transaction() as session:
        user_id = service.link_user(session, custom_object_type_identifier, id, contact_id)
        instance = service.get_instance(session, custom_object_type_identifier, id)
        return _link("contact", user_id, instance, True)


@instances.delete(LINK_PATH + "/contacts/{contact_id}", response_model=s.InstanceLink)
def unlink_contact(
    request: Request,
    custom_object_type_identifier: TypeIdentifier,
    id: InstanceId,
    contact_id: LinkedId,
) -> s.InstanceLink:
    """Unlink the instance from the end user (not linked: no change)."""
    with db_of(request).transaction() as session:
        user_id = service.unlink_user(session, custom_object_type_identifier, id, contact_id)
        instance = service.get_instance(session, custom_object_type_identifier, id)
        return _link("contact", user_id, instance, False)


@instances.put(LINK_PATH + "/conversations/{conversation_id}", response_model=s.InstanceLink)
def link_conversation(
    request: Request,
    custom_object_type_identifier: TypeIdentifier,
    id: InstanceId,
    conversation_id: LinkedId,
) -> s.InstanceLink:
    """Link the instance (by id or external id) to a conversation; again: no change."""
    with db_of(request).transaction() as session:
        linked = service.link_conversation(
            session, custom_object_type_identifier, id, conversation_id
        )
        instance = service.get_instance(session, custom_object_type_identifier, id)
        return _link("conversation", linked, instance, True)


@instances.delete(LINK_PATH + "/conversations/{conversation_id}", response_model=s.InstanceLink)
def unlink_conversation(
    request: Request,
    custom_object_type_identifier: TypeIdentifier,
    id: InstanceId,
    conversation_id: LinkedId,
) -> s.InstanceLink:
    """Unlink the instance from the conversation (not linked: no change)."""
    with db_of(request).transaction() as session:
        linked = service.unlink_conversation(
            session, custom_object_type_identifier, id, conversation_id
        )
        instance = service.get_instance(session, custom_object_type_identifier, id)
        return _link("conversation", linked, instance, False)


# --- types (administrators) --------------------------------------------------------------------

types = agent_api_router(tag="Custom object types", not_found="No such custom object type.")
ADMIN_ONLY: dict[int | str, dict[str, Any]] = {
    403: {
        "description": "The calling agent is not an administrator.",
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemOut"}}},
    }
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "The identifier is taken, or (delete) the type has instances.",
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemOut"}}},
    }
}
Identifier = Annotated[str, Path(min_length=1, max_length=255)]


def type_view(object_type: ObjectType, count: int) -> s.ObjectTypeView:
    return s.ObjectTypeView(
        id=object_type.id,
        identifier=object_type.identifier,
        name=object_type.name,
        attributes=[s.AttributeDef.model_validate(a) for a in object_type.attributes],
        title_attribute=object_type.title_attribute,
        mirror_to_intercom=object_type.mirror_to_intercom,
        instance_count=count,
        created_at=object_type.created_at,
        updated_at=object_type.updated_at,
    )


@types.get("/custom_object_types", response_model=list[s.ObjectTypeView], responses=ADMIN_ONLY)
def list_types(request: Request) -> list[s.ObjectTypeView]:
    """Every type, by identifier, with how many instances each has."""
    me = current_agent(request)
    with db_of(request).read_session() as session:
        found = service.list_types(session, me)
        counts = service.instance_counts(session, found)
        return [type_view(t, counts.get(t.id, 0)) for t in found]


@types.post(
    "/custom_object_types",
    response_model=s.ObjectTypeView,
    status_code=201,
    responses={**ADMIN_ONLY, **CONFLICT},
)
def create_type(request: Request, response: Response, body: s.ObjectTypeCreate) -> s.ObjectTypeView:
    """A type and its typed attributes; `title_attribute` must be one of them."""
    me = current_agent(request)
    with db_of(request).transaction() as session:
        created = service.create_type(
            session,
            me,
            identifier=body.identifier,
            name=body.name,
            attributes=body.attributes,
            title_attribute=body.title_attribute,
            mirror_to_intercom=body.mirror_to_intercom,
        )
        view = type_view(created, 0)
    response.headers["Location"] = f"/api/v1/custom_object_types/{view.identifier}"
    return view


@types.get(
    "/custom_object_types/{identifier}", response_model=s.ObjectTypeView, responses=ADMIN_ONLY
)
def get_type(request: Request, identifier: Identifier) -> s.ObjectTypeView:
    me = current_agent(request)
    with db_of(request).read_session() as session:
        found = service.get_type_for(session, me, identifier)
        return type_view(found, service.instance_counts(session, [found]).get(found.id, 0))


@types.patch(
    "/custom_object_types/{identifier}", response_model=s.ObjectTypeView, responses=ADMIN_ONLY
)
def update_type(
    request: Request, identifier: Identifier, body: s.ObjectTypePatch
) -> s.ObjectTypeView:
    """Only the fields present change; `attributes` replaces the list; `title_attribute: null`
    shows the external id as the title."""
    me = current_agent(request)
    changes: dict[str, Any] = {}
    if body.name is not None:
        changes["name"] = body.name
    if body.attributes is not None:
        changes["attributes"] = body.attributes
    if "title_attribute" in body.model_fields_set:
        changes["title_attribute"] = body.title_attribute
    if body.mirror_to_intercom is not None:
        changes["mirror_to_intercom"] = body.mirror_to_intercom
    with db_of(request).transaction() as session:
        found = service.update_type(session, me, identifier, changes)
        return type_view(found, service.instance_counts(session, [found]).get(found.id, 0))


@types.delete(
    "/custom_object_types/{identifier}",
    status_code=204,
    responses={**ADMIN_ONLY, **CONFLICT},
)
def delete_type(request: Request, identifier: Identifier) -> Response:
    """Only a type without instances."""
    with db_of(request).transaction() as session:
        service.delete_type(session, current_agent(request), identifier)
    return Response(status_code=204)
