"""Collections: groups of articles on the help centre's index, in order. One function per
action; never commits. A collection has an English name and description and, per other
language of Intercom's list, its own; an article belongs to at most one collection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from findesk.kit.errors import NotFound
from findesk.kit.text import invalid, text_problem
from findesk.kit.timeutil import utcnow
from findesk.knowledge import locales, repository, service
from findesk.knowledge.models import (
    ArticleCollection,
    CollectionMember,
    CollectionTranslation,
)

MAX_NAME = 255
MAX_DESCRIPTION = 1000
MAX_POSITION = 1_000_000


@dataclass
class CollectionView:
    """A collection as one language shows it (its English text where it has none there)."""

    id: str
    name: str
    description: str
    position: int


# --- reading -------------------------------------------------------------------------------------


def all_collections(session: Session) -> Sequence[ArticleCollection]:
    return repository.collections(session)


def get(session: Session, collection_id: str) -> ArticleCollection:
    collection = repository.get_collection(session, collection_id)
    if collection is None:
        raise NotFound(f"No collection {collection_id}.")
    return collection


def names(session: Session, collection_id: str) -> Sequence[CollectionTranslation]:
    return repository.collection_names(session, collection_id)


def in_locale(session: Session, locale: str) -> list[CollectionView]:
    """Every collection, in order, named in ``locale`` (English where it has no name there)."""
    local = {t.collection_id: t for t in repository.collection_names_in(session, locale)}
    views = []
    for c in repository.collections(session):
        own = local.get(c.id)
        views.append(
            CollectionView(
                c.id,
                own.name if own else c.name,
                own.description if own else c.description,
                c.position,
            )
        )
    return views


def collection_of(session: Session, article_id: str) -> str | None:
    return repository.members(session, [article_id]).get(article_id)


def members(session: Session, article_ids: Sequence[str]) -> dict[str, str]:
    """article id → collection id, for those in one."""
    return repository.members(session, article_ids)


def member_ids(session: Session) -> dict[str, str]:
    """Every article (not deleted) in a collection → its collection id."""
    return repository.all_members(session)


# --- actions -----------------------------------------------------------------------------------


def create_collection(
    session: Session, name: str, description: str = "", position: int | None = None
) -> ArticleCollection:
    if position is None:
        existing = all_collections(session)
        position = (max((c.position for c in existing), default=0) + 1) if existing else 1
    collection = ArticleCollection(
        name=_name(name),
        description=_description(description),
        position=_position(position),
    )
    session.add(collection)
    session.flush()
    return collection


def update_collection(
    session: Session,
    collection_id: str,
    *,
    name: str | None = None,
    description: str | None = None,
    position: int | None = None,
) -> ArticleCollection:
    collection = get(session, collection_id)
    if name is not None:
        collection.name = _name(name)
    if description is not None:
        collection.description = _description(description)
    if position is not None:
        collection.position = _position(position)
    collection.updated_at = utcnow()
    session.flush()
    return collection


def delete_collection(session: Session, collection_id: str) -> None:
    """Its articles stay, in no collection."""
    collection = get(session, collection_id)
    repository.forget_collection(session, collection.id)
    session.delete(collection)
    session.flush()


def name_in(
    session: Session, collection_id: str, locale: str, name: str, description: str = ""
) -> CollectionTranslation:
    """Set the collection's name (and description) in ``locale``; English is the collection's
    own (``update_collection``)."""
    collection = get(session, collection_id)
    code = service.translation_locale(locale)
    if code == locales.DEFAULT:
        raise invalid("English is the collection's own name: edit the collection.", field="locale")
    row = session.get(CollectionTranslation, (collection.id, code))
    if row is None:
        row = CollectionTranslation(collection_id=collection.id, locale=code)
        session.add(row)
    row.name, row.description = _name(name), _description(description)
    collection.updated_at = utcnow()
    session.flush()
    return row


def remove_name_in(session: Session, collection_id: str, locale: str) -> None:
    collection = get(session, collection_id)
    code = locales.exact(locale) if len(locale) <= 16 else None
    row = None if code is None else session.get(CollectionTranslation, (collection.id, code))
    if row is None:
        raise NotFound(f"The collection has no name in {locale[:16]}.")
    session.delete(row)
    session.flush()


def put_article(session: Session, article_id: str, collection_id: str | None) -> None:
    """Put the article in the collection (None: in none); it leaves any other."""
    article = service.get_article(session, article_id)
    member = session.get(CollectionMember, article.id)
    if collection_id is None or not collection_id.strip():
        if member is not None:
            session.delete(member)
    else:
        collection = get(session, collection_id.strip())
        if member is None:
            session.add(CollectionMember(article_id=article.id, collection_id=collection.id))
        else:
            member.collection_id = collection.id
    session.flush()


# --- checks ------------------------------------------------------------------------------------


def _name(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise invalid(f"name {problem}.", field="name")
    name = " ".join(value.split())
    if not name:
        raise invalid("name must not be blank.", field="name")
    if len(name) > MAX_NAME:
        raise invalid(f"name must be at most {MAX_NAME} characters.", field="name")
    return name


def _description(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise invalid(f"description {problem}.", field="description")
    description = " ".join(value.split())
    if len(description) > MAX_DESCRIPTION:
        detail = f"description must be at most {MAX_DESCRIPTION} characters."
        raise invalid(detail, field="description")
    return description


def _position(value: int) -> int:
    if not 0 <= value <= MAX_POSITION:
        raise invalid(f"position must be between 0 and {MAX_POSITION}.", field="position")
    return value
