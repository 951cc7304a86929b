"""CSAT actions: asking for a rating when a conversation is resolved, and recording it.

The request is a public message written through ``conversations.service.add_message`` (so the
notifier tells Fin and Fin shows it in the Messenger) with a link to ``/rate/{token}``; only
the token's SHA-256 is stored. Asked once per conversation, ever: a conversation reopened and
resolved again is not asked again. Rated once: the first rating stands.

The settings in force are those of the app serving the request (``kit.settings_in_use``).
Services never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from sqlalchemy.orm import Session

from findesk.agents import service as agents
from findesk.conversations import history
from findesk.conversations import service as conversations
from findesk.conversations.models import Conversation
from findesk.csat import repository
from findesk.csat.models import CsatRating
from findesk.kit.actor import SYSTEM, Actor
from findesk.kit.errors import Conflict, Invalid, NotFound
from findesk.kit.secrets import hash_secret, new_secret
from findesk.kit.settings import Settings
from findesk.kit.settings_in_use import current_settings
from findesk.kit.text import clean_text
from findesk.kit.timeutil import utcnow
from findesk.live import service as live

TOKEN_PREFIX = "rate"  # noqa: S105 (a prefix, not a secret)
ASKED_WHEN = frozenset({"resolved", "closed"})
SCORES = range(1, 6)
COMMENT_MAX = 2000
RATING_KIND = "rating"  # the history event (and live-feed kind) of a rating
REQUEST_KIND = "rating_requested"  # the history event of the request (its message's id)


def rating_url(settings: Settings, token: str) -> str:
    return f"{settings.base_url}/rate/{token}"


def request_body(settings: Settings, token: str) -> str:
    url = escape(rating_url(settings, token))
    return f'<p>{escape(settings.csat_message)} <a href="{url}">{url}</a></p>'


def after_status_change(
    session: Session, conversation: Conversation, before: str, actor: Actor
) -> None:
    """Ask for a rating when a human resolves or closes the conversation (or Fin does, when
    ``csat_for_fin_resolved``), unless it has been asked before."""
    if conversation.status not in ASKED_WHEN or conversation.channel == "chat":
        return  # (findesk's own chat asks in its widget: ``chat.service``)
    settings = current_settings()
    if not settings.csat_enabled:
        return
    if actor.kind == "agent" and actor.agent_id is not None:
        author_id, writer = actor.agent_id, actor
    elif actor.is_fin and settings.csat_for_fin_resolved:
        fin = agents.fin_agent(session)
        if fin is None:
            return
        # Written by findesk in Fin's name: Fin must hear of it (its own changes are not echoed).
        author_id, writer = fin.id, SYSTEM
    else:
        return  # findesk itself (an automatic close), or Fin by default
    if repository.get(session, conversation.id) is not None:
        return
    token = new_secret(TOKEN_PREFIX)
    session.add(
        CsatRating(
            conversation_id=conversation.id,
            token_hash=hash_secret(token),
            agent_id=author_id,
            requested_at=utcnow(),
        )
    )
    message, _ = conversations.add_message(
        session,
        conversation.id,
        conversations.NewMessage(
            author=conversations.Author("agent", author_id),
            body=request_body(settings, token),
            automated=True,
        ),
        writer,
    )
    history.record(
        session, conversation.id, REQUEST_KIND, writer, detail={"message_id": message.id}
    )


def rating_of(session: Session, conversation_id: str) -> CsatRating | None:
    """The conversation's rating request (and rating), if it was asked."""
    return repository.get(session, conversation_id)


@dataclass(frozen=True)
class RatingPage:
    """What the public page shows: whether it is rated, and how."""

    conversation_id: str
    score: int | None
    comment: str | None


def find(session: Session, token: str) -> RatingPage:
    """The rating request whose link carries ``token``, or ``NotFound``."""
    rating = repository.by_token_hash(session, hash_secret(token))
    if rating is None:
        raise NotFound("No such rating link.")
    return RatingPage(rating.conversation_id, rating.score, rating.comment)


def checked_score(value: str | None) -> int:
    try:
        score = int(str(value or "").strip())
    except ValueError:
        score = 0
    if score not in SCORES:
        raise Invalid(
            "Choose a score from 1 to 5.",
            errors=[{"loc": ["score"], "msg": "score from 1 to 5", "type": "score"}],
        )
    return score


def checked_comment(value: str | None) -> str | None:
    comment = clean_text(
        (value or "").strip(),
        field="comment",
        max_length=COMMENT_MAX,
        label="The comment",
        multiline=True,
    )
    return comment or None


def rate(session: Session, token: str, score: int, comment: str | None) -> RatingPage:
    """Record the rating once: ``Conflict`` when it has one already (nothing changes). It lands
    in the conversation's history and the inbox's live view; Fin is not told."""
    found = find(session, token)
    now = utcnow()
    if not repository.record_score(session, found.conversation_id, score, comment, now):
        raise Conflict("You have rated this conversation already.")
    conversation = conversations.get_conversation(session, found.conversation_id)
    conversation.updated_at = now
    history.record(
        session,
        conversation.id,
        RATING_KIND,
        SYSTEM,
        to_value=score,
        detail={"comment": comment},
    )
    live.record(
        session, conversation.id, RATING_KIND, SYSTEM, conversations.owner_kind(conversation)
    )
    return RatingPage(conversation.id, score, comment)


conversations.on_status_change(after_status_change)
