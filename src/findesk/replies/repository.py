"""All the SQL of saved replies and macros."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from findesk.replies.models import Macro, SavedReply

LIST_MAX = 1000


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def replies_for(
    session: Session, agent_id: str, *, query: str | None = None
) -> Sequence[SavedReply]:
    """The team's and the agent's own, by title."""
    statement = select(SavedReply).where(
        or_(SavedReply.owner_id.is_(None), SavedReply.owner_id == agent_id)
    )
    if query:
        statement = statement.where(SavedReply.title.ilike(_like(query), escape="\\"))
    statement = statement.order_by(SavedReply.title, SavedReply.id).limit(LIST_MAX)
    return session.scalars(statement).all()


def get_reply(session: Session, reply_id: str) -> SavedReply | None:
    return session.get(SavedReply, reply_id)


def macros_for(session: Session, agent_id: str) -> Sequence[Macro]:
    statement = (
        select(Macro)
        .where(or_(Macro.owner_id.is_(None), Macro.owner_id == agent_id))
        .order_by(Macro.name, Macro.id)
        .limit(LIST_MAX)
    )
    return session.scalars(statement).all()


def get_macro(session: Session, macro_id: str) -> Macro | None:
    return session.get(Macro, macro_id)


def macros_owned_by(session: Session, owner_ids: Sequence[str | None]) -> Sequence[Macro]:
    """The macros of these owners (None: the shared ones): those that may use a reply."""
    conditions = [Macro.owner_id.is_(None) if o is None else Macro.owner_id == o for o in owner_ids]
    return session.scalars(select(Macro).where(or_(*conditions)).order_by(Macro.name)).all()
