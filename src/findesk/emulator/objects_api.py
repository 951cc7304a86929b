"""An emulation of Intercom's Custom Object Instances API (spec 4, API 2.14 paths), served on the
AI Content emulator's app (``content_api.create_content_api`` includes it): the same bearer auth,
rate limit, request ids and ``error.list`` shape. The store is in the same database.

Where Intercom's text is silent this module decides, and says so here:

Types
    Intercom defines custom object types in its UI; the emulator knows the types it was given
    (``create_content_api(..., object_types=["Order"])``, or ``ObjectStore.define_type``).
    Any other identifier in a path is 404 ``TypeNotFound`` ("Custom object type `X` not
    found"), which is how a test provokes it. Identifiers are case-sensitive.

Instances
    ``{"type": "<identifier>", "id": "<string>", "external_id", "external_created_at",
    "external_updated_at", "created_at", "updated_at", "custom_attributes": {...}}`` (Unix
    seconds; ids are integers handed out by the store, as strings).
    ``POST /custom_object_instances/{type}`` creates or updates by ``external_id`` and answers
    200 with the instance (same id on update). ``external_id`` is required here (a non-empty
    string, 400 ``parameter_not_found``/``parameter_invalid``): without it there is no upsert
    key. ``external_created_at``/``external_updated_at``: integers or null (null or absent:
    unchanged on update). ``custom_attributes``: an object or null; when sent it **replaces**
    the attributes (a mirror sends them all; one removed at the source is removed here), absent
    or null leaves them as they are. Values must be strings, numbers, booleans, null or lists
    of strings (relationship attributes); else 400 ``parameter_invalid``.
    ``GET``/``DELETE /custom_object_instances/{type}?external_id=…``: by external id (the query
    parameter is required in 2.14: 400 ``parameter_not_found`` without it).
    ``GET /custom_object_instances/{type}/{id}``: by Intercom id, or by external id when no
    instance has that id (Intercom's parameter accepts either). ``DELETE`` with an id in the
    path: by Intercom id only. An unknown instance is 404 ``ObjectNotFound`` ("Custom object
    instance not found"). Deletes answer ``{"object": "custom_object_instance", "id": "<id>",
    "deleted": true}``.
    The Preview list (GET on the collection without ``external_id``) is not emulated.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, Request
from sqlalchemy import (
    Engine,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.types import JSON

from findesk.emulator.content_api import ApiError, json_object


class ObjectsBase(DeclarativeBase):
    metadata = MetaData()


class TypeRow(ObjectsBase):
    __tablename__ = "intercom_custom_object_types"

    identifier: Mapped[str] = mapped_column(String(255), primary_key=True)


class InstanceRow(ObjectsBase):
    __tablename__ = "intercom_custom_object_instances"
    __table_args__ = (UniqueConstraint("type_identifier", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    type_identifier: Mapped[str] = mapped_column(String(255), index=True)
    external_id: Mapped[str] = mapped_column(Text)
    external_created_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    external_updated_at: Mapped[int | None] = mapped_column(Integer, nullable=True)
    custom_attributes: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[int] = mapped_column(Integer)


@dataclass(frozen=True)
class Instance:
    id: int
    type_identifier: str
    external_id: str
    external_created_at: int | None
    external_updated_at: int | None
    custom_attributes: dict[str, Any]
    created_at: int
    updated_at: int


def _instance(row: InstanceRow) -> Instance:
    return Instance(
        id=row.id,
        type_identifier=row.type_identifier,
        external_id=row.external_id,
        external_created_at=row.external_created_at,
        external_updated_at=row.external_updated_at,
        custom_attributes=dict(row.custom_attributes or {}),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class ObjectStore:
    """Custom object types (as configured) and their instances."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        ObjectsBase.metadata.create_all(engine)
        self._clock = clock
        self._write_lock = threading.Lock()

    def define_type(self, identifier: str) -> None:
        with self._write_lock, Session(self.engine) as session, session.begin():
            if session.get(TypeRow, identifier) is None:
                session.add(TypeRow(identifier=identifier))

    def has_type(self, identifier: str) -> bool:
        with Session(self.engine) as session:
            return session.get(TypeRow, identifier) is not None

    def upsert(
        self, identifier: str, external_id: str, fields: dict[str, Any]
    ) -> tuple[Instance, bool]:
        now = int(self._clock())
        with self._write_lock, Session(self.engine) as session, session.begin():
            row = session.scalars(
                select(InstanceRow).where(
                    InstanceRow.type_identifier == identifier,
                    InstanceRow.external_id == external_id,
                )
            ).one_or_none()
            created = row is None
            if row is None:
                row = InstanceRow(
                    type_identifier=identifier,
                    external_id=external_id,
                    custom_attributes={},
                    created_at=now,
                )
                session.add(row)
            for name, value in fields.items():
                setattr(row, name, value)
            row.updated_at = now
            session.flush()
            return _instance(row), created

    def by_id(self, identifier: str, instance_id: int) -> Instance | None:
        with Session(self.engine) as session:
            row = session.get(InstanceRow, instance_id)
            if row is None or row.type_identifier != identifier:
                return None
            return _instance(row)

    def by_external_id(self, identifier: str, external_id: str) -> Instance | None:
        with Session(self.engine) as session:
            row = session.scalars(
                select(InstanceRow).where(
                    InstanceRow.type_identifier == identifier,
                    InstanceRow.external_id == external_id,
                )
            ).one_or_none()
            return None if row is None else _instance(row)

    def instances(self, identifier: str | None = None) -> list[Instance]:
        query = select(InstanceRow).order_by(InstanceRow.id)
        if identifier is not None:
            query = query.where(InstanceRow.type_identifier == identifier)
        with Session(self.engine) as session:
            return [_instance(r) for r in session.scalars(query)]

    def delete(self, instance_id: int) -> bool:
        with self._write_lock, Session(self.engine) as session, session.begin():
            row = session.get(InstanceRow, instance_id)
            if row is None:
                return False
            session.delete(row)
            return True


