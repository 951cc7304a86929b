"""The inbox's defences, against a live server on SQLite and on PostgreSQL, and in Chromium.

Routes are enumerated from the app itself, so a route added later is refused to strangers (or
listed as public on purpose) without anyone remembering to add it here. Every refusal is also
checked against the database: a refused request changes nothing.
"""

from __future__ import annotations

import re
import secrets
import struct
import zlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import update
from starlette.routing import Mount
from support.fin import World
from support.hostile import HOSTILE, NAME, TITLE
from support.server import LiveServer
from web_support import (
    FILE_URL,
    LOGIN_CSRF_COOKIE,
    PASSWORD,
    SESSION_COOKIE,
    Person,
    Web,
    attachment_links,
    client,
    files_on_disk,
    lands_on_site,
    login_form,
    new_agent,
    parse_html,
    sign_in,
    snapshot,
    submit_login,
    unique,
    with_cookie,
)

from findesk.agents.models import Agent
from findesk.agents.service import set_password
from findesk.alerts.models import WebhookEndpoint
from findesk.app import create_app
from findesk.auth.models import WebSession
from findesk.auth.service import issue_agent_token
from findesk.kit.actor import SYSTEM
from findesk.kit.secrets import hash_secret
from findesk.kit.timeutil import utcnow
from findesk.knowledge.collections import create_collection, name_in
from findesk.knowledge.service import (
    ArticleDraft,
    TranslationDraft,
    create_article,
    create_translation,
)
from findesk.lookups import service as lookups
from findesk.lookups.models import Lookup
from findesk.objects.models import (
    ObjectConversationLink,
    ObjectInstance,
    ObjectType,
    ObjectUserLink,
)
from findesk.replies.models import Macro, SavedReply
from findesk.tickets import service as tickets
from findesk.tickets.schemas import TicketTypeCreate

try:  # FastAPI 0.13x+ keeps included routers lazily: walk them through their contexts
    from fastapi.routing import iter_route_contexts
except ImportError:  # pragma: no cover - older FastAPI lists every route flat

    def iter_route_contexts(routes: Any) -> Any:  # type: ignore[no-redef]
        return iter(routes)


PROBLEM_JSON = "application/problem+json"
WAIT_MS = 15_000  # generous for a shared two-core machine; passing runs take far less

expect.set_options(timeout=WAIT_MS)


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Person:
    return new_agent(server, "Ada Admin", role="admin")


@pytest.fixture(scope="module")
def agent(server: LiveServer) -> Person:
    return new_agent(server, "Bob Agent")


@pytest.fixture
def admin_web(server: LiveServer, admin: Person) -> Iterator[Web]:
    web = sign_in(server, admin)
    yield web
    web.close()


@pytest.fixture
def agent_web(server: LiveServer, agent: Person) -> Iterator[Web]:
    web = sign_in(server, agent)
    yield web
    web.close()


# --- the routes ------------------------------------------------------------------------------

# Reachable without a session, each for a reason.
PUBLIC = {
    ("GET", "/"): "redirects to the inbox",
    ("GET", "/login"): "the sign-in form",
    ("POST", "/login"): "signing in",
    ("GET", "/openapi.json"): "API documentation",
    ("GET", "/docs"): "API documentation",
    ("GET", "/docs/assets/{name}"): "API documentation: its scripts and stylesheet",
    ("GET", "/redoc"): "API documentation",
    ("POST", "/oauth/token"): "Fin's client credentials",
    ("POST", "/oauth/revoke"): "Fin's client credentials",
    ("GET", "/healthz"): "probe",
    ("GET", "/readyz"): "probe",
    ("GET", "/metrics"): "its own token, or loopback only",
    ("GET", "/files/{key}/{filename}"): "the 256-bit key is the credential",
    ("*", "/static"): "the inbox's CSS and JavaScript",
    ("GET", "/help"): "the public help centre: published articles only",
    ("GET", "/help/{slug}"): "the public help centre: published articles only",
    ("GET", "/help/{locale}/{slug}"): "the public help centre: published translations only",
    ("GET", "/help/static/help.css"): "the help centre's stylesheet",
    ("GET", "/rate/{token}"): "the rating page: the 256-bit token in the link is the credential",
    ("POST", "/rate/{token}"): "rating: the 256-bit token in the link is the credential",
    ("GET", "/rate/static/rate.css"): "the rating page's stylesheet",
    ("GET", "/chat/v1/config"): "the chat widget's look and what it may do",
    ("POST", "/chat/v1/session"): "a chat visitor's session: anonymous, or signed by the site",
    ("GET", "/chat/widget.js"): "the chat widget a site embeds",
    ("GET", "/chat/widget.css"): "the chat widget's stylesheet",
    ("GET", "/chat/assets/{name}"): "the chat widget's other files",
    ("GET", "/chat/demo"): "the chat demo page: a pretend site with the widget",
}
# Authenticated otherwise (Fin's bearer tokens; tested in tests/fin_api; the lookups' own
# tokens, in tests/lookups; chat visitors' session tokens and Intercom's signed chat events, in
# tests/chat).
OTHER_CREDENTIALS = ("/api/fin/", "/api/connectors/", "/chat/v1/", "/chat/hooks/")
NEEDS_SESSION = ("/inbox", "/logout", "/api/v1/")
NOT_PAGES = ("/inbox/fragments/", "/inbox/live")  # fetched by the page's script: 401, no redirect


def app_routes(server: LiveServer) -> list[tuple[str, str]]:
    """Every (method, path) the app serves, from its router."""
    app = create_app(server.settings, server.db)
    found: list[tuple[str, str]] = []
    for route in iter_route_contexts(app.routes):
        if isinstance(getattr(route, "original_route", route), Mount):
            found.append(("*", route.path))
            continue
        for method in sorted(set(route.methods or ()) - {"HEAD", "OPTIONS"}):
            found.append((method, route.path))
    return found


def guarded_routes(server: LiveServer) -> list[tuple[str, str]]:
    return [(m, p) for m, p in app_routes(server) if p.startswith(NEEDS_SESSION)]


def is_page(method: str, path: str) -> bool:
    return method == "GET" and path.startswith("/inbox") and not path.startswith(NOT_PAGES)


def is_api(path: str) -> bool:
    return path.startswith("/api/v1/")


