"""The chat's actions: visitors' sessions, their conversations and messages, ratings, and what
Fin says back through the Intercom channel (``fin_agent_api``, ``custom_channel``).

A chat conversation is an ordinary conversation with ``channel = 'chat'``; the Fin bot agent
owns it while Fin answers (as for Messenger conversations), nobody once Fin hands it over. What
must reach Intercom is queued in the outbox (kind ``chat``, in order per conversation: see
``chat.delivery``), in the transaction of the change. Services never commit.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape
from typing import Any

from sqlalchemy.orm import Session

from findesk.agents import service as agents
from findesk.attachments import service as attachments
from findesk.attachments.models import StoredFile
from findesk.chat import repository
from findesk.chat.models import ChatConversation, ChatMessageExtra, ChatSession, ChatUpload
from findesk.conversations import history
from findesk.conversations import repository as conversation_repository
from findesk.conversations import service as conversations
from findesk.conversations.models import Conversation, Message
from findesk.csat import repository as csat_repository
from findesk.csat import service as csat
from findesk.csat.models import CsatRating
from findesk.kit import html
from findesk.kit.actor import END_USER, FIN, SYSTEM, Actor
from findesk.kit.errors import Conflict, Invalid, NotFound, Problem
from findesk.kit.periodic import Every, EveryPerKey
from findesk.kit.secrets import hash_secret, new_secret
from findesk.kit.settings import Settings
from findesk.kit.settings_in_use import current_settings
from findesk.kit.text import clean_text
from findesk.kit.timeutil import as_utc, isoformat, utcnow
from findesk.live import service as live
from findesk.notifier.models import OutboxEvent
from findesk.notifier.service import recorded as outbox_recorded
from findesk.throttle import service as throttle
from findesk.users import repository as user_repository
from findesk.users import service as users
from findesk.users.models import EndUser

CHAT = "chat"
OUTBOX_KIND = "chat"  # the outbox kind of calls to Intercom (``chat.delivery``)
TOKEN_PREFIX = "fcs"  # noqa: S105 (a prefix, not a secret)
SESSION_TTL = timedelta(days=30)
TOUCH_EVERY = timedelta(minutes=10)  # how stale last_used_at may get before a request renews it
CONVERSATIONS_SHOWN = 50
ATTACHMENTS_MAX = 10
REMARK_MAX = 2000
TITLE_MAX = 80

FIN_AGENT_API = "fin_agent_api"
CUSTOM_CHANNEL = "custom_channel"
RATINGS = {"terrible": 1, "bad": 2, "ok": 3, "good": 4, "amazing": 5}
# While Fin's state is one of these (and Fin owns the conversation), the visitor talks to Fin.
FIN_ACTIVE = frozenset({"thinking", "replying", "awaiting_user_reply"})
FIN_STATES = FIN_ACTIVE | {"escalated", "resolved", "complete"}
FINAL_STATES = frozenset({"escalated", "resolved", "complete"})

# Live-feed kinds the chat adds (``findesk.live``): the visitor's stream turns them into events.
TYPING_KIND = "typing"
FIN_STATE_KIND = "fin_state"
RATING_REQUEST_KIND = "rating_requested"


def unauthorized(message: str, code: str = "unauthorized") -> Problem:
    return Problem(message, status=401, code=code)


# --- configuration ------------------------------------------------------------------------------


def config(settings: Settings) -> dict[str, Any]:
    return {
        "channel": settings.chat_channel,
        "title": settings.chat_title,
        "greeting": settings.chat_greeting,
        "accent_color": settings.chat_accent_color,
        "anonymous_allowed": settings.chat_allow_anonymous,
        "identity_required": not settings.chat_allow_anonymous,
    }


def allowed_origins(settings: Settings) -> set[str]:
    """The origins that may call the widget API from a browser: the company's sites, and
    findesk's own."""
    found = {o.strip().rstrip("/") for o in settings.chat_allowed_origins.split(",") if o.strip()}
    base = settings.base_url
    scheme, _, rest = base.partition("://")
    found.add(f"{scheme}://{rest.split('/', 1)[0]}")
    return found


# --- visitors' identity and sessions ---------------------------------------------------------


@dataclass(frozen=True)
class Visitor:
    session_id: str
    user_id: str
    anonymous: bool


