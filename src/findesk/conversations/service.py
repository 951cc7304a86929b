"""Conversation actions: one function per action, each recording what Fin must hear about
and a row of the conversation's durable history.

Ownership lives in ``assignee_id``: a bot agent (Fin answers), nobody (waiting for a human) or a
human agent. The take-over rule: Fin never reassigns a conversation a human owns; such a
request is not applied (the rest of the update is), and the history keeps it as
``assignment_ignored``. Every action reads the conversation locked (``FOR UPDATE`` on
PostgreSQL; SQLite has one writer at a time), so the rule holds under concurrent requests.
Services never commit: the request or job that calls them does.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from findesk.agents import repository as agent_repository
from findesk.agents.models import Agent
from findesk.conversations import counts, history, repository
from findesk.conversations.models import STATUSES, Conversation, Message
from findesk.fin_ledger.service import expect_fetch
from findesk.kit import html
from findesk.kit.actor import SYSTEM, Actor
from findesk.kit.attributes import check_attribute_keys, drop_nulls, merge_attributes
from findesk.kit.commit_signal import CommitSignal
from findesk.kit.db import insert_once
from findesk.kit.errors import Conflict, Invalid, NotFound
from findesk.kit.ids import CONVERSATION, MESSAGE, new_id
from findesk.kit.text import (
    CONVERSATION_TITLE_MAX,
    MESSAGE_BODY_MAX,
    TAG_MAX,
    TAGS_MAX,
    clean_text,
    invalid,
)
from findesk.kit.timeutil import as_utc, isoformat, utcnow
from findesk.live import service as live
from findesk.notifier.service import record_change
from findesk.users import repository as user_repository

# The conversation attribute in which Fin says why it handed over (the emulator writes it).
HANDOVER_REASON_ATTRIBUTE = "fin_handover_reason"
PRIORITY_ATTRIBUTE = "priority"
# How far ahead a conversation may be snoozed.
SNOOZE_MAX = timedelta(days=365)
# Wakes this process's waker when a snooze is committed: it may end before the waker looks.
snoozed = CommitSignal("snooze")

# Called after every status change, in its transaction, with the status it had before: what
# other domains do when a conversation is resolved (csat's rating request), without this module
# importing them. ``on_status_change`` adds one; adding the same one again does nothing.
StatusHook = Callable[[Session, "Conversation", str, Actor], None]
_status_hooks: list[StatusHook] = []


def on_status_change(hook: StatusHook) -> None:
    if hook not in _status_hooks:
        _status_hooks.append(hook)


# Called, in its transaction, when a conversation comes to wait for a person: Fin handed it
# over, or it was opened with nobody assigned. In the order registered (by import): routing
# (``findesk.routing``), what Fin is told of the team (``teams.availability``), the SLA timers
# (``findesk.sla``), without this module importing them. Adding the same one again does nothing.
WaitingHook = Callable[[Session, "Conversation", Actor], None]
_waiting_hooks: list[WaitingHook] = []


def on_waiting(hook: WaitingHook) -> None:
    if hook not in _waiting_hooks:
        _waiting_hooks.append(hook)


_COMING_TO_WAIT = "findesk.coming_to_wait"  # session.info: ids whose waiting hooks are running


def _came_to_wait(session: Session, conversation: Conversation, actor: Actor) -> None:
    waiting: set[str] = session.info.setdefault(_COMING_TO_WAIT, set())
    waiting.add(conversation.id)
    try:
        for hook in _waiting_hooks:
            hook(session, conversation, actor)
    finally:
        waiting.discard(conversation.id)


def coming_to_wait(session: Session, conversation_id: str) -> bool:
    """Whether the waiting hooks are running for it in this transaction: a hook that runs last
    (the SLA timers) may ignore what the earlier ones change, as it sees the outcome."""
    return conversation_id in session.info.get(_COMING_TO_WAIT, ())


def route_to(session: Session, conversation: Conversation, agent: Agent, actor: Actor) -> None:
    """Give a conversation waiting for a person to ``agent`` (routing's choice): the
    ownership change, its history and what Fin and the inbox hear. The ownership hooks are not
    called here: the change that made it wait calls them once, with what routing decided."""
    _change_owner(session, conversation, agent, actor, call_hooks=False)
    changed(session, conversation.id, "assignee", actor, conversation)


# Called after every ownership change, in its transaction, with its kind (``handover``,
# ``assigned``, ``take_over``, ``hand_back``): alerts tell people of handovers and assignments.
OwnerHook = Callable[[Session, "Conversation", str, Actor], None]
_owner_hooks: list[OwnerHook] = []


def on_owner_change(hook: OwnerHook) -> None:
    if hook not in _owner_hooks:
        _owner_hooks.append(hook)


# Called after a human's public reply (not findesk's automated ones) is written, in its
# transaction: reply continuity emails it to an end user who has not read it.
ReplyHook = Callable[[Session, "Conversation", "Message", Actor], None]
_reply_hooks: list[ReplyHook] = []


def on_public_reply(hook: ReplyHook) -> None:
    if hook not in _reply_hooks:
        _reply_hooks.append(hook)


# Called, in its transaction, after a change that SLA timers follow and no hook above tells of:
# the end user wrote (``user_message``), a snooze began or ended (``snooze``, ``wake``), the
# priority or the team changed (``priority``, ``team``). ``on_activity`` adds one (once).
ActivityHook = Callable[[Session, "Conversation", str], None]
_activity_hooks: list[ActivityHook] = []


def on_activity(hook: ActivityHook) -> None:
    if hook not in _activity_hooks:
        _activity_hooks.append(hook)


def activity(session: Session, conversation: Conversation, kind: str) -> None:
    """Tell the activity hooks of ``kind`` (for a change made outside this module, too)."""
    for hook in _activity_hooks:
        hook(session, conversation, kind)


@dataclass(frozen=True)
class Author:
    user_type: Literal["end_user", "agent"]
    id: str


@dataclass
class NewMessage:
    author: Author
    body: str | None = None
    visibility: Literal["public", "private"] = "public"
    attachments: list[dict[str, Any]] = field(default_factory=list)
    object_id: str | None = None
    created_at: datetime | None = None
    # Written by findesk in an agent's name (the rating request): it neither takes the
    # conversation over nor counts as the first human reply.
    automated: bool = False


def changed(
    session: Session,
    conversation_id: str,
    kind: str,
    actor: Actor,
    conversation: Conversation | None = None,
) -> None:
    """Record a change: for Fin (unless Fin made it) and for the inbox's live view."""
    record_change(session, conversation_id, kind, actor)
    owner = owner_kind(conversation) if conversation is not None else None
    live.record(session, conversation_id, kind, actor, owner)


def get_conversation(session: Session, conversation_id: str) -> Conversation:
    conversation = repository.get(session, conversation_id)
    if conversation is None:
        raise NotFound(f"No conversation with id {conversation_id!r}.")
    return conversation


def conversation_for_wire(
    connection: Connection, conversation_id: str
) -> tuple[Sequence[Any], list[str]]:
    """What get_conversation sends, as plain columns (``repository.conversation_wire_row``) and
    the tag names: one query, no ORM object."""
    found = repository.conversation_wire_row(connection, conversation_id)
    if found is None:
        raise NotFound(f"No conversation with id {conversation_id!r}.")
    return found


def _locked(
    session: Session, conversation_id: str, hidden_channels: Collection[str] = ()
) -> Conversation:
    """The conversation, locked for a change; not found if it is of a channel in
    ``hidden_channels`` (one its caller must not see: the Fin API, findesk's own chat)."""
    conversation = repository.get_for_update(session, conversation_id)
    if conversation is None or conversation.channel in hidden_channels:
        raise NotFound(f"No conversation with id {conversation_id!r}.")
    return conversation


def owner_kind(conversation: Conversation) -> Literal["fin", "human", "waiting"]:
    """Who answers, in one word: Fin, a human agent, or nobody yet (waiting for a human)."""
    if conversation.assignee is None:
        return "waiting"
    return "fin" if conversation.assignee.is_bot else "human"


def list_messages(
    session: Session, conversation_id: str, *, after_id: str | None = None
) -> list[Message]:
    if not repository.conversation_exists(session, conversation_id):
        raise NotFound(f"No conversation with id {conversation_id!r}.")
    return list(repository.messages(session, conversation_id, after_id=after_id))


@dataclass(frozen=True)
class MessagePage:
    """Some of a conversation's messages, in creation order, and whether it has more on either
    side. ``changes_since`` and ``changes_until`` bound the history that goes with the page in
    the inbox's timeline: from its first message (from the start, on the oldest page) until the
    message after it (no end, on the newest page), so that adjacent pages share no change."""

    messages: list[Message]
    has_more_before: bool
    has_more_after: bool
    changes_since: datetime | None
    changes_until: datetime | None


def message_page(
    session: Session,
    conversation_id: str,
    *,
    limit: int,
    before: str | None = None,
    after: str | None = None,
) -> MessagePage:
    """``limit`` messages: the newest; or those just before the message ``before``; or those
    just after the message ``after`` (from the first message when that is not one of the
    conversation's, as get_messages does with an unknown after_id). Keyset pagination on the
    messages' creation order."""
    if not repository.conversation_exists(session, conversation_id):
        raise NotFound(f"No conversation with id {conversation_id!r}.")
    if before is not None and after is not None:
        raise Invalid("Give either before or after_id, not both.")
    if after is not None:
        anchor = repository.message_anchor(session, conversation_id, after)
        after_seq = anchor.seq if anchor is not None else 0
        rows = repository.message_window(
            session, conversation_id, limit=limit + 1, after_seq=after_seq
        )
        page = rows[:limit]
        more_after = len(rows) > limit
        more_before = anchor is not None and bool(page)
        until = rows[limit].created_at if more_after else None
    else:
        anchor = None
        if before is not None:
            anchor = repository.message_anchor(session, conversation_id, before)
            if anchor is None:
                raise Invalid(f"No message with id {before!r} in this conversation.")
        rows = repository.message_window(
            session,
            conversation_id,
            limit=limit + 1,
            before_seq=anchor.seq if anchor is not None else None,
        )
        page = rows[-limit:]
        more_before = len(rows) > limit
        more_after = anchor is not None and bool(page)
        until = anchor.created_at if anchor is not None else None
    since = page[0].created_at if more_before else None
    return MessagePage(page, more_before, more_after, since, until)


@dataclass(frozen=True)
class WireMessages:
    """Messages as plain rows (``repository.message_wire_rows``), streamed in chunks: read
    them inside the connection's transaction. Their authors, as plain columns
    (``repository.message_authors``): the conversation's end user, read already, and
    ``authors(user_ids, agent_ids)`` for the others (a conversation has few)."""

    chunks: Iterator[Sequence[repository.WireRow]]
    end_user: Sequence[Any]
    authors: Callable[
        [Collection[str], Collection[str]],
        tuple[dict[str, Sequence[Any]], dict[str, Sequence[Any]]],
    ]


def messages_for_wire(
    connection: Connection, conversation_id: str, *, after_id: str | None = None
) -> WireMessages:
    """What get_messages sends: every message after ``after_id`` (all of them when that is not
    one of the conversation's), in creation order, without an ORM object per message; three
    queries in all, whatever the length."""
    start = repository.wire_start(connection, conversation_id, after_id)
    if start is None:
        raise NotFound(f"No conversation with id {conversation_id!r}.")
    end_user, after_seq = start
    return WireMessages(
        repository.message_wire_rows(connection, conversation_id, after_seq=after_seq or 0),
        end_user=end_user,
        authors=lambda user_ids, agent_ids: repository.message_authors(
            connection, user_ids, agent_ids
        ),
    )


def open_conversation(
    session: Session,
    *,
    user_id: str,
    first: NewMessage,
    actor: Actor,
    object_id: str | None = None,
    title: str | None = None,
    attributes: dict[str, Any] | None = None,
    assignee_id: str | None = None,
    channel: str = "messenger",
) -> tuple[Conversation, Message, bool]:
    """Start a conversation with its first message. Idempotent by ``object_id``. ``channel``:
    where the end user talks (``chat``: findesk's widget, which Fin is never told of here)."""
    if object_id is not None:
        existing = repository.get_by_object_id(session, object_id)
        if existing is not None:
            return existing, _initial_message(session, existing), False
    # Fin may hold the id of a visitor merged into a user since: the user answers to it (read
    # locked, so that a merge running now cannot delete it before this conversation is in).
    user = user_repository.get_shared_resolving_alias(session, user_id)
    if user is None:
        raise NotFound(f"No user with id {user_id!r}.")
    body = _checked_body(first)
    author = _checked_author(session, first.author, user.id)
    check_attribute_keys(attributes)
    now = utcnow()
    conversation = Conversation(
        id=new_id(CONVERSATION),  # known before the row is written
        object_id=object_id,
        user_id=user.id,
        user=user,  # (loaded already: shown before the row is written)
        status="open",
        title=_checked_title(title),
        attributes=drop_nulls(attributes or {}),
        assignee_id=assignee_id,
        last_activity_at=now,
        created_at=now,
        updated_at=now,
        channel=channel,
    )
    if object_id is None:
        session.add(conversation)
        session.flush()
    else:
        conversation, created = insert_once(
            session,
            conversation,
            lambda: repository.get_by_object_id(session, object_id),
            looked=True,
        )
        if not created:
            return conversation, _initial_message(session, conversation), False
    # Only now, with the conversation's own key settled, can a taken message key be a conflict
    # rather than a concurrent repeat of this very request.
    message = _new_message_row(conversation, first, body, author, now)
    message_object_id = first.object_id
    if message_object_id is None:
        session.add(message)
        session.flush()
    else:
        message, created = insert_once(
            session,
            message,
            lambda: repository.get_message_by_object_id(session, message_object_id),
        )
        if not created:
            raise Conflict(f"A message with object_id {message_object_id!r} exists already.")
    history.record(
        session,
        conversation.id,
        "created",
        actor,
        to_value={"assignee_id": conversation.assignee_id, "status": conversation.status},
    )
    changed(session, conversation.id, "conversation", actor, conversation)
    if conversation.assignee_id is None:
        _came_to_wait(session, conversation, actor)
        if conversation.assignee_id is not None:  # routing gave it to someone
            for owner_hook in _owner_hooks:
                owner_hook(session, conversation, "assigned", SYSTEM)
    return conversation, message, True


def _initial_message(session: Session, conversation: Conversation) -> Message:
    message = repository.first_message(session, conversation.id)
    assert message is not None, "every conversation is created with its first message"
    return message


def add_message(
    session: Session,
    conversation_id: str,
    new: NewMessage,
    actor: Actor,
    *,
    hidden_channels: Collection[str] = (),
) -> tuple[Message, bool]:
    """Add a message; idempotent by ``object_id``. A human's public reply takes ownership.
    A conversation of a channel in ``hidden_channels`` is not found.

    The ``object_id`` is looked for once the conversation is locked: a concurrent repeat of
    the same request waits for that lock, then finds the message its twin wrote. The same key
    sent at once into another conversation is the only collision left; it is a conflict."""
    conversation = _locked(session, conversation_id, hidden_channels)
    if new.object_id is not None:
        existing = repository.get_message_by_object_id(session, new.object_id)
        if existing is not None:
            if (
                hidden_channels
                and existing.conversation_id != conversation.id
                and repository.channel_of(session, existing.conversation_id) in hidden_channels
            ):
                raise NotFound(f"No conversation with id {conversation_id!r}.")
            return existing, False
    body = _checked_body(new)
    author = _checked_author(session, new.author, conversation.user_id)
    now = utcnow()
    message = _new_message_row(conversation, new, body, author, now)
    # Fin wrote while a human owns the conversation (a sync run that began before the take-over):
    # kept, since the end user has seen it already, and marked for the agents.
    message.after_take_over = (
        isinstance(author, Agent)
        and author.is_bot
        and owner_kind(conversation) == "human"
        and not new.automated
    )
    session.add(message)  # written with the rest of the change, in one flush
    if new.object_id is not None and session.get_bind().dialect.name != "sqlite":
        # (SQLite: nothing can come between the look and the write, under its write lock.)
        _write_new_key(session, new.object_id)
    conversation.last_activity_at = now
    conversation.updated_at = now
    if isinstance(author, Agent):
        if not author.is_bot and new.visibility == "public":
            if conversation.first_human_reply_at is None and not new.automated:
                conversation.first_human_reply_at = now
            if conversation.channel != "chat":  # (Fin never fetches findesk's own chat)
                session.flush()  # the receipt slot refers to the message's row
                expect_fetch(session, message)
            if owner_kind(conversation) != "human" and not new.automated:
                _change_owner(session, conversation, author, actor)
            if not new.automated:
                for reply_hook in _reply_hooks:
                    reply_hook(session, conversation, message, actor)
    else:
        # The end user wrote: a snoozed conversation comes back to its queue at once.
        _wake(session, conversation, SYSTEM, reason="end_user")
        if conversation.status != "open":
            # The end user wrote again: the conversation is live once more, with a person who
            # can answer (an owner deactivated since it was resolved cannot: it waits for a
            # human).
            conversation.status = "open"
            assignee = conversation.assignee
            if assignee is not None and not assignee.active:
                _change_owner(session, conversation, None, SYSTEM)
        activity(session, conversation, "user_message")
    changed(session, conversation.id, "message", actor, conversation)
    return message, True


def _write_new_key(session: Session, object_id: str) -> None:
    """Write the new message now: a concurrent message of another conversation with the same
    ``object_id`` makes it a conflict (409), not a failed commit."""
    try:
        session.flush()
    except IntegrityError as error:
        if "object_id" not in str(error.orig):
            raise
        raise Conflict(
            f"A message with object_id {object_id!r} was written into another conversation"
            " at the same time."
        ) from error


def _checked_body(new: NewMessage) -> str | None:
    if new.body is not None and len(new.body) > MESSAGE_BODY_MAX:
        raise Invalid(
            f"A message has at most {MESSAGE_BODY_MAX} characters.",
            errors=[{"loc": ["body"], "msg": "message too long", "type": "string_too_long"}],
        )
    body = html.sanitize(new.body) if new.body else None
    if html.is_blank(body) and not new.attachments:
        raise Invalid(
            "A message needs a body or at least one attachment.",
            errors=[{"loc": ["body"], "msg": "empty message", "type": "empty_message"}],
        )
    return body if body and not html.is_blank(body) else None


def _checked_author(session: Session, author: Author, conversation_user_id: str) -> Agent | str:
    """The agent, or the end user's id; an end-user author must be the conversation's user
    (by an id it had before a merge, too: ``users.service.merge_into``)."""
    if author.user_type == "end_user":
        if author.id != conversation_user_id and (
            user_repository.alias_target_id(session, "id", author.id) != conversation_user_id
        ):
            raise Invalid(
                "An end-user author must be the conversation's user.",
                errors=[
                    {
                        "loc": ["author", "id"],
                        "msg": "not this conversation's user",
                        "type": "wrong_author",
                    }
                ],
            )
        return conversation_user_id
    agent = agent_repository.get(session, author.id)
    if agent is None or not agent.active:
        raise Invalid(
            f"No active agent with id {author.id!r}.",
            errors=[{"loc": ["author", "id"], "msg": "not an agent", "type": "wrong_author"}],
        )
    return agent


def _new_message_row(
    conversation: Conversation,
    new: NewMessage,
    body: str | None,
    author: Agent | str,
    now: datetime,
) -> Message:
    message = Message(
        id=new_id(MESSAGE),  # known before the row is written
        conversation_id=conversation.id,
        object_id=new.object_id,
        message_type="comment",
        body=body,
        author_type="agent" if isinstance(author, Agent) else "end_user",
        author_agent_id=author.id if isinstance(author, Agent) else None,
        author_user_id=None if isinstance(author, Agent) else author,
        visibility=new.visibility,
        attachments=list(new.attachments),
        created_at=new.created_at or now,
    )
    # The author itself too, so that it can be shown before the row is written (an end user
    # who writes is the conversation's user: ``_checked_author``).
    if isinstance(author, Agent):
        message.author_agent = author
    else:
        message.author_user = conversation.user
    return message


def update_conversation(
    session: Session,
    conversation_id: str,
    changes: dict[str, Any],
    actor: Actor,
    *,
    hidden_channels: Collection[str] = (),
) -> Conversation:
    """Partial update: only the keys present in ``changes`` are applied (spec 4.6). A
    conversation of a channel in ``hidden_channels`` is not found."""
    conversation = _locked(session, conversation_id, hidden_channels)
    if "title" in changes:
        set_title(session, conversation, changes["title"], actor)
    if "tags" in changes:
        set_tags(session, conversation, changes["tags"] or [], actor)
    if "attributes" in changes:
        merge_conversation_attributes(session, conversation, changes["attributes"], actor)
    if "status" in changes and changes["status"] is not None:
        set_status(session, conversation, changes["status"], actor)
    if "assignee_id" in changes:
        assign(session, conversation, changes["assignee_id"], actor)
    if "snoozed_until" in changes:
        set_snooze(session, conversation, changes["snoozed_until"], actor)
    if (
        "last_user_read_at" in changes
        and changes["last_user_read_at"] != conversation.last_user_read_at
    ):
        conversation.last_user_read_at = changes["last_user_read_at"]
        _touch(conversation)
    return conversation


def _touch(conversation: Conversation) -> None:
    conversation.updated_at = utcnow()


def _checked_title(title: str | None) -> str | None:
    if title is None:
        return None
    return clean_text(title, field="title", max_length=CONVERSATION_TITLE_MAX, label="The title")


def set_title(
    session: Session, conversation: Conversation, title: str | None, actor: Actor
) -> None:
    title = _checked_title(title)
    if title == conversation.title:
        return
    history.record(
        session, conversation.id, "title", actor, from_value=conversation.title, to_value=title
    )
    conversation.title = title
    _touch(conversation)
    changed(session, conversation.id, "title", actor, conversation)


def set_tags(session: Session, conversation: Conversation, tags: list[str], actor: Actor) -> None:
    """Replace the set of tags; blank ones are dropped and duplicates kept once, in order."""
    cleaned: list[str] = []
    for tag in tags:
        tag = clean_text(tag, field="tags", max_length=TAG_MAX, label="A tag")
        if not tag or tag in cleaned:
            continue
        cleaned.append(tag)
    if len(cleaned) > TAGS_MAX:
        raise invalid(f"A conversation has at most {TAGS_MAX} tags.", field="tags")
    if cleaned == conversation.tags:
        return
    history.record(
        session, conversation.id, "tags", actor, from_value=conversation.tags, to_value=cleaned
    )
    repository.replace_tags(session, conversation, cleaned)
    _touch(conversation)
    changed(session, conversation.id, "tags", actor, conversation)


def merge_conversation_attributes(
    session: Session, conversation: Conversation, changes: dict[str, Any] | None, actor: Actor
) -> None:
    check_attribute_keys(changes)
    merged = merge_attributes(conversation.attributes, changes)
    if merged == conversation.attributes:
        return
    before = conversation.attributes
    keys = sorted(
        key for key in merged.keys() | before.keys() if merged.get(key) != before.get(key)
    )
    history.record(
        session,
        conversation.id,
        "attributes",
        actor,
        from_value={key: before.get(key) for key in keys},
        to_value={key: merged.get(key) for key in keys},
    )
    if PRIORITY_ATTRIBUTE in keys:
        history.record(
            session,
            conversation.id,
            "priority",
            actor,
            from_value=before.get(PRIORITY_ATTRIBUTE),
            to_value=merged.get(PRIORITY_ATTRIBUTE),
        )
    conversation.attributes = merged
    _touch(conversation)
    changed(session, conversation.id, "attributes", actor, conversation)
    if PRIORITY_ATTRIBUTE in keys:
        activity(session, conversation, "priority")


def set_status(session: Session, conversation: Conversation, status: str, actor: Actor) -> None:
    if status not in STATUSES:
        raise Invalid(f"Status must be one of {', '.join(STATUSES)}.")
    if status == conversation.status:
        return
    before = conversation.status
    history.record(session, conversation.id, "status", actor, from_value=before, to_value=status)
    conversation.status = status
    if status != "open":
        conversation.snoozed_until = None  # the status change says why it left "Snoozed"
    _touch(conversation)
    changed(session, conversation.id, "status", actor, conversation)
    for hook in _status_hooks:
        hook(session, conversation, before, actor)


def assign(
    session: Session, conversation: Conversation, agent_id: str | None, actor: Actor
) -> None:
    """Give the conversation to an agent (a bot: Fin handles it), or to nobody (hand over).

    ``conversation`` must have been read locked in this transaction (``_locked``).
    """
    if agent_id == conversation.assignee_id:
        return
    agent = None
    if agent_id is not None:
        agent = agent_repository.get(session, agent_id)
        if agent is None or not agent.active:
            raise NotFound(f"No active agent with id {agent_id!r}.")
    if actor.is_fin and not fin_may_assign(conversation):
        history.record(
            session,
            conversation.id,
            "assignment_ignored",
            actor,
            from_value=conversation.assignee_id,
            to_value=conversation.assignee_id,
            detail={"requested": agent_id, "owner": owner_kind(conversation)},
        )
        changed(session, conversation.id, "assignment_ignored", actor, conversation)
        return
    _change_owner(session, conversation, agent, actor)
    changed(session, conversation.id, "assignee", actor, conversation)


def fin_may_assign(conversation: Conversation) -> bool:
    """The take-over rule, as Fin meets it: Fin may reassign a conversation it owns or one
    waiting for a human (the contract: naming the Fin agent means Fin handles it again), never
    one a human owns. Only a human hands a human's conversation back to Fin."""
    return owner_kind(conversation) != "human"


def _change_owner(
    session: Session,
    conversation: Conversation,
    agent: Agent | None,
    actor: Actor,
    *,
    call_hooks: bool = True,
) -> None:
    """Apply an ownership change: history, the handover and take-over columns, the assignee."""
    now = utcnow()
    before = owner_kind(conversation)
    from_id = conversation.assignee_id
    detail: dict[str, Any] = {}
    if agent is not None and agent.is_bot:
        kind = "hand_back"
    elif before == "fin":
        # Fin lets go: to the queue, or straight to a person. A human taking it from Fin
        # themselves is a take-over.
        kind = "take_over" if agent is not None and agent.id == actor.agent_id else "handover"
        if kind == "handover":
            reason = conversation.attributes.get(HANDOVER_REASON_ATTRIBUTE)
            if actor.is_fin and reason is not None:
                detail["reason"] = reason
    elif agent is not None and agent.id == actor.agent_id:
        kind = "take_over"
    else:
        kind = "assigned"
    if kind == "handover":
        conversation.handed_over_at = now
        conversation.taken_over_at = None
    if agent is not None and not agent.is_bot and before != "human":
        # The first person to take it since Fin's handover: how long the end user waited.
        first_since_handover = before == "waiting" and conversation.taken_over_at is None
        if first_since_handover and conversation.handed_over_at is not None:
            waited = (now - conversation.handed_over_at).total_seconds()
            detail["seconds_after_handover"] = round(max(waited, 0.0), 3)
        conversation.taken_over_at = now
    history.record(
        session,
        conversation.id,
        kind,
        actor,
        from_value=from_id,
        to_value=agent.id if agent else None,
        detail=detail,
    )
    conversation.assignee = agent
    conversation.assignee_id = agent.id if agent else None
    if kind == "hand_back":
        conversation.snoozed_until = None  # Fin answers now: nothing to come back to
    conversation.last_activity_at = conversation.updated_at = now
    if not call_hooks:
        return
    if kind == "handover" and agent is None:
        # Routing first, so that alerts of the handover name the team and agent it chose.
        _came_to_wait(session, conversation, actor)
    for owner_hook in _owner_hooks:
        owner_hook(session, conversation, kind, actor)


def snooze(
    session: Session, conversation_id: str, until: datetime | None, actor: Actor
) -> Conversation:
    """Set the conversation aside until ``until``, or wake it now (None)."""
    conversation = _locked(session, conversation_id)
    set_snooze(session, conversation, until, actor)
    return conversation


def set_snooze(
    session: Session, conversation: Conversation, until: datetime | None, actor: Actor
) -> None:
    """Snooze: out of its queue (into "Snoozed") until ``until``, when the waker brings it
    back (``wake_due``); sooner if the end user writes. Only an open conversation a person
    must answer can wait so. The inbox hears of it; Fin does not, as nothing it reads has
    changed (it is told when the status changes: resolving a snoozed one ends its snooze)."""
    if until is None:
        _wake(session, conversation, actor, reason="agent")
        return
    try:
        until = as_utc(until)
    except OverflowError:  # the year 1 or 9999, an hour off UTC
        raise invalid(
            "A snooze must end in the future, within a year.", field="snoozed_until"
        ) from None
    now = utcnow()
    if until <= now:
        raise invalid("A snooze must end in the future.", field="snoozed_until")
    if until > now + SNOOZE_MAX:
        raise invalid("A conversation can be snoozed for a year at most.", field="snoozed_until")
    if conversation.status != "open":
        raise Conflict("Only an open conversation can be snoozed: reopen it first.")
    if owner_kind(conversation) == "fin":
        raise Conflict(
            "Fin is handling this conversation: take it over or hand it to the team first."
        )
    before = conversation.snoozed_until
    if before is not None and as_utc(before) == until:
        return
    history.record(
        session,
        conversation.id,
        "snooze",
        actor,
        from_value=isoformat(as_utc(before)) if before is not None else None,
        to_value=isoformat(until),
    )
    conversation.snoozed_until = until
    _touch(conversation)
    live.record(session, conversation.id, "snooze", actor, owner_kind(conversation))
    snoozed.mark(session)
    activity(session, conversation, "snooze")


def _wake(session: Session, conversation: Conversation, actor: Actor, *, reason: str) -> None:
    """End the conversation's snooze, if it has one: back in its queue."""
    until = conversation.snoozed_until
    if until is None:
        return
    history.record(
        session,
        conversation.id,
        "wake",
        actor,
        from_value=isoformat(as_utc(until)),
        detail={"reason": reason},
    )
    conversation.snoozed_until = None
    _touch(conversation)
    live.record(session, conversation.id, "wake", actor, owner_kind(conversation))
    activity(session, conversation, "wake")


def wake_due(session: Session, now: datetime | None = None, limit: int = 100) -> int:
    """Wake the snoozed conversations whose time has come (up to ``limit``): the waker's
    round. Returns how many it woke."""
    now = now or utcnow()
    woken = 0
    for conversation_id in repository.due_to_wake(session, now, limit):
        conversation = repository.get_for_update(session, conversation_id)
        until = conversation.snoozed_until if conversation is not None else None
        if conversation is None or until is None or as_utc(until) > now:
            continue  # changed meanwhile: woken, or snoozed again for longer
        _wake(session, conversation, SYSTEM, reason="time")
        woken += 1
    return woken


def next_wake_at(session: Session) -> datetime | None:
    return repository.next_wake_at(session)


def hand_over(session: Session, conversation_id: str, actor: Actor) -> Conversation:
    """Fin lets go: nobody owns the conversation until a human takes it."""
    conversation = _locked(session, conversation_id)
    assign(session, conversation, None, actor)
    return conversation


def take_over(session: Session, conversation_id: str, agent_id: str, actor: Actor) -> Conversation:
    """A human agent becomes the owner, from Fin, from nobody or from another agent."""
    conversation = _locked(session, conversation_id)
    assign(session, conversation, agent_id, actor)
    return conversation


def hand_back_to_fin(session: Session, conversation_id: str, actor: Actor) -> Conversation:
    fin = agent_repository.bots(session)
    if not fin:
        raise NotFound("There is no bot agent to hand the conversation back to.")
    conversation = _locked(session, conversation_id)
    assign(session, conversation, fin[0].id, actor)
    return conversation


def list_conversations(
    session: Session,
    f: repository.ConversationFilter,
    *,
    limit: int,
    before: tuple[datetime, str] | None = None,
) -> list[Conversation]:
    return list(repository.list_page(session, f, limit=limit, before=before))


def other_conversations(
    session: Session, conversation: Conversation, limit: int
) -> list[Conversation]:
    """The end user's other conversations, most recent first, whatever their status."""
    theirs = repository.ConversationFilter(user_id=conversation.user_id)
    found = list_conversations(session, theirs, limit=limit + 1)
    return [c for c in found if c.id != conversation.id][:limit]


def latest_messages(
    session: Session, conversation_ids: Sequence[str]
) -> dict[str, repository.Preview]:
    """Each conversation's newest message, for its row in a queue."""
    return repository.latest_messages(session, conversation_ids)


def read_up_to(session: Session, agent_id: str, conversation_id: str) -> int:
    """The seq of the newest message of the conversation the agent was shown (0: never
    opened): compare before ``mark_read``, so that opening a conversation again writes
    nothing when nothing is new."""
    return repository.read_seq(session, agent_id, conversation_id)


def mark_read(session: Session, agent_id: str, conversation_id: str, seq: int) -> None:
    """The agent was shown the conversation up to its message ``seq`` (the newest shown, which
    a later message may follow by the time this runs: that one stays unread). Only forward."""
    repository.mark_read(session, agent_id, conversation_id, seq, utcnow())


def unread_among(session: Session, agent_id: str, conversation_ids: Sequence[str]) -> set[str]:
    """Which of these conversations (a queue's page) have news for the agent: a message by
    someone else after the newest they were shown (``repository.unread_among``)."""
    return repository.unread_among(session, agent_id, conversation_ids)


def known_tags(session: Session, limit: int = 500) -> list[str]:
    return repository.known_tags(session, limit)


def queue_counts(session: Session, agent_id: str) -> dict[str, int]:
    """Open conversations in each queue, for the inbox sidebar: read from the kept counts
    (``counts``), with this transaction's own moves not yet added to them."""
    kept = repository.open_counts(session, agent_id)
    queues = {"waiting": kept.waiting, "mine": kept.mine, "fin": kept.fin, "all": kept.all}
    for (status, assignee_id), change in counts.pending(session).items():
        if status != "open":
            continue
        queues["all"] += change
        if not assignee_id:
            queues["waiting"] += change
        elif assignee_id == agent_id:
            queues["mine"] += change
        agent = agent_repository.get(session, assignee_id) if assignee_id else None
        if agent is not None and agent.is_bot:
            queues["fin"] += change
    # Snoozed ones are in "All" and "Snoozed", not in the queue they wake back into.
    set_aside = repository.snoozed_counts(session, agent_id)
    queues["waiting"] -= set_aside.waiting
    queues["mine"] -= set_aside.mine
    queues["fin"] -= set_aside.fin
    queues["snoozed"] = set_aside.all
    return queues
