from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from findesk.kit import ids
from findesk.kit.db import Base, JSONType, UTCDateTime
from findesk.kit.timeutil import utcnow


class ObjectType(Base):
    """An admin-defined type such as ``Order``. ``attributes`` is a list of
    ``{"name", "type", "label"}`` (``schemas.ATTRIBUTE_TYPES``); ``title_attribute`` names the one
    shown as an instance's title on its card."""

    __tablename__ = "custom_object_types"

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=lambda: ids.new_id(ids.OBJECT_TYPE)
    )
    identifier: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    attributes: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    title_attribute: Mapped[str | None] = mapped_column(String(64))
    # Instances are kept in step with Intercom's Custom Object Instances API (objects.mirror).
    mirror_to_intercom: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ObjectInstance(Base):
    """One record of a type, unique per type by ``external_id`` (the id in the system it comes
    from): creating it again updates it."""

    __tablename__ = "custom_object_instances"
    __table_args__ = (
        UniqueConstraint("type_id", "external_id", name="uq_custom_object_instances_external"),
        # The list of a type, newest first.
        Index("ix_custom_object_instances_type_created", "type_id", "created_at"),
        Index("ix_custom_object_instances_intercom_pending", "intercom_pending"),
    )

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=lambda: ids.new_id(ids.OBJECT_INSTANCE)
    )
    type_id: Mapped[str] = mapped_column(ForeignKey("custom_object_types.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    custom_attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    external_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    external_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # --- Intercom's copy (objects.mirror): set pending in the transaction of each change ---
    intercom_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    intercom_id: Mapped[str | None] = mapped_column(String(64))
    intercom_hash: Mapped[str | None] = mapped_column(String(64))  # of the last body sent
    intercom_error: Mapped[str | None] = mapped_column(Text)
    intercom_attempts: Mapped[int] = mapped_column(Integer, default=0)
    intercom_next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    object_type: Mapped[ObjectType] = relationship(lazy="joined", innerjoin=True)


class ObjectUserLink(Base):
    """An instance linked to an end user (Intercom: a contact's relationship attribute)."""

    __tablename__ = "custom_object_user_links"
    __table_args__ = (Index("ix_custom_object_user_links_instance", "instance_id"),)

    user_id: Mapped[str] = mapped_column(
        ForeignKey("end_users.id", ondelete="CASCADE"), primary_key=True
    )
    instance_id: Mapped[str] = mapped_column(
        ForeignKey("custom_object_instances.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ObjectConversationLink(Base):
    """An instance linked to a conversation."""

    __tablename__ = "custom_object_conversation_links"
    __table_args__ = (Index("ix_custom_object_conversation_links_instance", "instance_id"),)

    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    instance_id: Mapped[str] = mapped_column(
        ForeignKey("custom_object_instances.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IntercomObjectDelete(Base):
    """A deleted instance of a mirrored type whose copy in Intercom is still to be deleted (a
    tombstone, written in the transaction of the delete, so that a delete is never lost)."""

    __tablename__ = "intercom_object_deletes"

    type_identifier: Mapped[str] = mapped_column(String(64), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