def user_hash(secret: str, user_id: str) -> str:
    """What the site's backend computes for a signed identity: hex HMAC-SHA256 of the id."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class NewSession:
    token: str
    row: ChatSession
    user: EndUser


def start_session(
    session: Session,
    settings: Settings,
    *,
    user_id: str | None = None,
    hash_: str | None = None,
    name: str | None = None,
    email: str | None = None,
    token: str | None = None,
    address: str = "unknown",
) -> NewSession:
    """A session for a visitor: anonymous, signed (``user_id`` with its ``user_hash``), or the
    renewal of an existing one (``token``). A wrong or missing hash is refused (401) before
    anything is written; so is an address that started too many anonymous sessions this hour
    (429, ``findesk.throttle``)."""
    now = utcnow()
    if token is not None:
        row = repository.session_by_token_hash(session, hash_secret(token))
        if row is None or as_utc(row.expires_at) <= now:
            raise unauthorized("This chat session has expired; start a new one.", "invalid_token")
        row.last_used_at = now
        row.expires_at = now + SESSION_TTL
        user = user_repository.get(session, row.user_id)
        if user is None:
            raise unauthorized("This chat session has expired; start a new one.", "invalid_token")
        return NewSession(token, row, user)
    if user_id is not None:
        secret = settings.chat_identity_secret
        if secret is None:
            raise unauthorized("Signed identities are not enabled.", "identity_not_enabled")
        expected = user_hash(secret.get_secret_value(), user_id)
        if not hmac.compare_digest(expected, (hash_ or "").strip().lower()):
            raise unauthorized("The identity's user_hash does not match.", "invalid_identity")
        user, created = users.create_user(
            session, object_id=f"chat-user:{user_id}", name=name, email=email
        )
        if not created:
            changes = {
                key: value
                for key, value in (("name", name), ("email", email))
                if value and getattr(user, key) != value
            }
            if changes:
                user = users.update_user(session, user.id, changes, SYSTEM)
        anonymous = False
    else:
        if not settings.chat_allow_anonymous:
            raise unauthorized("Sign in on the site to chat.", "identity_required")
        throttle.take_hourly(
            session,
            throttle.Counter(throttle.CHAT_ANONYMOUS, address),
            settings.chat_anonymous_per_hour,
            "Too many new chats from this address.",
            now,
        )
        user, _ = users.create_user(session, object_id=f"chat-visitor:{uuid.uuid4()}")
        anonymous = True
    if prune_due():
        prune(session, settings, now)
    token = new_secret(TOKEN_PREFIX)
    row = ChatSession(
        token_hash=hash_secret(token),
        user_id=user.id,
        anonymous=anonymous,
        created_at=now,
        last_used_at=now,
        expires_at=now + SESSION_TTL,
    )
    session.add(row)
    session.flush()
    return NewSession(token, row, user)


UPLOAD_KEPT = timedelta(days=1)  # an upload not sent by then is removed
INBOUND_EVENTS_KEPT = timedelta(days=30)  # Intercom's event ids, for spotting repeats
prune_due = Every(3600.0).due


def prune(session: Session, settings: Settings, now: datetime | None = None) -> None:
    """Housekeeping (at most hourly, riding along with a new session): expired sessions,
    uploads never sent (and their files), old inbound event ids."""
    now = now or utcnow()
    for upload in repository.expired_uploads(session, now - UPLOAD_KEPT):
        (settings.attachments_dir / upload.key).unlink(missing_ok=True)
        session.delete(upload)
    repository.purge_sessions(session, now)
    repository.purge_inbound_events(session, now - INBOUND_EVENTS_KEPT)


def authenticate(session: Session, token: str) -> Visitor:
    """The visitor a bearer token speaks for (its session renewed now and then), or 401."""
    row = repository.session_by_token_hash(session, hash_secret(token))
    now = utcnow()
    if row is None or as_utc(row.expires_at) <= now:
        raise unauthorized("Start a chat session first.", "invalid_token")
    if now - as_utc(row.last_used_at) > TOUCH_EVERY:
        row.last_used_at = now
        row.expires_at = now + SESSION_TTL
    return Visitor(row.id, row.user_id, row.anonymous)


def session_out(new: NewSession) -> dict[str, Any]:
    return {
        "token": new.token,
        "expires_at": isoformat(as_utc(new.row.expires_at)),
        "user": {
            "id": new.user.id,
            "name": new.user.name,
            "email": new.user.email,
            "anonymous": new.row.anonymous,
        },
    }


# --- conversations -------------------------------------------------------------------------------


def _own(session: Session, visitor: Visitor, conversation_id: str) -> Conversation:
    conversation = repository.visitor_conversation(session, visitor.user_id, conversation_id)
    if conversation is None:
        raise NotFound("No such conversation.")
    return conversation


def waiting_for_human(conversation: Conversation) -> bool:
    return conversation.status == "open" and conversations.owner_kind(conversation) == "waiting"


def conversation_state(conversation: Conversation, chat: ChatConversation | None) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "status": conversation.status,
        "fin_state": chat.fin_state if chat is not None else None,
        "waiting_for_human": waiting_for_human(conversation),
    }


def list_conversations(session: Session, visitor: Visitor) -> list[dict[str, Any]]:
    found = list(repository.visitor_conversations(session, visitor.user_id, CONVERSATIONS_SHOWN))
    return conversations_out(session, found)


def conversations_out(session: Session, found: list[Conversation]) -> list[dict[str, Any]]:
    """The conversations as the widget's list shows them."""
    ids = [c.id for c in found]
    chats = repository.chat_conversations(session, ids)
    latest = repository.latest_public_messages(session, ids)
    unread = repository.unread_counts(session, found)
    out = []
    for conversation in found:
        last = latest.get(conversation.id)
        out.append(
            {
                **conversation_state(conversation, chats.get(conversation.id)),
                "title": conversation.title,
                "updated_at": isoformat(as_utc(conversation.last_activity_at)),
                "last_message": {
                    "text": (last.plain_text or "")[:200] if last else "",
                    "author_type": author_type(last) if last else None,
                },
                "unread": unread.get(conversation.id, 0),
            }
        )
    return out