def is_intercom_shaped(path: str) -> bool:
    """Routes that mirror Intercom's API answer its ``error.list``, not a problem."""
    return path in (CONVERT, "/api/v1/conversations/{conversation_id}/convert") or path.startswith(
        (
            "/api/v1/custom_object_instances",
            "/api/v1/tickets",
            "/api/v1/ticket_types",
            "/api/v1/ticket_states",
        )
    )


def refused_as(
    response_status: int, headers: httpx.Headers, body: str, path: str, status: int
) -> bool:
    """The API's refusal with this status, in the route's error shape."""
    if response_status != status:
        return False
    content_type = headers.get("content-type", "")
    if is_intercom_shaped(path):
        return content_type == "application/json" and '"type":"error.list"' in body
    return content_type.startswith(PROBLEM_JSON)


def is_unsafe(method: str) -> bool:
    return method not in ("GET", "HEAD", "OPTIONS")


def waiting_conversation(world: World) -> str:
    """A conversation Fin handed over: every inbox action would change it."""
    conversation, _ = world.conversation(title=unique("Order"))
    world.hand_over(conversation["id"])
    return str(conversation["id"])


def fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), "x"), path)


def inbox_form(path: str, ids: dict[str, str]) -> dict[str, str]:
    """What the page's form for this route would send (its CSRF token aside)."""
    forms = {
        "/inbox/conversations/{conversation_id}/reply": {"body": "<p>Sent from a form</p>"},
        "/inbox/conversations/{conversation_id}/assign": {"agent_id": ids.get("agent_id", "")},
        "/inbox/conversations/{conversation_id}/status": {"status": "closed"},
        "/inbox/conversations/{conversation_id}/snooze": {"for": "60"},
        "/inbox/conversations/{conversation_id}/tags": {"tags": "refund, urgent"},
        "/inbox/conversations/{conversation_id}/attributes": {"key": "order", "value": "A-1"},
        "/inbox/conversations/{conversation_id}/merge": {
            "email": ids.get("merge_email", "nobody-known@example.com")
        },
        "/inbox/bulk": {"ids": ids.get("conversation_id", ""), "action": "closed"},
        "/inbox/admin/agents": {
            "email": f"{unique('new')}@example.com",
            "name": "New Agent",
            "password": PASSWORD,
            "role": "admin",
        },
        "/inbox/admin/clients": {"name": "Fin (second)"},
        "/inbox/alerts/preferences": {"email_handover": "on", "digest_minutes": "15"},
        "/inbox/alerts/webhooks": {"url": WEBHOOK_URL, "events": "sla.breached"},
        "/inbox/articles": ARTICLE_FORM,
        "/inbox/articles/{article_id}": {**ARTICLE_FORM, "title": unique("Edited")},
        "/inbox/articles/preview": {"body": "**bold**", "body_format": "markdown"},
        "/inbox/articles/{article_id}/translations/{locale}": {
            "title": unique("Bearbeitet"),
            "description": "",
            "body": "Neu.",
            "body_format": "markdown",
            "action": "save",
        },
        "/inbox/articles/{article_id}/collection": {"collection_id": ids.get("collection_id", "")},
        "/inbox/article-collections": {"name": unique("Collection")},
        "/inbox/article-collections/{collection_id}": {
            "name": unique("Renamed"),
            "description": "",
            "position": "7",
        },
        "/inbox/article-collections/{collection_id}/names": {
            "locale": "fr",
            "name": unique("Collection en français"),
        },
        "/inbox/saved-replies": {"title": unique("Hi"), "body": "<p>Hi</p>", "shared": "yes"},
        "/inbox/saved-replies/{reply_id}": {"title": unique("Edited"), "body": "<p>Edited</p>"},
        "/inbox/macros": {"name": unique("Macro"), "step0_type": "take_over"},
        "/inbox/macros/{macro_id}": {"name": unique("Edited"), "step0_type": "take_over"},
        "/inbox/conversations/{conversation_id}/macros": {"macro_id": ids.get("macro_id", "")},
        "/inbox/admin/objects": {
            "identifier": f"Form{secrets.token_hex(4)}",
            "attributes": "order_number string Order number",
            "title_attribute": "order_number",
        },
        "/inbox/conversations/{conversation_id}/ticket": {
            "ticket_type_id": ids.get("ticket_type_id", ""),
            "title": "Found a bug",
        },
        "/inbox/conversations/{conversation_id}/ticket/state": {"state_id": "in_progress"},
        "/inbox/admin/lookups": {**LOOKUP_FORM, "name": unique("Lookup")},
        "/inbox/admin/lookups/{lookup_id}": {**LOOKUP_FORM, "name": unique("Edited")},
        "/inbox/admin/lookups/{lookup_id}/tokens": {"label": "Intercom"},
        "/inbox/presence": {"presence": "away"},
        "/inbox/admin/teams": {"name": unique("Team")},
        "/inbox/admin/teams/{team_id}": {"name": unique("Renamed"), "capacity_default": "7"},
        "/inbox/admin/teams/{team_id}/members": {"agent_id": ids.get("new_member_id", "")},
        "/inbox/admin/teams/{team_id}/hours": {"timezone": "Europe/Paris", "mon": "09:00-17:00"},
        "/inbox/admin/agents/{agent_id}/capacity": {"capacity": "7"},
        "/inbox/admin/routing": {"name": "Rule", "conditions": "tag is billing", "priority": "1"},
        "/inbox/admin/routing/preview": {"conditions": "tag is billing"},
        "/inbox/admin/sla": {"name": unique("Policy"), "first_response_minutes": "30"},
        "/inbox/admin/sla/{policy_id}": {
            "name": unique("Renamed"),
            "resolution_minutes": "240",
        },
        "/inbox/admin/sla/{policy_id}/move": {"direction": "up"},
    }
    return dict(forms.get(path, {}))


LOOKUP_FORM = {
    "description": "The end user's open tickets",
    "kind": "user_open_tickets",
    "fields": "ticket_id\nstate",
    "audiences": "users",
    "user_scoped": "on",
    "enabled": "on",
}


ARTICLE_FORM = {
    "title": "Refunds",
    "body": "Refunds take **5 days**.",
    "body_format": "markdown",
    "locale": "en",
    "url": "",
    "action": "save",
}


def inbox_files(path: str) -> list[tuple[str, tuple[str, bytes, str]]] | None:
    if path.endswith("/reply"):
        return [("files", ("notes.txt", b"attached text", "text/plain"))]
    return None


# A public address (a literal one: no DNS here) for a webhook subscribed to an event nothing
# raises in these tests: no call ever goes out.
WEBHOOK_URL = "https://1.1.1.1/findesk-security-test"

