"""Saved replies and macros: one function per action. Services never commit.

Who may change what: a shared reply or macro (``owner_id`` None) is managed by administrators,
a personal one by its owner only, and only its owner sees it (to anyone else it does not
exist). Every agent uses the shared ones.

A macro applies its actions through the conversations' own service functions, in the caller's
transaction, so each records its history, its event for Fin and its live update as if done by
hand; the history also says the macro was applied. A failing action raises, and the caller's
transaction rolls back the whole macro.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape as _escape
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from findesk.agents import repository as agent_repository
from findesk.agents.models import Agent
from findesk.conversations import history
from findesk.conversations import service as conversations
from findesk.conversations.models import Conversation, Message
from findesk.conversations.service import Author, NewMessage
from findesk.kit import html
from findesk.kit.actor import agent as agent_actor
from findesk.kit.errors import Conflict, Forbidden, Invalid, NotFound, Problem
from findesk.kit.text import clean_text, invalid
from findesk.kit.timeutil import utcnow
from findesk.knowledge import repository as article_repository
from findesk.knowledge.models import Article
from findesk.knowledge.service import public_url
from findesk.replies import placeholders, repository
from findesk.replies.models import Macro, SavedReply
from findesk.replies.schemas import ACTION_TYPES, TITLE_MAX, ActionList

_ACTIONS: TypeAdapter[Any] = TypeAdapter(ActionList)
_UNSET: Any = object()


def may_manage(agent: Agent, owner_id: str | None) -> bool:
    """Administrators manage the shared ones; each agent their own personal ones."""
    return agent.role == "admin" if owner_id is None else owner_id == agent.id


def _check_manage(agent: Agent, owner_id: str | None, what: str) -> None:
    if not may_manage(agent, owner_id):
        raise Forbidden(f"Only administrators may change the team's shared {what}.")


def _title(value: str, field: str = "title") -> str:
    title = clean_text(value, field=field, max_length=TITLE_MAX, label="The " + field)
    if not title:
        raise invalid(f"The {field} must not be blank.", field=field)
    return title


def _body(value: str) -> str:
    body = html.sanitize(value)
    if html.is_blank(body):
        raise invalid("The body must show some text once sanitised.", field="body")
    placeholders.check(body)
    return body


# --- saved replies ----------------------------------------------------------------------------


def list_replies(session: Session, agent: Agent, *, query: str | None = None) -> list[SavedReply]:
    return list(repository.replies_for(session, agent.id, query=query))


def get_reply(session: Session, reply_id: str, agent: Agent) -> SavedReply:
    """The reply, if the agent may see it (shared, or their own)."""
    reply = repository.get_reply(session, reply_id)
    if reply is None or (reply.owner_id is not None and reply.owner_id != agent.id):
        raise NotFound(f"No saved reply with id {reply_id!r}.")
    return reply


def _article(session: Session, article_id: str | None) -> str | None:
    if article_id is None:
        return None
    article = article_repository.get(session, article_id)
    if article is None or article.state != "published":
        raise invalid(f"No published article with id {article_id!r}.", field="article_id")
    return article.id


def create_reply(
    session: Session,
    agent: Agent,
    *,
    title: str,
    body: str,
    shared: bool = False,
    article_id: str | None = None,
) -> SavedReply:
    owner_id = None if shared else agent.id
    _check_manage(agent, owner_id, "saved replies")
    now = utcnow()
    reply = SavedReply(
        title=_title(title),
        body=_body(body),
        owner_id=owner_id,
        article_id=_article(session, article_id),
        created_by_id=agent.id,
        created_at=now,
        updated_at=now,
    )
    session.add(reply)
    session.flush()
    return reply


def update_reply(
    session: Session,
    reply_id: str,
    agent: Agent,
    *,
    title: str | None = None,
    body: str | None = None,
    article_id: str | None = _UNSET,
) -> SavedReply:
    """``None`` leaves a field as it is; ``article_id=None`` removes the link."""
    reply = get_reply(session, reply_id, agent)
    _check_manage(agent, reply.owner_id, "saved replies")
    if title is not None:
        reply.title = _title(title)
    if body is not None:
        reply.body = _body(body)
    if article_id is not _UNSET:
        reply.article_id = _article(session, article_id)
    reply.updated_at = utcnow()
    return reply


def delete_reply(session: Session, reply_id: str, agent: Agent) -> None:
    """Refused while a macro replies with it (its owner's, or a shared one)."""
    reply = get_reply(session, reply_id, agent)
    _check_manage(agent, reply.owner_id, "saved replies")
    users = [
        macro.name
        for macro in repository.macros_owned_by(session, [None, reply.owner_id])
        if any(a.get("saved_reply_id") == reply.id for a in macro.actions)
    ]
    if users:
        names = ", ".join(f"“{name}”" for name in users)
        raise Conflict(f"The saved reply is used by the macro {names}: change the macro first.")
    session.delete(reply)
    session.flush()


def article_of(session: Session, reply: SavedReply) -> Article | None:
    """The linked article while it is published (an archived one is no longer linked)."""
    if reply.article_id is None:
        return None
    article = article_repository.get(session, reply.article_id)
    return article if article is not None and article.state == "published" else None


def values_for(conversation: Conversation, agent: Agent) -> placeholders.Values:
    return placeholders.Values(
        fields={
            "user.name": conversation.user.name,
            "user.email": conversation.user.email,
            "agent.name": agent.name,
            "agent.alias": agent.alias or agent.name,
            "agent.email": agent.email,
            "conversation.id": conversation.id,
            "conversation.title": conversation.title,
        },
        attributes=conversation.attributes or {},
    )


@dataclass(frozen=True)
class Rendered:
    reply: SavedReply
    html: str
    text: str


def _rendered_body(
    session: Session, reply: SavedReply, conversation: Conversation, agent: Agent, base_url: str
) -> str:
    body = placeholders.render(reply.body, values_for(conversation, agent))
    article = article_of(session, reply)
    if article is not None:
        url, title = _escape(public_url(article, base_url)), _escape(article.title)
        body = f'{body}<p><a href="{url}">{title}</a></p>'
    return html.sanitize(body)


def render_reply(
    session: Session, conversation_id: str, reply_id: str, agent: Agent, *, base_url: str
) -> Rendered:
    """The reply as it would be sent in this conversation by this agent."""
    conversation = conversations.get_conversation(session, conversation_id)
    reply = get_reply(session, reply_id, agent)
    body = _rendered_body(session, reply, conversation, agent, base_url)
    return Rendered(reply, body, html.to_text(body))


# --- macros -----------------------------------------------------------------------------------


def list_macros(session: Session, agent: Agent) -> list[Macro]:
    return list(repository.macros_for(session, agent.id))


def get_macro(session: Session, macro_id: str, agent: Agent) -> Macro:
    macro = repository.get_macro(session, macro_id)
    if macro is None or (macro.owner_id is not None and macro.owner_id != agent.id):
        raise NotFound(f"No macro with id {macro_id!r}.")
    return macro


def check_actions(
    session: Session, raw: list[dict[str, Any]], owner_id: str | None
) -> list[dict[str, Any]]:
    """The actions as stored, or ``Invalid``: well formed, notes with known placeholders, saved
    replies the macro's users can see (a shared macro: shared replies only), active agents."""
    try:
        actions = _ACTIONS.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise Invalid(
            f"The actions are not valid: {where}: {first['msg']}.",
            errors=[
                {"loc": ["actions", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors()
            ],
        ) from None
    checked: list[dict[str, Any]] = []
    for index, action in enumerate(actions):
        step = action.model_dump()
        label = f"Action {index + 1} ({ACTION_TYPES[step['type']].lower()})"
        if step["type"] == "reply":
            reply = repository.get_reply(session, step["saved_reply_id"])
            if reply is None or reply.owner_id not in (None, owner_id):
                raise _step_invalid(index, f"{label}: no saved reply {step['saved_reply_id']!r}.")
        elif step["type"] == "note":
            try:
                step["body"] = _body(step["body"])
            except Invalid as exc:
                raise _step_invalid(index, f"{label}: {exc.detail}") from None
        elif step["type"] == "assign" and step["agent_id"] is not None:
            agent = agent_repository.get(session, step["agent_id"])
            if agent is None or not agent.active:
                raise _step_invalid(index, f"{label}: no active agent {step['agent_id']!r}.")
        checked.append(step)
    return checked


def _step_invalid(index: int, detail: str) -> Invalid:
    return Invalid(
        detail, errors=[{"field": "actions", "message": detail, "loc": ["actions", index]}]
    )


def create_macro(
    session: Session,
    agent: Agent,
    *,
    name: str,
    actions: list[dict[str, Any]],
    shared: bool = False,
) -> Macro:
    owner_id = None if shared else agent.id
    _check_manage(agent, owner_id, "macros")
    now = utcnow()
    macro = Macro(
        name=_title(name, "name"),
        actions=check_actions(session, actions, owner_id),
        owner_id=owner_id,
        created_by_id=agent.id,
        created_at=now,
        updated_at=now,
    )
    session.add(macro)
    session.flush()
    return macro


def update_macro(
    session: Session,
    macro_id: str,
    agent: Agent,
    *,
    name: str | None = None,
    actions: list[dict[str, Any]] | None = None,
) -> Macro:
    macro = get_macro(session, macro_id, agent)
    _check_manage(agent, macro.owner_id, "macros")
    if name is not None:
        macro.name = _title(name, "name")
    if actions is not None:
        macro.actions = check_actions(session, actions, macro.owner_id)
    macro.updated_at = utcnow()
    return macro


def delete_macro(session: Session, macro_id: str, agent: Agent) -> None:
    macro = get_macro(session, macro_id, agent)
    _check_manage(agent, macro.owner_id, "macros")
    session.delete(macro)
    session.flush()


@dataclass
class Applied:
    macro: Macro
    conversation: Conversation
    messages: list[Message] = field(default_factory=list)


def apply_macro(
    session: Session, conversation_id: str, macro_id: str, agent: Agent, *, base_url: str
) -> Applied:
    """Apply every action, in order, as ``agent``; the first that fails raises ``Invalid``
    naming it, and the caller's transaction must roll back (nothing of the macro stays)."""
    conversations.get_conversation(session, conversation_id)
    macro = get_macro(session, macro_id, agent)
    actor = agent_actor(agent.id)
    history.record(
        session,
        conversation_id,
        "macro",
        actor,
        to_value=macro.name,
        detail={"macro_id": macro.id, "actions": [a.get("type") for a in macro.actions]},
    )
    done = Applied(macro, conversations.get_conversation(session, conversation_id))
    for index, step in enumerate(macro.actions):
        label = ACTION_TYPES.get(str(step.get("type")), str(step.get("type"))).lower()
        try:
            _apply_step(session, conversation_id, step, agent, base_url, done)
        except Problem as exc:
            raise Invalid(
                f"The macro “{macro.name}” was not applied: action {index + 1} ({label}) "
                f"failed: {exc.detail} Nothing was changed.",
                errors=[{"loc": ["actions", index], "msg": exc.detail, "type": exc.code}],
            ) from None
    done.conversation = conversations.get_conversation(session, conversation_id)
    return done


def _apply_step(
    session: Session,
    conversation_id: str,
    step: dict[str, Any],
    agent: Agent,
    base_url: str,
    done: Applied,
) -> None:
    actor = agent_actor(agent.id)
    kind = step.get("type")
    if kind == "take_over":
        conversations.take_over(session, conversation_id, agent.id, actor)
    elif kind in ("reply", "note"):
        conversation = conversations.get_conversation(session, conversation_id)
        if kind == "reply":
            reply = repository.get_reply(session, str(step.get("saved_reply_id")))
            if reply is None or reply.owner_id not in (None, agent.id):
                raise NotFound(f"The saved reply {step.get('saved_reply_id')!r} is gone.")
            body = _rendered_body(session, reply, conversation, agent, base_url)
        else:
            body = placeholders.render(str(step.get("body")), values_for(conversation, agent))
        message, _ = conversations.add_message(
            session,
            conversation_id,
            NewMessage(
                author=Author("agent", agent.id),
                body=body,
                visibility="public" if kind == "reply" else "private",
            ),
            actor,
        )
        done.messages.append(message)
    elif kind == "add_tags":
        current = conversations.get_conversation(session, conversation_id).tags
        tags = [*current, *[t for t in step.get("tags") or [] if t not in current]]
        conversations.update_conversation(session, conversation_id, {"tags": tags}, actor)
    elif kind == "set_attributes":
        changes = {"attributes": step.get("attributes") or {}}
        conversations.update_conversation(session, conversation_id, changes, actor)
    elif kind == "set_status":
        changes = {"status": step.get("status")}
        conversations.update_conversation(session, conversation_id, changes, actor)
    elif kind == "assign":
        changes = {"assignee_id": step.get("agent_id")}
        conversations.update_conversation(session, conversation_id, changes, actor)
    else:
        raise Invalid(f"Unknown action {kind!r}.")