def author_type(message: Message) -> str:
    if message.author_type == "end_user":
        return "user"
    agent = message.author_agent
    return "fin" if agent is not None and agent.is_bot else "agent"


def message_out(
    message: Message, extras: dict[str, ChatMessageExtra] | None = None
) -> dict[str, Any]:
    kind = author_type(message)
    if kind == "user":
        user = message.author_user
        name, avatar = (user.name if user else None), (user.photo_url if user else None)
    else:
        agent = message.author_agent
        name = (agent.alias or agent.name) if agent else None
        avatar = agent.photo_url if agent else None
    extra = (extras or {}).get(message.id)
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "author": {"type": kind, "name": name, "avatar_url": avatar},
        "body_html": html.sanitize(message.body or ""),
        "created_at": isoformat(as_utc(message.created_at)),
        "attachments": [
            {
                "name": a.get("filename"),
                "url": a.get("url"),
                "content_type": a.get("content_type"),
                "size": a.get("size"),
            }
            for a in message.attachments or []
        ],
        "quick_replies": list(extra.quick_replies) if extra is not None else [],
    }


def messages_out(session: Session, messages: list[Message]) -> list[dict[str, Any]]:
    extras = repository.message_extras(session, [m.id for m in messages])
    return [message_out(m, extras) for m in messages]


def list_messages(
    session: Session, visitor: Visitor, conversation_id: str, after_id: str | None
) -> list[dict[str, Any]]:
    _own(session, visitor, conversation_id)
    after_seq = 0
    if after_id:
        after_seq = repository.message_seq(session, conversation_id, after_id) or 0
    return messages_out(
        session, list(repository.public_messages(session, conversation_id, after_seq=after_seq))
    )


def text_to_html(text: str | None) -> str | None:
    """A visitor's text as the HTML findesk stores: escaped, paragraphs and line breaks kept."""
    if text is None:
        return None
    text = text.replace("\r\n", "\n").strip()
    if not text:
        return None
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    return "".join(f"<p>{escape(p.strip()).replace(chr(10), '<br>')}</p>" for p in paragraphs)


def _title(text: str | None, attachments: list[dict[str, Any]]) -> str | None:
    line = " ".join((text or "").split())
    if not line and attachments:
        line = str(attachments[0].get("filename") or "")
    return line[: TITLE_MAX - 1] + "…" if len(line) > TITLE_MAX else (line or None)


def _uploads(
    session: Session, settings: Settings, visitor: Visitor, keys: list[str]
) -> tuple[list[dict[str, Any]], list[ChatUpload]]:
    """The visitor's uploads ``keys`` as message attachments, and their rows."""
    keys = list(dict.fromkeys(keys))
    if len(keys) > ATTACHMENTS_MAX:
        raise Invalid(f"A message has at most {ATTACHMENTS_MAX} attachments.")
    found = {row.key: row for row in repository.uploads(session, visitor.session_id, keys)}
    if any(key not in found for key in keys):
        raise Invalid("An attachment was not uploaded in this session (or was sent already).")
    described = []
    for key in keys:
        upload = found[key]
        stored = StoredFile(key=upload.key, filename=upload.filename)
        out = attachments.as_attachment(stored, settings.base_url)
        out["content_type"] = upload.content_type
        out["size"] = upload.size
        described.append(out)
    return described, [found[key] for key in keys]