API_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/webhooks"): {"url": WEBHOOK_URL, "events": ["sla.breached"]},
    ("PUT", "/api/v1/me/alerts"): {"email_handover": True, "digest_minutes": 15},
    ("POST", "/api/v1/conversations/{conversation_id}/messages"): {"body": "<p>From the API</p>"},
    ("PATCH", "/api/v1/conversations/{conversation_id}"): {"status": "closed", "tags": ["api"]},
    ("POST", "/api/v1/articles"): {"title": "From the API", "body": "Text."},
    ("PATCH", "/api/v1/articles/{article_id}"): {"title": "Renamed through the API"},
    ("POST", "/api/v1/articles/preview"): {"body": "**bold**"},
    ("POST", "/api/v1/articles/{article_id}/translations"): {"locale": "fr", "title": "Titre"},
    ("PATCH", "/api/v1/articles/{article_id}/translations/{locale}"): {"title": "Umbenannt"},
    ("POST", "/api/v1/saved-replies"): {"title": "From the API", "body": "<p>Hi</p>"},
    ("PATCH", "/api/v1/saved-replies/{reply_id}"): {"title": "Renamed through the API"},
    ("POST", "/api/v1/macros"): {"name": "From the API", "actions": [{"type": "take_over"}]},
    ("PATCH", "/api/v1/macros/{macro_id}"): {"name": "Renamed through the API"},
    ("POST", "/api/v1/custom_object_types"): {"identifier": "FromTheApi"},
    ("PATCH", "/api/v1/custom_object_types/{identifier}"): {"name": "Renamed through the API"},
    ("POST", "/api/v1/custom_object_instances/{custom_object_type_identifier}"): {
        "external_id": "from-the-api"
    },
    ("POST", "/api/v1/ticket_types"): {"name": "{unique}"},
    ("PUT", "/api/v1/ticket_types/{ticket_type_id}"): {"description": "Changed through the API"},
    ("POST", "/api/v1/ticket_types/{ticket_type_id}/attributes"): {
        "name": "{unique}",
        "data_type": "string",
    },
    ("PUT", "/api/v1/ticket_types/{ticket_type_id}/attributes/{attribute_id}"): {
        "description": "Changed through the API"
    },
    ("POST", "/api/v1/conversations/{conversation_id}/convert"): {
        "ticket_type_id": "{ticket_type_id}",
        "attributes": {"_default_title_": "Found a bug"},
    },
    ("PUT", "/api/v1/tickets/{ticket_id}"): {"ticket_state_id": "in_progress"},
    ("POST", "/api/v1/visitors/convert"): {
        "type": "user",
        "visitor": {"id": "{visitor_id}"},
        "user": {"id": "{user_id}"},
    },
    ("POST", "/api/v1/tickets"): {
        "ticket_type_id": "{ticket_type_id}",
        "contacts": [{"id": "{user_id}"}],
        "ticket_attributes": {"_default_title_": "Found a bug"},
    },
    ("POST", "/api/v1/teams"): {"name": "{unique}"},
    ("PATCH", "/api/v1/teams/{team_id}"): {"name": "{unique}"},
    # (The inbox's form test sets "away"; signing in made the admin online.)
    ("PUT", "/api/v1/me/presence"): {"presence": "offline"},
    ("PUT", "/api/v1/agents/{agent_id}/capacity"): {"capacity": 7},
    ("POST", "/api/v1/routing-rules"): {"name": "Rule", "actions": {"priority": "1"}},
    ("PATCH", "/api/v1/routing-rules/{rule_id}"): {"name": "{unique}"},
    ("POST", "/api/v1/routing-rules/preview"): {"conditions": []},
    ("POST", "/api/v1/sla-policies"): {"name": "Policy", "first_response_minutes": 30},
    ("PATCH", "/api/v1/sla-policies/{policy_id}"): {"name": "{unique}"},
}
# Query strings a change needs.
API_QUERIES: dict[tuple[str, str], str] = {
    ("DELETE", "/api/v1/custom_object_instances/{custom_object_type_identifier}"): (
        "?external_id=order-1"
    ),
}


CONVERT = "/api/v1/visitors/convert"


def api_body(method: str, path: str, ids: dict[str, str]) -> dict[str, Any]:
    """The route's body in API_BODIES, its "{name}" strings filled in from ``ids`` (and
    "{unique}" a new name)."""
    ids = {**ids, "unique": unique("From the API")}

    def filled(value: Any) -> Any:
        if isinstance(value, str):
            return fill(value, ids)
        if isinstance(value, list):
            return [filled(item) for item in value]
        if isinstance(value, dict):
            return {key: filled(item) for key, item in value.items()}
        return value

    return dict(filled(API_BODIES.get((method, path), {})))


def team_and_rule(server: LiveServer, member_id: str) -> dict[str, str]:
    """A team with ``member_id`` in it (to remove), an agent not in it (to add), a rule."""
    from findesk.routing import service as routing
    from findesk.routing.schemas import Actions, RuleIn
    from findesk.teams import service as teams

    newcomer = new_agent(server, "Nia Newcomer")
    with server.db.transaction() as session:
        team = teams.create_team(session, name=unique("Team"), member_ids=[member_id])
        rule = routing.create_rule(session, RuleIn(name="Rule", actions=Actions(priority="High")))
        return {"team_id": team.id, "rule_id": rule.id, "new_member_id": newcomer.id}


def sla_policies(server: LiveServer) -> dict[str, str]:
    """Two SLA policies: ``policy_id`` the second (so that moving it up changes the order)."""
    from findesk.sla import service as sla
    from findesk.sla.schemas import PolicyIn

    with server.db.transaction() as session:
        sla.create_policy(session, PolicyIn(name=unique("First"), first_response_minutes=30))
        second = sla.create_policy(session, PolicyIn(name=unique("Second"), resolution_minutes=60))
        return {"policy_id": second.id}


def changes_nothing(path: str) -> bool:
    """Routes whose success leaves the database as it was (typing goes to Fin, not to disk; a
    preview renders and forgets; the sync to Intercom, which this server has no token for, says
    so and does nothing)."""
    return path.endswith(("/typing", "/preview", "/lookups/sync"))


