"""The administrators' pages of lookups (what Fin may look up through Data Connectors): the list
with each lookup's recent calls and errors; define, edit, disable, delete; issue a token (shown
once, with the URL template to paste into the Data Connector) and revoke tokens; a lookup's
recent calls. Without JavaScript, as the rest of the inbox: a change is a CSRF-checked POST."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import Response

from findesk.connectors import repository as connector_repository
from findesk.inbox.endpoints import back, guarded, render
from findesk.inbox.security import Viewer, audit_actor
from findesk.kit.errors import Forbidden, Invalid, NotFound, Problem
from findesk.kit.http import db_of, settings_of
from findesk.kit.timeutil import utcnow
from findesk.lookups import intercom
from findesk.lookups import service as lookups
from findesk.lookups.models import KINDS
from findesk.lookups.schemas import AUDIENCES, INPUT_TYPES, TICKET_FIELDS, LookupIn
from findesk.objects import repository as object_repository

router = APIRouter(include_in_schema=False)
LOOKUPS = "/inbox/admin/lookups"
STATS_SINCE = timedelta(hours=24)
EXECUTIONS = 20  # execution results read back from Intercom, shown on a lookup's page
KIND_LABELS = {
    "object_by_external_id": "A custom object, by its external id",
    "object_by_attribute": "Custom objects whose attribute equals the input (at most 20)",
    "user_open_tickets": "The end user's open tickets",
    "conversation_ticket_state": "The conversation's ticket and its state",
}


def _require_admin(viewer: Viewer) -> None:
    if viewer.agent.role != "admin":
        raise Forbidden("Only administrators may manage lookups.")


# --- the form ---------------------------------------------------------------------------------


def _input_lines(text: str) -> list[dict[str, Any]]:
    """``name type required|optional description words`` a line, as the form's help says."""
    inputs: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split()
        if not words:
            continue
        if len(words) < 2:
            raise Invalid(f"Input line {number}: give a name and a type.")
        required = True
        rest = words[2:]
        if rest and rest[0] in ("required", "optional"):
            required = rest[0] == "required"
            rest = rest[1:]
        inputs.append(
            {
                "name": words[0],
                "type": words[1],
                "required": required,
                "description": " ".join(rest),
            }
        )
    return inputs


def _field_lines(text: str) -> list[dict[str, Any]]:
    """``name`` or ``name redacted`` a line."""
    fields: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1] != "redacted"):
            raise Invalid(f"Field line {number}: a name, then 'redacted' if it is masked.")
        fields.append({"name": words[0], "redacted": len(words) == 2})
    return fields