def _keep_uploads(session: Session, uploads: list[ChatUpload], conversation_id: str) -> None:
    """Sent: each upload becomes a file of the conversation (served at ``/files/...``)."""
    for upload in uploads:
        session.add(
            StoredFile(
                key=upload.key,
                conversation_id=conversation_id,
                uploaded_by=None,
                filename=upload.filename,
                content_type=upload.content_type,
                size=upload.size,
                sha256=upload.sha256,
            )
        )
        session.delete(upload)


def start_conversation(
    session: Session,
    settings: Settings,
    visitor: Visitor,
    *,
    body: str | None,
    attachment_keys: list[str],
) -> tuple[Conversation, Message]:
    """The visitor's new conversation with its first message; Fin gets it when the chat has a
    channel (the Fin bot owns it meanwhile), else it waits for a person in the inbox."""
    fin = agents.fin_agent(session) if settings.chat_channel != "off" else None
    files, uploads = _uploads(session, settings, visitor, attachment_keys)
    text = body
    conversation, message, _ = conversations.open_conversation(
        session,
        user_id=visitor.user_id,
        first=conversations.NewMessage(
            author=conversations.Author("end_user", visitor.user_id),
            body=text_to_html(text),
            attachments=files,
        ),
        actor=SYSTEM,
        title=_title(text, files),
        assignee_id=fin.id if fin is not None else None,
        channel=CHAT,
    )
    _keep_uploads(session, uploads, conversation.id)
    channel = settings.chat_channel if fin is not None else None
    chat = ChatConversation(
        conversation_id=conversation.id,
        fin_channel=channel,
        fin_state="thinking" if channel else None,
        created_at=utcnow(),
    )
    session.add(chat)
    if channel == FIN_AGENT_API:
        _enqueue(session, conversation.id, "fin_start", _fin_start_body(conversation, message))
    elif channel == CUSTOM_CHANNEL:
        _enqueue(session, conversation.id, "cc_new_conversation", _cc_base(conversation))
        _enqueue(
            session,
            conversation.id,
            "cc_new_message",
            {**_cc_base(conversation), "body": _plain(message)},
        )
    return conversation, message


def post_message(
    session: Session,
    settings: Settings,
    visitor: Visitor,
    conversation_id: str,
    *,
    body: str | None,
    attachment_keys: list[str],
    quick_reply_id: str | None,
) -> Message:
    """The visitor writes. While Fin has the conversation, Fin gets it; otherwise (Fin handed
    over or finished, or a person owns it) the team answers in the inbox."""
    conversation = _own(session, visitor, conversation_id)
    chat = repository.chat_conversation_for_update(session, conversation_id)
    quick_label = None
    if quick_reply_id is not None:
        quick_label = _quick_reply_label(session, conversation_id, quick_reply_id)
        if not body:
            body = quick_label
    files, uploads = _uploads(session, settings, visitor, attachment_keys)
    _keep_uploads(session, uploads, conversation_id)
    message, _ = conversations.add_message(
        session,
        conversation_id,
        conversations.NewMessage(
            author=conversations.Author("end_user", visitor.user_id),
            body=text_to_html(body),
            attachments=files,
        ),
        SYSTEM,
    )
    visitor_typing.forget(conversation_id)  # their message ends their typing: the next shows
    if chat is None or chat.fin_channel is None:
        return message
    fin_has_it = conversations.owner_kind(conversation) == "fin"
    if fin_has_it and chat.fin_state in FIN_ACTIVE:
        if chat.fin_channel == FIN_AGENT_API:
            _enqueue(session, conversation_id, "fin_reply", _fin_reply_body(conversation, message))
        else:
            base = _cc_base(conversation)
            if quick_reply_id is not None:
                call = {**base, "quick_reply_option_id": quick_reply_id}
                _enqueue(session, conversation_id, "cc_quick_reply", call)
            elif chat.pending_attribute is not None:
                attribute = {"id": chat.pending_attribute.get("id"), "value": _plain(message)}
                _enqueue(session, conversation_id, "cc_attribute", {**base, "attribute": attribute})
                chat.pending_attribute = None
            else:
                _enqueue(
                    session, conversation_id, "cc_new_message", {**base, "body": _plain(message)}
                )
        _set_fin_state(session, conversation, chat, "thinking", SYSTEM)
    elif fin_has_it:
        # Fin is done with it (resolved, complete) and the visitor wrote again: a person answers.
        conversations.assign(session, conversation, None, SYSTEM)
    return message