def make_ids(
    server: LiveServer, world: World, other: Person, path: str = "", method: str = ""
) -> dict[str, str]:
    client_id, _ = server.new_oauth_client(unique("client"))
    conversation_id = waiting_conversation(world)
    ids = {
        "conversation_id": conversation_id,
        "client_id": client_id,
        "agent_id": other.id,
        "article_id": failed_article(server),
        "locale": "de",
        "collection_id": a_collection(server),
        "token_id": personal_token(server, other.id),
        "endpoint_id": a_webhook(server),
        **shared_reply_and_macro(server),
        **custom_objects(server, world, conversation_id if method == "DELETE" else None),
        **ticket_type_and_ticket(server, world),
    }
    if "{team_id}" in path or "{rule_id}" in path or "/teams" in path or "/routing" in path:
        ids.update(team_and_rule(server, other.id))
        if method == "PUT" and path.endswith("/members/{agent_id}"):
            ids["agent_id"] = ids["new_member_id"]  # one who is not a member yet
    if "{policy_id}" in path or "/sla" in path:
        ids.update(sla_policies(server))
    if path.endswith("/merge"):  # a user to merge the conversation's visitor into
        ids["merge_email"] = world.user(email=f"{unique('known')}@example.com")["email"]
    if path == CONVERT:  # a visitor, merged into a user
        ids["visitor_id"] = world.user()["id"]
        ids["user_id"] = world.user(email=f"{unique('known')}@example.com")["id"]
    if path.endswith("/ticket/state"):
        # The ticket form changes the state of the conversation's ticket: it needs one.
        with server.db.transaction() as session:
            tickets.convert(
                session,
                ids["conversation_id"],
                SYSTEM,
                ticket_type_id=ids["ticket_type_id"],
                attributes={"_default_title_": "Found a bug"},
            )
    if path.startswith("/inbox/admin/lookups/"):
        # A lookup with a token of its own (disabled already for enabling: a change to make).
        with server.db.transaction() as session:
            made = Lookup(name=unique("Lookup"), description="Open tickets",
                          kind="user_open_tickets", inputs=[], fields=[{"name": "state"}],
                          audiences=["users"], enabled=not path.endswith("/enable"))  # fmt: skip
            session.add(made)
            session.flush()
            ids["lookup_id"] = made.id
            ids["token_id"], _ = lookups.issue_token(session, made.id, "Intercom")
    if "/agents/{agent_id}" in path:
        # Deactivating or revoking changes an agent for good: these act on one of their own
        # (inactive already for reactivating, so that every route has something to change).
        subject = new_agent(server, "Dan Disposable")
        ids["agent_id"], ids["token_id"] = subject.id, personal_token(server, subject.id)
        if path.endswith("/reactivate"):
            with server.db.transaction() as session:
                session.execute(update(Agent).where(Agent.id == subject.id).values(active=False))
    return ids


def shared_reply_and_macro(server: LiveServer) -> dict[str, str]:
    """A shared saved reply and a shared macro (administrators change them): each route of
    theirs has something to change (the macro tags: it changes a waiting conversation)."""
    with server.db.transaction() as session:
        reply = SavedReply(title=unique("Reply"), body="<p>Hello</p>")
        macro = Macro(name=unique("Macro"), actions=[{"type": "add_tags", "tags": ["macro"]}])
        session.add_all([reply, macro])
        session.flush()
        return {"reply_id": reply.id, "macro_id": macro.id}


def custom_objects(
    server: LiveServer, world: World, linked_to: str | None = None
) -> dict[str, str]:
    """A custom object type with an instance (``order-1``), linked to an end user and to the
    conversation ``linked_to`` if given (so that unlinking changes something), and a type
    without instances (one that may be deleted)."""
    user = world.user(email=f"{unique('buyer')}@example.com")
    with server.db.transaction() as session:
        order = ObjectType(identifier=unique("Order"), name="Order", attributes=[])
        spare = ObjectType(identifier=unique("Spare"), name="Spare", attributes=[])
        session.add_all([order, spare])
        session.flush()
        instance = ObjectInstance(type_id=order.id, external_id="order-1", custom_attributes={})
        session.add(instance)
        session.flush()
        if linked_to is not None:
            session.add(ObjectUserLink(user_id=user["id"], instance_id=instance.id))
            session.add(ObjectConversationLink(conversation_id=linked_to, instance_id=instance.id))
        return {
            "custom_object_type_identifier": order.identifier,
            "id": instance.id,
            "contact_id": str(user["id"]),
            "identifier": spare.identifier,
        }


def ticket_type_and_ticket(server: LiveServer, world: World) -> dict[str, str]:
    """A customer ticket type (an attribute to change) and a ticket of that type."""
    admin_id = new_agent(server, "Tia Types", role="admin").id
    conversation_id = waiting_conversation(world)
    with server.db.transaction() as session:
        admin = session.get(Agent, admin_id)
        assert admin is not None
        body = TicketTypeCreate.model_validate(
            {
                "name": unique("Refund"),
                "ticket_type_attributes": [{"name": "note", "data_type": "string"}],
            }
        )
        ticket_type = tickets.create_type(session, admin, body)
        ticket = tickets.convert(
            session,
            conversation_id,
            SYSTEM,
            ticket_type_id=ticket_type.id,
            attributes={"_default_title_": "Found a bug"},
        )
        return {
            "ticket_type_id": ticket_type.id,
            "attribute_id": ticket_type.attributes[-1]["id"],
            "ticket_id": ticket.id,
            "user_id": ticket.user_id or "",
        }


def personal_token(server: LiveServer, agent_id: str) -> str:
    """A live personal token of the agent: its public id."""
    with server.db.transaction() as session:
        agent = session.get(Agent, agent_id)
        assert agent is not None
        return issue_agent_token(session, agent)[0].id


def a_webhook(server: LiveServer) -> str:
    endpoint_id = unique("whe")
    with server.db.transaction() as session:
        session.add(
            WebhookEndpoint(
                id=endpoint_id,
                url=WEBHOOK_URL,
                events=["sla.breached"],
                format="json",
                secret_nonce="0" * 32,
                active=True,
            )
        )
    return endpoint_id


def failed_article(server: LiveServer) -> str:
    """A draft whose last publish failed: every article action would change it (a retry
    re-queues it, a publish or archive changes its state)."""
    with server.db.transaction() as session:
        article = create_article(
            session, ArticleDraft(title=unique("Article"), body="Some text."), author_id=None
        )
        article.fin_error = "503 from Intercom"
        article.fin_attempts = 3
        # Intercom's help centre failed too (a retry re-queues it), and it has a German draft.
        article.intercom_error = "400 from Intercom"
        article.intercom_attempts = 2
        article.intercom_pending = False
        session.flush()
        create_translation(
            session, article.id, "de", TranslationDraft(title=unique("Titel"), body="Text.")
        )
        article.intercom_pending = False
        return article.id