def _form_values(form: FormData) -> dict[str, Any]:
    """What the admin typed, as the form shows it again after a refusal."""

    def text(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    return {
        "name": text("name"),
        "description": text("description"),
        "kind": text("kind"),
        "object_type": text("object_type"),
        "attribute": text("attribute"),
        "inputs": text("inputs"),
        "fields": text("fields"),
        "summary_field": text("summary_field"),
        "user_scoped": form.get("user_scoped") == "on",
        "direct_fin_usage": form.get("direct_fin_usage") == "on",
        "audiences": [a for a in form.getlist("audiences") if isinstance(a, str)],
        "rate_limit_per_minute": text("rate_limit_per_minute"),
        "enabled": form.get("enabled") == "on",
    }


def _checked(values: dict[str, Any]) -> LookupIn:
    try:
        return LookupIn.model_validate(
            {
                **values,
                "object_type": values["object_type"] or None,
                "attribute": values["attribute"] or None,
                "summary_field": values["summary_field"] or None,
                "inputs": _input_lines(values["inputs"]),
                "fields": _field_lines(values["fields"]),
                "rate_limit_per_minute": values["rate_limit_per_minute"] or "600",
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = " ".join(str(p) for p in first["loc"])
        raise Invalid(f"The lookup is not valid: {where}: {first['msg']}.") from None


def _values_of(definition: LookupIn) -> dict[str, Any]:
    def input_line(i: Any) -> str:
        return " ".join(
            [i.name, i.type, "required" if i.required else "optional", i.description]
        ).strip()

    return {
        **definition.model_dump(),
        "object_type": definition.object_type or "",
        "attribute": definition.attribute or "",
        "summary_field": definition.summary_field or "",
        "inputs": "\n".join(input_line(i) for i in definition.inputs),
        "fields": "\n".join(
            f.name + (" redacted" if f.redacted else "") for f in definition.fields
        ),
    }


NEW_VALUES: dict[str, Any] = {
    "name": "",
    "description": "",
    "kind": "object_by_external_id",
    "object_type": "",
    "attribute": "",
    "inputs": "order_id string required The order's number, such as A-1042",
    "fields": "status",
    "summary_field": "",
    "user_scoped": True,
    "direct_fin_usage": True,
    "audiences": ["users"],
    "rate_limit_per_minute": "600",
    "enabled": True,
}


def _form_context(request: Request, viewer: Viewer, **extra: Any) -> dict[str, Any]:
    with db_of(request).read_session() as session:
        types = list(object_repository.list_types(session))
    return {
        "viewer": viewer,
        "object_types": types,
        "kinds": KINDS,
        "kind_labels": KIND_LABELS,
        "input_types": INPUT_TYPES,
        "audiences": AUDIENCES,
        "ticket_fields": TICKET_FIELDS,
        **extra,
    }


# --- pages ------------------------------------------------------------------------------------


def _list_context(request: Request, viewer: Viewer) -> dict[str, Any]:
    with db_of(request).read_session() as session:
        rows = lookups.overview(session, viewer.agent, utcnow() - STATS_SINCE)
    return {"viewer": viewer, "rows": rows, "kind_labels": KIND_LABELS}


@router.get(LOOKUPS)
async def lookups_page(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        context = await run_in_threadpool(_list_context, request, viewer)
        return render(request, "lookups.html", **context, flash=True)

    return await guarded(request, run, page=True)


@router.get(LOOKUPS + "/new")
async def new_lookup_page(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        context = await run_in_threadpool(
            _form_context, request, viewer, values=NEW_VALUES, lookup=None
        )
        return render(request, "lookup_form.html", **context)

    return await guarded(request, run, page=True)


@router.post(LOOKUPS)
async def create_lookup(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        values = _form_values(await request.form())
        db = db_of(request)

        def create() -> str:
            body = _checked(values)
            with db.transaction() as session:
                return lookups.create_lookup(session, viewer.agent, body).id

        try:
            lookup_id = await run_in_threadpool(create)
        except Problem as exc:
            context = await run_in_threadpool(
                _form_context, request, viewer, values=values, lookup=None, error=exc.detail
            )
            return render(request, "lookup_form.html", 422, **context)
        return back(f"{LOOKUPS}/{lookup_id}", notice=f"Lookup {values['name']} created.")

    return await guarded(request, run, page=False)


@router.post(LOOKUPS + "/sync")
async def sync_to_intercom(request: Request) -> Response:
    """Create, update or delete the Data Connectors in Intercom to match the lookups, then read
    their execution results back; back to the page the button was on."""

    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        form = await request.form()
        lookup_id = str(form.get("lookup_id") or "")
        to = f"{LOOKUPS}/{lookup_id}" if lookup_id.startswith("lkp_") else LOOKUPS
        settings = settings_of(request)
        if settings.intercom_access_token is None:
            return back(to, error="Set FINDESK_INTERCOM_ACCESS_TOKEN to sync with Intercom.")
        summary = await run_in_threadpool(intercom.sync, db_of(request), settings)
        if summary.ok:
            return back(to, notice=f"Synced with Intercom: {summary.describe()}.")
        failures = "; ".join(summary.failures.values())
        return back(to, error=f"Sync with Intercom: {summary.describe()}. {failures}".strip())

    return await guarded(request, run, page=False)


def _detail_context(request: Request, viewer: Viewer, lookup_id: str) -> dict[str, Any]:
    with db_of(request).read_session() as session:
        lookup = lookups.get_lookup(session, viewer.agent, lookup_id)
        object_type = lookups.object_type_of(session, lookup)
        return {
            "viewer": viewer,
            "lookup": lookup,
            "object_type": object_type,
            "kind_label": KIND_LABELS.get(lookup.kind, lookup.kind),
            "url_template": lookups.url_template(settings_of(request).base_url, lookup),
            "tokens": lookups.tokens_of(session, lookup.id),
            "calls": lookups.recent_calls(session, viewer.agent, lookup.id),
            "connector": connector_repository.get(session, lookup.id),
            "executions": connector_repository.recent_executions(session, lookup.id, EXECUTIONS),
        }


@router.get(LOOKUPS + "/{lookup_id}")
async def lookup_page(request: Request, lookup_id: str) -> Response:
    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        context = await run_in_threadpool(_detail_context, request, viewer, lookup_id)
        return render(request, "lookup.html", **context, flash=True)

    return await guarded(request, run, page=True)


@router.get(LOOKUPS + "/{lookup_id}/edit")
async def edit_lookup_page(request: Request, lookup_id: str) -> Response:
    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)

        def load() -> dict[str, Any]:
            with db_of(request).read_session() as session:
                lookup = lookups.get_lookup(session, viewer.agent, lookup_id)
                definition = lookups.as_form(lookup, lookups.object_type_of(session, lookup))
            return _form_context(request, viewer, values=_values_of(definition), lookup=lookup)

        return render(request, "lookup_form.html", **await run_in_threadpool(load))

    return await guarded(request, run, page=True)


def _edit_refused(
    request: Request, viewer: Viewer, lookup_id: str, values: dict[str, Any], error: str
) -> dict[str, Any]:
    with db_of(request).read_session() as session:
        lookup = lookups.get_lookup(session, viewer.agent, lookup_id)
    return _form_context(request, viewer, values=values, lookup=lookup, error=error)


@router.post(LOOKUPS + "/{lookup_id}")
async def update_lookup(request: Request, lookup_id: str) -> Response:
    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        values = _form_values(await request.form())
        db = db_of(request)

        def update() -> None:
            body = _checked(values)
            with db.transaction() as session:
                lookups.update_lookup(session, viewer.agent, lookup_id, body)

        try:
            await run_in_threadpool(update)
        except NotFound:
            raise
        except Problem as exc:
            context = await run_in_threadpool(_edit_refused, request, viewer, lookup_id, values,
                                              exc.detail)  # fmt: skip
            return render(request, "lookup_form.html", 422, **context)
        return back(f"{LOOKUPS}/{lookup_id}", notice="Lookup saved.")

    return await guarded(request, run, page=False)


async def _action(request: Request, lookup_id: str, act: Any, notice: str, to: str) -> Response:
    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        db = db_of(request)

        def change() -> None:
            with db.transaction() as session:
                act(session, viewer)

        try:
            await run_in_threadpool(change)
        except Problem as exc:
            return back(f"{LOOKUPS}/{lookup_id}", error=exc.detail)
        return back(to, notice=notice)

    return await guarded(request, run, page=False)


@router.post(LOOKUPS + "/{lookup_id}/disable")
async def disable_lookup(request: Request, lookup_id: str) -> Response:
    def act(session: Any, viewer: Viewer) -> None:
        lookups.set_enabled(session, viewer.agent, lookup_id, False)

    return await _action(request, lookup_id, act, "Lookup disabled: Fin's calls get 404.",
                         f"{LOOKUPS}/{lookup_id}")  # fmt: skip


@router.post(LOOKUPS + "/{lookup_id}/enable")
async def enable_lookup(request: Request, lookup_id: str) -> Response:
    def act(session: Any, viewer: Viewer) -> None:
        lookups.set_enabled(session, viewer.agent, lookup_id, True)

    return await _action(request, lookup_id, act, "Lookup enabled.", f"{LOOKUPS}/{lookup_id}")


@router.post(LOOKUPS + "/{lookup_id}/delete")
async def delete_lookup(request: Request, lookup_id: str) -> Response:
    def act(session: Any, viewer: Viewer) -> None:
        lookups.delete_lookup(session, viewer.agent, lookup_id)

    return await _action(request, lookup_id, act, "Lookup deleted.", LOOKUPS)


@router.post(LOOKUPS + "/{lookup_id}/tokens")
async def issue_token(request: Request, lookup_id: str) -> Response:
    """The new token is shown on the page this POST answers, once: it is not stored."""

    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        form = await request.form()
        label = form.get("label")
        db = db_of(request)

        def issue() -> tuple[str, dict[str, Any]]:
            with db.transaction() as session:
                lookups.get_lookup(session, viewer.agent, lookup_id)
                _, plain = lookups.issue_token(
                    session,
                    lookup_id,
                    label if isinstance(label, str) else "",
                    actor=audit_actor(request, viewer),
                )
            return plain, _detail_context(request, viewer, lookup_id)

        plain, context = await run_in_threadpool(issue)
        response = render(request, "lookup.html", **context, new_token=plain)
        return response

    return await guarded(request, run, page=False)


@router.post(LOOKUPS + "/{lookup_id}/tokens/{token_id}/revoke")
async def revoke_token(request: Request, lookup_id: str, token_id: str) -> Response:
    def act(session: Any, viewer: Viewer) -> None:
        lookups.get_lookup(session, viewer.agent, lookup_id)
        token = next((t for t in lookups.tokens_of(session, lookup_id) if t.id == token_id), None)
        if token is None:
            raise NotFound("No such token for this lookup.")
        lookups.revoke_token(session, token_id, actor=audit_actor(request, viewer))

    return await _action(request, lookup_id, act, "Token revoked: calls with it get 401.",
                         f"{LOOKUPS}/{lookup_id}")  # fmt: skip