def _quick_reply_label(session: Session, conversation_id: str, option_id: str) -> str:
    """The label of a quick-reply button Fin offered in the conversation (the latest offer)."""
    messages = repository.public_messages(session, conversation_id)
    extras = repository.message_extras(session, [m.id for m in messages])
    for message in reversed(messages):
        extra = extras.get(message.id)
        for option in extra.quick_replies if extra is not None else []:
            if option.get("id") == option_id:
                return str(option.get("label") or option_id)
    raise Invalid("No such quick reply in this conversation.")


def _plain(message: Message) -> str:
    return html.to_text(message.body) if message.body else ""


def upload(
    session: Session, settings: Settings, visitor: Visitor, file: attachments.Upload
) -> dict[str, Any]:
    """Store a visitor's file until a message sends it (``attachments`` in the message)."""
    stored = attachments.store(
        session,
        file,
        directory=settings.attachments_dir,
        conversation_id="",  # (not a row: the file is the conversation's once sent)
        agent_id=None,
        max_bytes=settings.max_attachment_bytes,
    )
    session.expunge(stored)
    row = ChatUpload(
        key=stored.key,
        session_id=visitor.session_id,
        filename=stored.filename,
        content_type=stored.content_type,
        size=stored.size,
        sha256=stored.sha256,
        created_at=utcnow(),
    )
    session.add(row)
    described = attachments.as_attachment(stored, settings.base_url)
    return {
        "key": row.key,
        "name": row.filename,
        "content_type": row.content_type,
        "size": row.size,
        "url": described["url"],
    }


visitor_typing = EveryPerKey(1.0)  # one live event per conversation a second at most


def typing(session: Session, visitor: Visitor, conversation_id: str) -> None:
    """The visitor is typing: the inbox shows it (live feed; at most one event a second per
    conversation in this process, however often the widget calls). Nothing goes to Intercom
    (neither channel takes it); the check keeps the call to the visitor's own conversations."""
    conversation = _own(session, visitor, conversation_id)
    if visitor_typing.due(conversation.id):
        owner = conversations.owner_kind(conversation)
        live.record(session, conversation.id, TYPING_KIND, END_USER, owner)


def mark_read(session: Session, visitor: Visitor, conversation_id: str) -> None:
    conversation = _own(session, visitor, conversation_id)
    conversations.update_conversation(
        session, conversation.id, {"last_user_read_at": utcnow()}, SYSTEM
    )


def rate(
    session: Session,
    visitor: Visitor,
    conversation_id: str,
    *,
    rating: str,
    remark: str | None,
) -> None:
    """The visitor's rating, in findesk's CSAT (once); with the Fin Agent API, when Fin asked
    for it, also to ``/fin/csat``."""
    conversation = _own(session, visitor, conversation_id)
    score = RATINGS.get(rating)
    if score is None:
        raise Invalid(f"The rating is one of {', '.join(RATINGS)}.")
    remark = (
        clean_text(
            (remark or "").strip(),
            field="remark",
            max_length=REMARK_MAX,
            label="The remark",
            multiline=True,
        )
        or None
    )
    chat = repository.chat_conversation(session, conversation_id)
    asked = csat_repository.get(session, conversation_id)
    fin_asked = chat is not None and chat.csat_requested
    if asked is None and not fin_asked and conversation.status == "open":
        raise Conflict("This conversation has not asked for a rating.")
    now = utcnow()
    if asked is None:
        _rating_row(session, conversation)
    if not csat_repository.record_score(session, conversation_id, score, remark, now):
        raise Conflict("You have rated this conversation already.")
    conversation.updated_at = now
    history.record(
        session,
        conversation_id,
        csat.RATING_KIND,
        SYSTEM,
        to_value=score,
        detail={"comment": remark},
    )
    live.record(
        session, conversation_id, csat.RATING_KIND, SYSTEM, conversations.owner_kind(conversation)
    )
    if chat is not None and chat.fin_channel == FIN_AGENT_API and chat.csat_requested:
        body: dict[str, Any] = {"conversation_id": conversation_id, "rating": rating}
        if remark:
            body["remark"] = remark
        _enqueue(session, conversation_id, "fin_csat", body)