def a_collection(server: LiveServer) -> str:
    """A collection with a German name (routes change or delete it)."""
    with server.db.transaction() as session:
        collection = create_collection(session, unique("Collection"))
        name_in(session, collection.id, "de", unique("Sammlung"))
        return collection.id


def send(
    http: httpx.Client,
    method: str,
    path: str,
    ids: dict[str, str],
    csrf: str | None,
    query: str = "",
) -> tuple[int, httpx.Headers, str]:
    """One request as its page or script would send it; streams (SSE) are not read."""
    url = fill(path, ids) + query
    options: dict[str, Any] = {}
    if is_api(path):
        if is_unsafe(method):
            options["json"] = api_body(method, path, ids)
            if csrf is not None:
                options["headers"] = {"X-CSRF-Token": csrf}
    elif is_unsafe(method):
        form = inbox_form(path, ids)
        if csrf is not None:
            form["csrf_token"] = csrf
        files = inbox_files(path)
        if files:
            options["files"] = files
        options["data"] = form
    with http.stream(method, url, **options) as response:
        streaming = response.headers.get("content-type", "").startswith("text/event-stream")
        body = "" if streaming else response.read().decode(errors="replace")
        return response.status_code, response.headers, body


# --- (a) nothing without a live session ------------------------------------------------------


def test_every_route_needs_a_session_unless_it_is_public_on_purpose(server: LiveServer) -> None:
    routes = app_routes(server)
    unclassified = [
        (m, p)
        for m, p in routes
        if not p.startswith(NEEDS_SESSION)
        and (m, p) not in PUBLIC
        and not p.startswith(OTHER_CREDENTIALS)
    ]
    assert unclassified == [], "new routes outside /inbox and /api/v1: needs a session or PUBLIC"
    assert set(PUBLIC) <= set(routes), "PUBLIC lists routes that no longer exist"
    guarded = guarded_routes(server)
    assert len(guarded) >= 25, guarded
    for expected in [
        ("GET", "/inbox"),
        ("GET", "/inbox/conversations/{conversation_id}"),
        ("GET", "/inbox/live"),
        ("POST", "/inbox/conversations/{conversation_id}/reply"),
        ("POST", "/inbox/admin/clients"),
        ("POST", "/logout"),
        ("GET", "/api/v1/me"),
        ("PATCH", "/api/v1/conversations/{conversation_id}"),
    ]:
        assert expected in guarded


def dead_session(server: LiveServer, state: str) -> tuple[str | None, str]:
    """A session cookie (and its CSRF token) that must no longer open anything."""
    if state == "no cookie":
        return None, "csrf_" + secrets.token_urlsafe(32)
    if state == "made-up cookie":
        return "fss_" + secrets.token_urlsafe(32), "csrf_" + secrets.token_urlsafe(32)
    person = new_agent(server, "Sam Stale")
    web = sign_in(server, person)
    past = utcnow() - timedelta(minutes=1)
    rows = update(WebSession).where(WebSession.agent_id == person.id)
    with server.db.transaction() as session:
        if state == "expired":
            session.execute(rows.values(expires_at=past))
        elif state == "idle for 13 hours":
            session.execute(rows.values(last_seen_at=utcnow() - timedelta(hours=13)))
        elif state == "agent deactivated":
            session.execute(update(Agent).where(Agent.id == person.id).values(active=False))
    if state == "signed out":
        assert web.post("/logout").status_code == 303
    web.close()
    return web.session_id, web.csrf


@pytest.mark.parametrize(
    "state",
    [
        "no cookie",
        "made-up cookie",
        "expired",
        "idle for 13 hours",
        "signed out",
        "agent deactivated",
    ],
)
def test_without_a_live_session_every_guarded_route_is_refused(
    server: LiveServer, world: World, agent: Person, state: str
) -> None:
    ids = make_ids(server, world, agent)
    cookie, csrf = dead_session(server, state)
    routes = guarded_routes(server)
    before, disk_before = snapshot(server), files_on_disk(server)
    wrong: list[str] = []
    with with_cookie(server, cookie) as http:
        for method, path in routes:
            query = "?queue=all&status=any" if is_page(method, path) else ""
            status, headers, body = send(http, method, path, ids, csrf, query)
            if is_api(path):
                ok = refused_as(status, headers, body, path, 401)
                expected = "401 problem (Intercom's error.list where it mirrors Intercom)"
            elif is_page(method, path):
                location = urlsplit(headers.get("location", ""))
                wanted_next = fill(path, ids) + query
                ok = (
                    status == 303
                    and location.path == "/login"
                    and parse_qs(location.query).get("next") == [wanted_next]
                )
                expected = f"303 to /login?next={wanted_next}"
            else:
                ok, expected = status == 401, "401"
            if not ok:
                wrong.append(f"{method} {path}: {status} {headers.get('location', '')}, {expected}")
    assert wrong == []
    assert snapshot(server) == before
    assert files_on_disk(server) == disk_before


# --- (b) cross-site requests -----------------------------------------------------------------


def bad_tokens(other: Web) -> dict[str, dict[str, Any]]:
    """Ways a forged form can get the CSRF token wrong: (form field, header)."""
    made_up = "csrf_" + secrets.token_urlsafe(32)
    return {
        "no token": {},
        "an empty token": {"field": ""},
        "a made-up token": {"field": made_up},
        "another agent's token": {"field": other.csrf},
        "a made-up token in the header": {"header": made_up},
    }


def test_inbox_forms_without_their_csrf_token_are_refused_and_change_nothing(
    server: LiveServer, world: World, admin: Person, agent: Person, agent_web: Web
) -> None:
    # Every change the inbox's forms make.
    posts = [p for m, p in guarded_routes(server) if m == "POST" and not is_api(p)]
    assert len(posts) >= 10, posts
    wrong: list[str] = []
    for path in posts:
        ids = make_ids(server, world, agent, path)
        web = sign_in(server, admin)  # an admin: the admin forms are refused for CSRF, not role
        url = fill(path, ids)
        # One look at the database around all the refusals (it is read whole, and grows).
        before, disk_before = snapshot(server), files_on_disk(server)
        for label, token in bad_tokens(agent_web).items():
            form = inbox_form(path, ids)
            if "field" in token:
                form["csrf_token"] = token["field"]
            headers = {"X-CSRF-Token": token["header"]} if "header" in token else None
            response = web.http.post(url, data=form, files=inbox_files(path), headers=headers)
            if response.status_code != 403:
                wrong.append(f"{path} with {label}: {response.status_code}, not 403")
        refused = snapshot(server)
        if refused != before or files_on_disk(server) != disk_before:
            wrong.append(f"{path} with a bad token: changed the database or the files")
        # The same form with its token does what it says: the refusals above were the token's.
        response = web.post(url, inbox_form(path, ids), files=inbox_files(path))
        if response.status_code not in (200, 204, 303):
            wrong.append(f"{path} with its token: {response.status_code} {response.text[:200]}")
        elif changes_nothing(path) != (snapshot(server) == refused):
            wrong.append(f"{path} with its token: the database did not change as expected")
        web.close()
    assert wrong == []


