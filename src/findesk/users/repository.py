from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from findesk.kit.timeutil import utcnow
from findesk.users.models import EndUser, EndUserAlias


def get(session: Session, user_id: str) -> EndUser | None:
    return session.get(EndUser, user_id)


def get_by_object_id(session: Session, object_id: str) -> EndUser | None:
    return session.scalars(select(EndUser).where(EndUser.object_id == object_id)).first()


def get_resolving_alias(session: Session, user_id: str) -> EndUser | None:
    """The end user with this id, or the one it was merged into: Fin keeps the old id."""
    return get(session, user_id) or aliased(session, "id", user_id)


def get_shared_resolving_alias(session: Session, user_id: str) -> EndUser | None:
    """``get_resolving_alias``, the row locked against a concurrent merge until the transaction
    ends (``FOR KEY SHARE`` on PostgreSQL, as a foreign key's check would take: a merge waits
    for it, or it waits for the merge and then finds the alias; nothing on SQLite, which has
    one writer at a time)."""
    user = _shared(session, user_id)
    if user is None and (target := alias_target_id(session, "id", user_id)) is not None:
        user = _shared(session, target)
    return user


def _shared(session: Session, user_id: str) -> EndUser | None:
    return session.scalars(
        select(EndUser)
        .where(EndUser.id == user_id)
        .with_for_update(read=True, key_share=True)
        .execution_options(populate_existing=True)
    ).first()


def get_by_object_id_resolving_alias(session: Session, object_id: str) -> EndUser | None:
    return get_by_object_id(session, object_id) or aliased(session, "object_id", object_id)


def aliased(session: Session, kind: str, alias: str) -> EndUser | None:
    return session.scalars(
        select(EndUser)
        .join(EndUserAlias, EndUserAlias.user_id == EndUser.id)
        .where(EndUserAlias.kind == kind, EndUserAlias.alias == alias)
    ).first()


def alias_target_id(session: Session, kind: str, alias: str) -> str | None:
    return session.scalars(
        select(EndUserAlias.user_id).where(EndUserAlias.kind == kind, EndUserAlias.alias == alias)
    ).first()


def aliases_of(session: Session, user_id: str) -> Sequence[EndUserAlias]:
    return session.scalars(
        select(EndUserAlias)
        .where(EndUserAlias.user_id == user_id)
        .order_by(EndUserAlias.merged_at, EndUserAlias.kind, EndUserAlias.alias)
    ).all()


def lock(session: Session, user_ids: Sequence[str]) -> None:
    """Lock end users' rows until the transaction ends, in id order (two merges of the same
    pair cannot deadlock); a no-op on SQLite, which has one writer at a time."""
    session.execute(
        select(EndUser.id)
        .where(EndUser.id.in_(sorted(user_ids)))
        .order_by(EndUser.id)
        .with_for_update()
    ).all()


def add_aliases(session: Session, user_id: str, aliases: Sequence[tuple[str, str]]) -> None:
    now = utcnow()
    for kind, alias in aliases:
        session.add(EndUserAlias(kind=kind, alias=alias, user_id=user_id, merged_at=now))


def repoint_aliases(session: Session, from_user_id: str, to_user_id: str) -> None:
    """The aliases of an end user merged away now name the survivor: never a chain."""
    session.execute(
        update(EndUserAlias)
        .where(EndUserAlias.user_id == from_user_id)
        .values(user_id=to_user_id)
        .execution_options(synchronize_session=False)
    )


def by_email(session: Session, email: str, limit: int = 2) -> Sequence[EndUser]:
    """End users with exactly this email (its index), oldest first."""
    return session.scalars(
        select(EndUser)
        .where(EndUser.email == email)
        .order_by(EndUser.created_at, EndUser.id)
        .limit(limit)
    ).all()


def by_name(session: Session, name: str, limit: int) -> Sequence[EndUser]:
    """Users (with an email) of exactly this name (its index), oldest first."""
    return session.scalars(
        select(EndUser)
        .where(EndUser.name == name, EndUser.email.is_not(None))
        .order_by(EndUser.created_at, EndUser.id)
        .limit(limit)
    ).all()