def _rating_row(session: Session, conversation: Conversation) -> CsatRating:
    """The conversation's CSAT request row (the widget asks, so its token is never sent)."""
    row = CsatRating(
        conversation_id=conversation.id,
        token_hash=hash_secret(new_secret(csat.TOKEN_PREFIX)),
        agent_id=conversation.assignee_id,
        requested_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def request_rating(session: Session, conversation: Conversation, actor: Actor) -> None:
    """Ask the visitor for a rating in the widget (once per conversation)."""
    if csat_repository.get(session, conversation.id) is None:
        _rating_row(session, conversation)
        history.record(session, conversation.id, csat.REQUEST_KIND, actor, detail={})
    live.record(
        session, conversation.id, RATING_REQUEST_KIND, actor, conversations.owner_kind(conversation)
    )


def after_status_change(
    session: Session, conversation: Conversation, before: str, actor: Actor
) -> None:
    """A chat conversation resolved by a person (or by Fin, with FINDESK_CSAT_FOR_FIN_RESOLVED)
    asks for a rating in the widget rather than with a message and a link (``findesk.csat``)."""
    if conversation.channel != CHAT or conversation.status not in csat.ASKED_WHEN:
        return
    settings = current_settings()
    if not settings.csat_enabled:
        return
    if actor.kind == "agent" or (actor.is_fin and settings.csat_for_fin_resolved):
        request_rating(session, conversation, actor)


conversations.on_status_change(after_status_change)


# --- what Fin says (both channels' inbound events end here) -----------------------------------


def chat_of(session: Session, conversation_id: str) -> tuple[Conversation, ChatConversation] | None:
    """A chat conversation and its chat row, locked, or None (not one of the chat's)."""
    chat = repository.chat_conversation_for_update(session, conversation_id)
    if chat is None:
        return None
    conversation = conversation_repository.get_for_update(session, conversation_id)
    if conversation is None:
        return None
    return conversation, chat


def _set_fin_state(
    session: Session, conversation: Conversation, chat: ChatConversation, state: str, actor: Actor
) -> None:
    if state == chat.fin_state:
        return
    chat.fin_state = state
    live.record(
        session, conversation.id, FIN_STATE_KIND, actor, conversations.owner_kind(conversation)
    )


def fin_state(session: Session, conversation_id: str, state: str) -> None:
    """Fin's state changed (not an escalation nor a resolution: those say more)."""
    found = chat_of(session, conversation_id)
    if found is None or state not in FIN_STATES:
        return
    conversation, chat = found
    if state in FIN_ACTIVE and chat.fin_state in FINAL_STATES:
        return  # a late event: Fin finished already
    _set_fin_state(session, conversation, chat, state, FIN)


def fin_message(
    session: Session,
    conversation_id: str,
    *,
    external_id: str,
    body: str,
    quick_replies: list[dict[str, Any]] | None = None,
    state: str | None = "awaiting_user_reply",
) -> Message | None:
    """Fin's reply, stored once by its id at Intercom (a repeat is ignored), authored by the
    Fin bot agent, sanitised."""
    found = chat_of(session, conversation_id)
    if found is None:
        return None
    conversation, chat = found
    fin = agents.fin_agent(session)
    if fin is None:
        return None
    safe = html.sanitize(body or "")
    if html.is_blank(safe):
        safe = "<p>…</p>"
    message, created = conversations.add_message(
        session,
        conversation_id,
        conversations.NewMessage(
            author=conversations.Author("agent", fin.id),
            body=safe,
            object_id=_fin_message_key(chat.fin_channel, conversation_id, external_id),
        ),
        FIN,
    )
    if not created:
        return message
    if quick_replies:
        session.flush()  # the message's row first: the extra refers to it
        options = [
            {"id": str(o.get("id")), "label": str(o.get("label") or o.get("id"))[:200]}
            for o in quick_replies
            if isinstance(o, dict) and o.get("id") is not None
        ]
        session.add(ChatMessageExtra(message_id=message.id, quick_replies=options))
    if state is not None and not (state in FIN_ACTIVE and chat.fin_state in FINAL_STATES):
        _set_fin_state(session, conversation, chat, state, FIN)
    return message


def _fin_message_key(channel: str | None, conversation_id: str, external_id: str) -> str:
    """The message's object_id: Intercom's id of it, within the conversation (hashed when
    long: object ids have 255 characters at most)."""
    if len(external_id) > 150:
        external_id = "sha256:" + hashlib.sha256(external_id.encode()).hexdigest()
    return f"chat:{channel}:{conversation_id}:{external_id}"


def fin_escalated(session: Session, conversation_id: str, reason: str | None) -> None:
    """Fin hands over: the conversation waits for a person in the inbox (routing, SLAs and
    alerts apply), with Fin's reason in ``fin_handover_reason``."""
    found = chat_of(session, conversation_id)
    if found is None:
        return
    conversation, chat = found
    _set_fin_state(session, conversation, chat, "escalated", FIN)
    if conversations.owner_kind(conversation) != "fin":
        return
    if reason:
        conversations.merge_conversation_attributes(
            session,
            conversation,
            {conversations.HANDOVER_REASON_ATTRIBUTE: str(reason)[:1000]},
            FIN,
        )
    conversations.assign(session, conversation, None, FIN)


def intercom_gave_up(session: Session, conversation_id: str, error: str) -> None:
    """Intercom refused a call for good: the team answers instead of Fin (the reason says why,
    as Fin's would)."""
    found = chat_of(session, conversation_id)
    if found is None:
        return
    conversation, chat = found
    _set_fin_state(session, conversation, chat, "escalated", SYSTEM)
    if conversations.owner_kind(conversation) != "fin":
        return
    reason = f"Intercom did not take the conversation ({error[:200]})"
    conversations.merge_conversation_attributes(
        session, conversation, {conversations.HANDOVER_REASON_ATTRIBUTE: reason}, SYSTEM
    )
    conversations.assign(session, conversation, None, SYSTEM)


def fin_resolved(session: Session, conversation_id: str) -> None:
    found = chat_of(session, conversation_id)
    if found is None:
        return
    conversation, chat = found
    _set_fin_state(session, conversation, chat, "resolved", FIN)
    if conversations.owner_kind(conversation) == "fin" and conversation.status == "open":
        conversations.set_status(session, conversation, "resolved", FIN)


def fin_asks_rating(session: Session, conversation_id: str) -> None:
    found = chat_of(session, conversation_id)
    if found is None:
        return
    conversation, chat = found
    chat.csat_requested = True
    request_rating(session, conversation, FIN)


def fin_typing(session: Session, conversation_id: str) -> None:
    found = chat_of(session, conversation_id)
    if found is None:
        return
    conversation, _chat = found
    live.record(session, conversation_id, TYPING_KIND, FIN, conversations.owner_kind(conversation))


def fin_asks_attribute(
    session: Session,
    conversation_id: str,
    *,
    external_id: str,
    attribute: dict[str, Any],
    prompt: str,
) -> None:
    found = chat_of(session, conversation_id)
    if found is None:
        return
    _conversation, chat = found
    chat.pending_attribute = {
        "id": str(attribute.get("id")),
        "name": attribute.get("name"),
        "type": attribute.get("type"),
    }
    label = prompt or str(attribute.get("name") or attribute.get("id") or "")
    fin_message(session, conversation_id, external_id=external_id, body=f"<p>{escape(label)}</p>")


def note_intercom_id(session: Session, conversation_id: str, intercom_id: str | None) -> None:
    if not intercom_id:
        return
    chat = repository.chat_conversation(session, conversation_id)
    if chat is not None and chat.intercom_conversation_id != intercom_id:
        chat.intercom_conversation_id = str(intercom_id)[:255]


def agent_typing(session: Session, conversation_id: str, actor: Actor) -> None:
    """A person types in a chat conversation: the visitor's widget shows it (live feed)."""
    conversation = repository.chat_conversation(session, conversation_id)
    if conversation is None:
        return
    live.record(session, conversation_id, TYPING_KIND, actor, "human")


def first_time(session: Session, key: str) -> bool:
    return repository.first_time(session, key, utcnow())


def is_chat(session: Session, conversation_id: str) -> bool:
    return conversation_repository.channel_of(session, conversation_id) == CHAT


# --- what goes to Intercom (through the outbox) ------------------------------------------------


def _enqueue(session: Session, conversation_id: str, call: str, body: dict[str, Any]) -> None:
    session.add(
        OutboxEvent(
            conversation_id=conversation_id,
            reason=call,
            kind=OUTBOX_KIND,
            payload=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        )
    )
    outbox_recorded.mark(session)


def _timestamp(at: datetime) -> str:
    return isoformat(as_utc(at))


def _fin_user(user: EndUser) -> dict[str, Any]:
    out: dict[str, Any] = {"id": user.id}
    if user.name:
        out["name"] = user.name
    if user.email:
        out["email"] = user.email
    attributes = {
        k: v for k, v in (user.attributes or {}).items() if isinstance(v, str | int | float | bool)
    }
    if attributes:
        out["attributes"] = dict(list(attributes.items())[:10])
    return out


def _fin_attachments(message: Message) -> list[dict[str, Any]]:
    return [
        {"type": "url", "url": a.get("url"), "name": a.get("filename")}
        for a in (message.attachments or [])[:10]
        if a.get("url")
    ]


def _fin_reply_body(conversation: Conversation, message: Message) -> dict[str, Any]:
    body: dict[str, Any] = {
        "conversation_id": conversation.id,
        "message": {
            "author": "user",
            "body": _plain(message) or "(attachment)",
            "timestamp": _timestamp(message.created_at),
        },
        "user": _fin_user(conversation.user),
    }
    files = _fin_attachments(message)
    if files:
        body["attachments"] = files
    return body


def _fin_start_body(conversation: Conversation, message: Message) -> dict[str, Any]:
    body = _fin_reply_body(conversation, message)
    attributes = {
        k: v
        for k, v in (conversation.attributes or {}).items()
        if isinstance(v, str | int | float | bool)
    }
    body["conversation_metadata"] = {
        "history": [],  # the first message starts the conversation: nothing came before
        "attributes": dict(list(attributes.items())[:10]),
    }
    return body


def _cc_base(conversation: Conversation) -> dict[str, Any]:
    user = conversation.user
    # Intercom takes a user only with a name and an email: a signed visitor the site sent
    # without them is a lead (with what is known), as an anonymous one is.
    anonymous = (user.object_id or "").startswith("chat-visitor:")
    known = not anonymous and bool(user.name) and bool(user.email)
    contact: dict[str, Any] = {"type": "user" if known else "lead", "external_id": user.id}
    if user.name:
        contact["name"] = user.name
    if user.email:
        contact["email"] = user.email
    return {"external_conversation_id": conversation.id, "contact": contact}


# --- the visitor's live stream ------------------------------------------------------------------


@dataclass
class StreamState:
    """What a visitor's stream has passed on: their conversations, and per conversation the
    seq of the newest message sent (messages after it go out with the next change)."""

    user_id: str
    conversations: set[str]
    watermarks: dict[str, int]
    states: dict[str, dict[str, Any]] = field(default_factory=dict)  # the last one sent


def stream_state(session: Session, visitor: Visitor, resume_from: int | None) -> StreamState:
    """From now, or (resuming) from the moment of the live-feed row ``resume_from``."""
    ids = repository.visitor_conversation_ids(session, visitor.user_id)
    at = repository.activity_at(session, resume_from) if resume_from else None
    marks = {
        cid: (
            repository.last_seq_before(session, cid, at)
            if at is not None
            else repository.last_seq(session, cid)
        )
        for cid in ids
    }
    return StreamState(visitor.user_id, ids, marks)


CONVERSATION_KINDS = frozenset({"conversation", "assignee", "status", FIN_STATE_KIND})


def concerns(state: StreamState, item: dict[str, Any]) -> bool:
    """Whether a live-feed row may be news for this visitor's stream: one of their
    conversations, or one of theirs just made (the feed says whose conversation a row is
    about). Every other row is skipped without a query: each visitor's stream sees every row."""
    if item["conversation_id"] in state.conversations:
        return True
    return item["kind"] == "conversation" and item.get("user_id") == state.user_id


def stream_events(
    session: Session, state: StreamState, items: list[dict[str, Any]]
) -> list[tuple[int, str, dict[str, Any]]]:
    """The widget's events (id, name, data) for live-feed rows, limited to the visitor's own
    conversations."""
    out: list[tuple[int, str, dict[str, Any]]] = []
    for item in items:
        cid, kind, event_id = item["conversation_id"], item["kind"], item["id"]
        if not concerns(state, item):
            continue
        if cid not in state.conversations:  # a conversation of theirs, new (another tab)
            if repository.visitor_conversation(session, state.user_id, cid) is None:
                continue
            state.conversations.add(cid)
            state.watermarks[cid] = 0
        if kind in ("message", "conversation"):
            found = list(
                repository.public_messages(session, cid, after_seq=state.watermarks.get(cid, 0))
            )
            if found:
                state.watermarks[cid] = max(m.seq for m in found)
                out.extend((event_id, "message", m) for m in messages_out(session, found))
        if kind == TYPING_KIND and item.get("actor") in ("fin", "agent"):
            author = "fin" if item["actor"] == "fin" else "agent"
            out.append((event_id, "typing", {"conversation_id": cid, "author": author}))
        elif kind == RATING_REQUEST_KIND:
            out.append((event_id, "rating_request", {"conversation_id": cid}))
        if kind in CONVERSATION_KINDS or kind == "message":
            conversation = conversation_repository.get(session, cid)
            if conversation is not None:
                chat = repository.chat_conversation(session, cid)
                now = conversation_state(conversation, chat)
                # A reply may change who answers (a person took it over): say so, once.
                if kind in CONVERSATION_KINDS or state.states.get(cid) != now:
                    out.append((event_id, "conversation", now))
                state.states[cid] = now
    return out


def session_alive(session: Session, session_id: str) -> bool:
    row = session.get(ChatSession, session_id)
    return row is not None and as_utc(row.expires_at) > utcnow()