def test_the_agent_api_through_the_session_cookie_needs_the_csrf_header(
    server: LiveServer, world: World, agent: Person, admin_web: Web, agent_web: Web
) -> None:
    me = admin_web.http.get("/api/v1/me")  # reading needs no token
    assert me.status_code == 200, me.text
    assert me.json()["id"] == admin_web.person.id  # type: ignore[union-attr]
    changes = [(m, p) for m, p in guarded_routes(server) if is_api(p) and is_unsafe(m)]
    assert len(changes) >= 5, changes
    wrong: list[str] = []
    for method, path in changes:
        ids = make_ids(server, world, agent, path, method)
        url = fill(path, ids) + API_QUERIES.get((method, path), "")
        body = api_body(method, path, ids)
        before = snapshot(server)  # one look around all the refusals (it is read whole)
        for label, token in bad_tokens(agent_web).items():
            headers = {"X-CSRF-Token": token["header"]} if "header" in token else {}
            if "field" in token:
                headers["X-CSRF-Token"] = token["field"]
            response = admin_web.http.request(method, url, json=body, headers=headers)
            if not refused_as(response.status_code, response.headers, response.text, path, 403):
                wrong.append(f"{method} {path} with {label}: {response.status_code}, not 403")
        refused = snapshot(server)
        if refused != before:
            wrong.append(f"{method} {path} with a bad token: changed the database")
        response = admin_web.http.request(
            method, url, json=body, headers={"X-CSRF-Token": admin_web.csrf}
        )
        if not response.is_success:
            wrong.append(f"{method} {path} with the header: {response.status_code}")
        elif changes_nothing(path) != (snapshot(server) == refused):
            wrong.append(f"{method} {path} with the header: the database did not change")
    assert wrong == []


def test_the_sign_in_form_needs_its_csrf_cookie_and_field(
    server: LiveServer, admin: Person
) -> None:
    def signed_in(response: httpx.Response) -> bool:
        return any(
            c.startswith(f"{SESSION_COOKIE}=") for c in response.headers.get_list("set-cookie")
        )

    credentials = {"email": admin.email, "password": PASSWORD, "next": "/inbox"}
    with client(server) as http:  # a forged form: never loaded the sign-in page
        response = http.post("/login", data={**credentials, "csrf_token": "guess"})
        assert response.status_code == 403
        assert not signed_in(response)
    with client(server) as http:
        token = login_form(http).find("input", name="csrf_token").attrs["value"]
        for field in ({}, {"csrf_token": ""}, {"csrf_token": token + "x"}):
            response = http.post("/login", data={**credentials, **field})
            assert response.status_code == 403, field
            assert not signed_in(response)
        with client(server) as victim:  # a token from the attacker's own form is no good
            login_form(victim)
            response = victim.post("/login", data={**credentials, "csrf_token": token})
            assert response.status_code == 403
            assert not signed_in(response)
    with client(server) as http:  # the real form works
        response = submit_login(http, admin.email, PASSWORD)
        assert response.status_code == 303
        assert signed_in(response)


# --- (c) hostile HTML in messages ------------------------------------------------------------


def hostile(marker: str) -> str:
    return f"<p>{marker}</p>" + "".join(HOSTILE)


def detect(page: Page) -> tuple[list[str], list[str]]:
    """Record every call of the detector and every dialog: a running payload does one."""
    fired: list[str] = []
    dialogs: list[str] = []
    page.expose_function("findeskPwned", lambda where: fired.append(str(where)))

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return fired, dialogs


INSPECT = """() => {
  const all = [...document.querySelectorAll("*")];
  const thread = document.querySelector("ol.thread");
  return {
    handlers: all.flatMap((e) => [...e.attributes]
      .filter((a) => a.name.toLowerCase().startsWith("on"))
      .map((a) => `${e.tagName} ${a.name}`)),
    scriptUrls: all.flatMap((e) => ["href", "src", "action", "formaction", "data", "srcdoc"]
      .map((n) => e.getAttribute(n))
      .filter((v) => v !== null && (/^\\s*(javascript|vbscript):/i.test(v)
        || v.includes("<script")))),
    dataUrls: [...thread.querySelectorAll("[href], [src]")]
      .map((e) => e.getAttribute("href") || e.getAttribute("src"))
      .filter((v) => /^\\s*data:/i.test(v)),
    linkProtocols: [...thread.querySelectorAll("a[href]")].map((a) => a.protocol),
    dangerous: [...thread.querySelectorAll(
      "script, iframe, object, embed, svg, math, form, base, meta, style, link, details"
    )].map((e) => e.tagName),
    scriptsOutsideHead: [...document.querySelectorAll("script")]
      .filter((s) => ![
        "/static/inbox.js", "/static/keys.js", "/static/replies.js", "/static/sla.js",
      ].includes(s.getAttribute("src")))
      .length,
    pwned: window.__pwned === undefined ? null : String(window.__pwned),
  };
}"""


def open_signed_in(browser: Browser, web: Web, **options: Any) -> BrowserContext:
    context = browser.new_context(**options)
    context.add_cookies(
        [{"name": SESSION_COOKIE, "value": web.session_id, "url": web.server.base_url}]
    )
    return context