# --- the routes -------------------------------------------------------------------------------


def instance_json(instance: Instance) -> dict[str, Any]:
    return {
        "type": instance.type_identifier,
        "id": str(instance.id),
        "external_id": instance.external_id,
        "external_created_at": instance.external_created_at,
        "external_updated_at": instance.external_updated_at,
        "created_at": instance.created_at,
        "updated_at": instance.updated_at,
        "custom_attributes": instance.custom_attributes,
    }


def _attribute_ok(value: Any) -> bool:
    if value is None or isinstance(value, str | bool | int | float):
        return True
    return isinstance(value, list) and all(isinstance(v, str | int) for v in value)


def _fields(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    external_id = body.get("external_id")
    if external_id is None:
        raise ApiError(400, "parameter_not_found", "external_id is required", "external_id")
    if not isinstance(external_id, str) or not external_id.strip():
        raise ApiError(
            400, "parameter_invalid", "external_id must be a non-empty string", "external_id"
        )
    fields: dict[str, Any] = {}
    for name in ("external_created_at", "external_updated_at"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
            raise ApiError(400, "parameter_invalid", f"{name} must be a Unix timestamp", name)
        fields[name] = value
    attributes = body.get("custom_attributes")
    if attributes is not None:
        if not isinstance(attributes, dict) or not all(
            isinstance(k, str) and _attribute_ok(v) for k, v in attributes.items()
        ):
            raise ApiError(
                400,
                "parameter_invalid",
                "custom_attributes must map names to strings, numbers, booleans or lists",
                "custom_attributes",
            )
        fields["custom_attributes"] = attributes
    return external_id, fields


def objects_store_of(app: FastAPI) -> ObjectStore:
    """The store behind an app made by ``create_content_api`` (for tests)."""
    store: ObjectStore = app.state.object_store
    return store


def include_objects(app: FastAPI, store: ObjectStore, types: Iterable[str] = ()) -> None:
    """Serve the Custom Object Instances API on ``app`` (made by ``create_content_api``)."""
    app.state.object_store = store
    for identifier in types:
        store.define_type(identifier)
    base = "/custom_object_instances/{type_identifier}"

    def known_type(type_identifier: str) -> str:
        if not store.has_type(type_identifier):
            raise ApiError(404, "TypeNotFound", f"Custom object type `{type_identifier}` not found")
        return type_identifier

    def not_found() -> ApiError:
        return ApiError(404, "ObjectNotFound", "Custom object instance not found")

    def external_id_of(request: Request) -> str:
        value = request.query_params.get("external_id")
        if not value:
            raise ApiError(400, "parameter_not_found", "external_id is required", "external_id")
        return value

    @app.post(base)
    def upsert(
        type_identifier: str = Depends(known_type), body: dict[str, Any] = Depends(json_object)
    ) -> Any:
        external_id, fields = _fields(body)
        instance, _created = store.upsert(type_identifier, external_id, fields)
        return instance_json(instance)

    @app.get(base)
    def get_by_external_id(request: Request, type_identifier: str = Depends(known_type)) -> Any:
        instance = store.by_external_id(type_identifier, external_id_of(request))
        if instance is None:
            raise not_found()
        return instance_json(instance)

    @app.delete(base)
    def delete_by_external_id(request: Request, type_identifier: str = Depends(known_type)) -> Any:
        instance = store.by_external_id(type_identifier, external_id_of(request))
        if instance is None or not store.delete(instance.id):
            raise not_found()
        return {"object": "custom_object_instance", "id": str(instance.id), "deleted": True}

    def by_path_id(type_identifier: str, instance_id: str) -> Instance | None:
        if instance_id.isascii() and instance_id.isdigit() and len(instance_id) <= 18:
            return store.by_id(type_identifier, int(instance_id))
        return None

    @app.get(base + "/{instance_id}")
    def get_by_id(instance_id: str, type_identifier: str = Depends(known_type)) -> Any:
        instance = by_path_id(type_identifier, instance_id)
        if instance is None:
            instance = store.by_external_id(type_identifier, instance_id)
        if instance is None:
            raise not_found()
        return instance_json(instance)

    @app.delete(base + "/{instance_id}")
    def delete_by_id(instance_id: str, type_identifier: str = Depends(known_type)) -> Any:
        instance = by_path_id(type_identifier, instance_id)
        if instance is None or not store.delete(instance.id):
            raise not_found()
        return {"object": "custom_object_instance", "id": str(instance.id), "deleted": True}
