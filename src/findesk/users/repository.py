from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from findesk.users.models import EndUser


def get(session: Session, user_id: str) -> EndUser | None:
    return session.get(EndUser, user_id)


def get_by_object_id(session: Session, object_id: str) -> EndUser | None:
    return session.scalars(select(EndUser).where(EndUser.object_id == object_id)).first()