def test_hostile_html_in_messages_is_inert_in_the_browser(
    server: LiveServer, world: World, admin_web: Web, browser: Browser
) -> None:
    marker = unique("hostile")
    created = world.api.create_user(object_id=unique("u"), name=NAME, email=f"{marker}@example.com")
    assert created.status == 201, created.error
    user = created.data
    conversation, _ = world.conversation(user, body=f"<p>{marker} opens</p>", title=TITLE)
    cid = conversation["id"]
    url = f"{server.base_url}/inbox/conversations/{cid}"

    # An agent pastes hostile HTML into the inbox's reply form (the plain form: no script).
    plain = open_signed_in(browser, admin_web, java_script_enabled=False)
    try:
        page = plain.new_page()
        page.goto(url)
        page.fill("#reply-body", hostile(f"{marker} agent replies"))
        with page.expect_navigation():
            page.click("form.composer button[type=submit]")
        assert f"{marker} agent replies" in page.locator("ol.thread").inner_text()
    finally:
        plain.close()
    # The end user sends the same through Fin (create_message).
    world.user_says(cid, user["id"], hostile(f"{marker} writes"))

    context = open_signed_in(browser, admin_web)
    try:
        page = context.new_page()
        fired, dialogs = detect(page)
        # Notices and errors in the URL are not shown at all (see
        # test_a_link_cannot_make_a_page_say_something); were they, they would be text.
        page.goto(f"{url}?error={quote(HOSTILE[1])}&notice={quote(HOSTILE[0])}")
        assert (fired, dialogs) == ([], [])  # nothing ran while the page loaded
        thread = page.locator("ol.thread")
        for said in ("opens", "agent replies", "writes"):
            expect(thread).to_contain_text(f"{marker} {said}")
        # Click whatever the payloads left clickable.
        for link in (
            thread.locator("a", has_text="Claim").all() + thread.get_by_text("Click me").all()
        ):
            link.click(no_wait_after=True)
        assert (fired, dialogs) == ([], [])
        # A message arriving while the page is open is inserted by the live refresh.
        world.user_says(cid, user["id"], hostile(f"{marker} live"))
        expect(thread).to_contain_text(f"{marker} live")
        page.wait_for_function("() => [...document.images].every((i) => i.complete)")
        page.evaluate("() => new Promise((resolve) => setTimeout(resolve))")  # queued handlers
        found = page.evaluate(INSPECT)
        assert fired == []
        assert dialogs == []
        assert found["pwned"] is None
        assert found["handlers"] == []
        assert found["scriptUrls"] == []
        assert found["dataUrls"] == []
        assert set(found["linkProtocols"]) <= {"http:", "https:", "mailto:"}
        assert found["dangerous"] == []
        assert found["scriptsOutsideHead"] == 0
        # The name is shown as the text it is, not as an image.
        assert page.locator(".details img, .thread .message-head img").count() == 0
    finally:
        context.close()


# --- (d) attachments -------------------------------------------------------------------------


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


HTML_FILE = b"<!doctype html><script>document.title='ran in findesk'</script>"
SVG_FILE = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def common_prefix(a: str, b: str) -> int:
    shared = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        shared += 1
    return shared


def test_attachment_urls_cannot_be_guessed_and_only_images_show_inline(
    server: LiveServer, world: World, admin_web: Web
) -> None:
    cid = waiting_conversation(world)
    image = png()
    first = admin_web.post(
        f"/inbox/conversations/{cid}/reply",
        {"body": "<p>Here are the files</p>"},
        files=[
            ("files", ("pixel.png", image, "image/png")),
            ("files", ("page.html", HTML_FILE, "text/html")),
            ("files", ("drawing.svg", SVG_FILE, "image/svg+xml")),
        ],
    )
    assert first.status_code == 303, first.text
    second = admin_web.post(
        f"/inbox/conversations/{cid}/reply",
        {"body": "<p>One more</p>"},
        files=[("files", ("pixel-again.png", image, "image/png"))],
    )
    assert second.status_code == 303, second.text
    links = attachment_links(admin_web.page(f"/inbox/conversations/{cid}"))
    urls = {FILE_URL.search(link)["name"]: link for link in links}  # type: ignore[index]
    assert set(urls) == {"pixel.png", "page.html", "drawing.svg", "pixel-again.png"}
    keys = [FILE_URL.search(u)["key"] for u in urls.values()]  # type: ignore[index]

    # 256 random bits each: long, URL-safe, and nothing shared beyond chance.
    assert len(set(keys)) == len(keys)
    for key in keys:
        assert len(key) >= 40 and re.fullmatch(r"[A-Za-z0-9_-]+", key), key
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            assert common_prefix(a, b) <= 3, (a, b)
            assert sum(x == y for x, y in zip(a, b, strict=False)) <= 10, (a, b)

    with client(server) as stranger:  # the URL alone is the credential: no cookie, no token
        got = stranger.get(urls["pixel.png"])
        assert got.status_code == 200
        assert got.content == image
        assert got.headers["content-type"] == "image/png"
        assert got.headers["content-disposition"].startswith("inline")
        assert got.headers["x-content-type-options"] == "nosniff"

        key = FILE_URL.search(urls["pixel.png"])["key"]  # type: ignore[index]
        flipped = key[:20] + ("A" if key[20] != "A" else "B") + key[21:]
        other = FILE_URL.search(urls["page.html"])["key"]  # type: ignore[index]
        for tampered in (flipped, key[:-1], key + "A", key[:21] + other[21:], "..", "%2e%2e"):
            response = stranger.get(f"/files/{tampered}/pixel.png")
            assert response.status_code == 404, tampered
            assert response.content != image

        for name in ("page.html", "drawing.svg"):
            response = stranger.get(urls[name])
            assert response.status_code == 200
            assert response.headers["content-disposition"].startswith("attachment"), name
            assert name in response.headers["content-disposition"]
            assert response.headers["x-content-type-options"] == "nosniff"
            assert "sandbox" in response.headers["content-security-policy"]
            content_type = response.headers["content-type"]
            assert "html" not in content_type and "svg" not in content_type, content_type


# --- (e) guessing passwords: see tests/throttle/test_sign_in.py ----------------------------


def test_a_link_cannot_make_a_page_say_something(server: LiveServer, admin_web: Web) -> None:
    """Notices and errors travel from a form to the next page in a short-lived cookie, never in
    the URL: a link with ?error=... shows nothing (no "call this number" on findesk's page)."""
    bait = "Your session expired: call +1 555 0100 to restore access."
    for path in ("/inbox", "/inbox/admin"):
        page = admin_web.page(path, error=bait, notice=bait)
        assert bait not in page.text
    refused = admin_web.post("/inbox/admin/clients", {"name": "Fin\x1b"})
    assert refused.status_code == 303 and "?" not in refused.headers["location"]
    said = "must not contain control characters"
    assert said in admin_web.page("/inbox/admin").find(role="alert").text
    assert said not in admin_web.page("/inbox/admin").text  # shown once


# --- (f) headers, cookies, signing out, roles, redirects --------------------------------------


def csp(response: httpx.Response) -> dict[str, list[str]]:
    policy = response.headers.get("content-security-policy", "")
    directives = [d.split() for d in policy.split(";") if d.strip()]
    return {d[0].lower(): d[1:] for d in directives}


def test_inbox_pages_refuse_inline_scripts_and_framing(
    server: LiveServer, world: World, admin_web: Web
) -> None:
    cid = waiting_conversation(world)
    paths = [
        "/login",
        "/inbox",
        "/inbox?queue=all&status=any",
        f"/inbox/conversations/{cid}",
        "/inbox/admin",
        "/inbox/fragments/list",
        f"/inbox/fragments/conversation/{cid}",
        "/inbox/conversations/conv_nonexistent",
    ]
    for path in paths:
        response = admin_web.get(path)
        assert response.headers["content-type"].startswith("text/html"), path
        policy = csp(response)
        assert policy.get("script-src") == ["'self'"], (path, policy)
        assert policy.get("object-src") == ["'none'"], path
        assert policy.get("frame-ancestors") == ["'none'"], path
        assert policy.get("base-uri") == ["'none'"], path
        assert response.headers["x-frame-options"] == "DENY", path
        assert response.headers["x-content-type-options"] == "nosniff", path
    signed_in_page = admin_web.get(f"/inbox/conversations/{cid}")
    assert "no-store" in signed_in_page.headers["cache-control"]


def cookie_attributes(response: httpx.Response, name: str) -> tuple[str, dict[str, str]]:
    for header in response.headers.get_list("set-cookie"):
        first, *rest = [part.strip() for part in header.split(";")]
        key, _, value = first.partition("=")
        if key == name:
            attributes = {}
            for part in rest:
                k, _, v = part.partition("=")
                attributes[k.lower()] = v.lower()
            return value, attributes
    raise AssertionError(f"no {name} cookie set")


def test_the_session_cookie_is_http_only_same_site_and_stored_hashed(
    server: LiveServer, admin: Person
) -> None:
    with client(server) as http:
        form = http.get("/login")
        _, login_cookie = cookie_attributes(form, LOGIN_CSRF_COOKIE)
        assert "httponly" in login_cookie
        assert login_cookie["samesite"] == "strict"
        response = submit_login(http, admin.email, PASSWORD)
    assert response.status_code == 303
    value, attributes = cookie_attributes(response, SESSION_COOKIE)
    assert "httponly" in attributes
    assert attributes["samesite"] == "lax"
    assert attributes["path"] == "/"
    assert "domain" not in attributes
    assert len(value) >= 43  # 256 random bits
    # The database keeps a hash: a copy of the table signs nobody in.
    sessions = snapshot(server)["sessions"]
    assert value not in sessions
    assert hash_secret(value) in sessions


def test_signing_out_ends_the_session_on_the_server(server: LiveServer, admin: Person) -> None:
    web = sign_in(server, admin)
    copied = web.session_id  # as if the cookie had been copied from the browser
    response = web.post("/logout")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    value, _ = cookie_attributes(response, SESSION_COOKIE)
    assert value in ("", '""')
    web.close()
    assert hash_secret(copied) not in snapshot(server)["sessions"]
    with with_cookie(server, copied) as http:
        assert http.get("/inbox").status_code == 303
        assert http.get("/api/v1/me").status_code == 401


def test_a_new_password_ends_every_session_of_that_agent(server: LiveServer) -> None:
    person = new_agent(server, "Pat Password")
    colleague = new_agent(server, "Cal Colleague")
    laptop, phone, other = (
        sign_in(server, person),
        sign_in(server, person),
        sign_in(server, colleague),
    )
    with server.db.transaction() as session:
        set_password(session, session.get(Agent, person.id), "a brand new passphrase")
    for web in (laptop, phone):
        page = web.get("/inbox")
        assert page.status_code == 303
        assert urlsplit(page.headers["location"]).path == "/login"
        assert web.http.get("/api/v1/me").status_code == 401
        assert web.post("/inbox/admin/clients", {"name": "x"}).status_code == 401
    assert other.get("/inbox").status_code == 200
    with client(server) as http:
        assert submit_login(http, person.email, PASSWORD).status_code == 401
        assert submit_login(http, person.email, "a brand new passphrase").status_code == 303
    for web in (laptop, phone, other):
        web.close()


def test_an_agent_who_is_not_an_admin_cannot_administer(
    server: LiveServer, world: World, agent: Person, agent_web: Web
) -> None:
    admin_routes = [(m, p) for m, p in guarded_routes(server) if p.startswith("/inbox/admin")]
    assert len(admin_routes) >= 4, admin_routes
    inbox = agent_web.page("/inbox")
    assert inbox.first("a", href="/inbox/admin") is None  # no link to what they cannot open
    ids = make_ids(server, world, agent)
    before = snapshot(server)
    for method, path in admin_routes:
        if method == "GET":
            response = agent_web.get(fill(path, ids))
        else:
            response = agent_web.post(fill(path, ids), inbox_form(path, ids))
        assert response.status_code == 403, (method, path, response.status_code)
        assert "client_secret" not in response.text
    assert snapshot(server) == before


HOSTILE_NEXT = [
    "https://evil.example/",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https:evil.example",
    "/\t/evil.example",
    " //evil.example",
    "javascript:alert(1)",
    "http://127.0.0.1.evil.example/",
]


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_signing_in_never_sends_the_agent_off_the_site(
    server: LiveServer, admin: Person, target: str
) -> None:
    with client(server) as http:
        # A hand-made form with the hostile target, past whatever the page cleaned up.
        response = submit_login(http, admin.email, PASSWORD, target, overrides={"next": target})
    assert response.status_code == 303
    assert lands_on_site(server, response.headers["location"]), response.headers["location"]


def test_signing_in_returns_to_the_page_asked_for(server: LiveServer, admin: Person) -> None:
    with client(server) as http:
        asked = http.get("/inbox", params={"queue": "all", "status": "any"})
        assert asked.status_code == 303
        login = http.get(asked.headers["location"])
        form = parse_html(login.text)
        target = form.find("input", name="next").attrs["value"]
        assert target == "/inbox?queue=all&status=any"
        response = submit_login(http, admin.email, PASSWORD, target)
    assert response.status_code == 303
    assert response.headers["location"] == "/inbox?queue=all&status=any"
