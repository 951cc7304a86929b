"""Helpers for the inbox's HTTP tests: servers, agents, signing in through the real form, a small
HTML tree to read pages as a person would, and a snapshot of what the database holds."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from support.server import LiveServer, database_url

from findesk.agents.models import Agent
from findesk.agents.service import create_agent
from findesk.alerts.models import AlertPreference, WebhookEndpoint
from findesk.attachments.models import StoredFile
from findesk.auth.models import AgentToken, OAuthClient, WebSession
from findesk.conversations.models import Conversation, Message
from findesk.knowledge.models import (
    Article,
    ArticleCollection,
    ArticleTranslation,
    CollectionMember,
    CollectionTranslation,
)
from findesk.lookups.models import Lookup, LookupToken
from findesk.notifier.models import OutboxEvent
from findesk.objects.models import (
    ObjectConversationLink,
    ObjectInstance,
    ObjectType,
    ObjectUserLink,
)
from findesk.replies.models import Macro, SavedReply
from findesk.routing.models import RoutingRule
from findesk.sla.models import SlaPolicy
from findesk.teams.models import Team, TeamMember
from findesk.tickets.models import Ticket, TicketType
from findesk.users.models import EndUser

PASSWORD = "correct horse battery staple"
SESSION_COOKIE = "findesk_session"
LOGIN_CSRF_COOKIE = "findesk_login_csrf"


# --- servers and people -----------------------------------------------------------------------


def start_server(
    request: pytest.FixtureRequest, backend: str, tmp: Path, **overrides: Any
) -> LiveServer:
    """A live server whose uploads go to ``tmp`` (never to the working tree)."""
    settings = {"files_dir": tmp / "files", "data_dir": tmp, **overrides}
    live = LiveServer(database_url(backend, request, tmp), settings).start()
    # The port is picked at start: attachment links must name it, as FINDESK_PUBLIC_BASE_URL would.
    live.settings.public_base_url = live.base_url
    return live


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class Person:
    id: str
    email: str
    name: str
    role: str


def new_agent(
    server: LiveServer, name: str = "Ada Agent", role: str = "agent", password: str = PASSWORD
) -> Person:
    email = f"{name.split()[0].lower()}-{uuid.uuid4().hex[:8]}@example.com"
    with server.db.transaction() as session:
        agent = create_agent(session, email=email, name=name, role=role, password=password)
        return Person(agent.id, email, name, role)


def signed_in_page(context: Any, server: LiveServer, person: Person) -> Any:
    """A new Chromium page of ``context`` (Playwright), signed in as ``person`` through the
    sign-in form, with its live stream open: where the browser tests start."""
    from playwright.sync_api import expect

    page = context.new_page()
    page.goto(f"{server.base_url}/login")
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    expect(page.locator("body")).to_have_attribute("data-live", "open")
    return page


# --- a browser without a browser ---------------------------------------------------------------


@dataclass
class Web:
    """An agent's signed-in HTTP client: the session cookie, and the CSRF token pages carry."""

    server: LiveServer
    http: httpx.Client
    session_id: str
    csrf: str
    person: Person | None = None

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params or None)

    def page(self, path: str, **params: Any) -> Node:
        response = self.get(path, **params)
        assert response.status_code == 200, (path, response.status_code, response.text[:500])
        return parse_html(response.text)

    def post(
        self,
        path: str,
        data: dict[str, Any] | None = None,
        *,
        files: list[tuple[str, tuple[str, bytes, str]]] | None = None,
        csrf: bool = True,
    ) -> httpx.Response:
        """Submit a form as the page would (the CSRF token in the form unless ``csrf=False``)."""
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf_token", self.csrf)
        return self.http.post(path, data=form, files=files)

    def close(self) -> None:
        self.http.close()


def client(server: LiveServer, **options: Any) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=30, follow_redirects=False, **options)


def login_form(http: httpx.Client, next_path: str | None = None) -> Node:
    response = http.get("/login", params={"next": next_path} if next_path else None)
    assert response.status_code == 200, response.text
    return parse_html(response.text)


def submit_login(
    http: httpx.Client,
    email: str,
    password: str,
    next_path: str | None = None,
    overrides: dict[str, str] | None = None,
) -> httpx.Response:
    """Load the sign-in form (which sets its CSRF cookie) and submit it, with ``overrides``
    replacing what the form holds (as a hand-made request would)."""
    form = login_form(http, next_path)
    fields = {i.attrs["name"]: i.attrs.get("value", "") for i in form.find_all("input")}
    fields.update(email=email, password=password, **(overrides or {}))
    return http.post("/login", data=fields)


def sign_in(server: LiveServer, person: Person, password: str = PASSWORD, **options: Any) -> Web:
    http = client(server, **options)
    response = submit_login(http, person.email, password)
    assert response.status_code == 303, response.text
    session_id = http.cookies[SESSION_COOKIE]
    inbox = http.get("/inbox")
    assert inbox.status_code == 200, inbox.text
    meta = parse_html(inbox.text).find("meta", name="csrf-token")
    return Web(server, http, session_id, meta.attrs["content"], person)


def with_cookie(server: LiveServer, session_id: str | None) -> httpx.Client:
    """A client that sends exactly this session cookie (or none)."""
    cookies = {SESSION_COOKIE: session_id} if session_id is not None else None
    return client(server, cookies=cookies)


# --- reading pages ---------------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def iter(self) -> Iterator[Node]:
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Node]:
        return [
            node
            for node in self.iter()
            if (tag is None or node.tag == tag)
            and (cls is None or cls in node.classes)
            and all(node.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def find(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Node:
        found = self.find_all(tag, cls, **attrs)
        assert found, f"no <{tag or '*'} class={cls} {attrs}> in the page"
        return found[0]

    def first(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Node | None:
        found = self.find_all(tag, cls, **attrs)
        return found[0] if found else None

    @property
    def text(self) -> str:
        parts: list[str] = []

        def walk(node: Node) -> None:
            for child in node.children:
                if isinstance(child, str):
                    parts.append(child)
                else:
                    walk(child)

        walk(self)
        return " ".join("".join(parts).split())


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_html(text: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


def listed_ids(page: Node) -> list[str]:
    """The conversations a queue page lists, top to bottom."""
    return [li.attrs["data-conversation-id"] for li in page.find_all("li", "conversation-item")]


def attachment_links(page: Node) -> list[str]:
    return [a.attrs["href"] for ul in page.find_all("ul", "attachments") for a in ul.find_all("a")]


FILE_URL = re.compile(r"/files/(?P<key>[^/]+)/(?P<name>[^/?#]+)$")


# --- redirects ----------------------------------------------------------------------------------


def lands_on_site(server: LiveServer, location: str) -> bool:
    """Where a browser would go for this ``Location``: browsers drop tabs and newlines, strip
    surrounding spaces and read ``\\`` as ``/``, so judge the URL as they would see it."""
    seen = re.sub(r"[\t\n\r]", "", location).strip(" \x00\x1f").replace("\\", "/")
    home = urlsplit(server.base_url)
    if slashes := re.match(r"/{2,}([^/?#]*)", seen):  # browsers skip any number of slashes
        return slashes.group(1).lower() == home.netloc
    target = urlsplit(urljoin(server.base_url + "/login", seen))
    return target.scheme == home.scheme and target.netloc == home.netloc


# --- what the database holds ----------------------------------------------------------------


def link_orders(session: Session) -> None:
    """Seven orders of the first conversation's end user: cards in its side panel, and a page
    of them all."""
    conversation = session.scalars(select(Conversation).order_by(Conversation.id)).first()
    assert conversation is not None
    order = ObjectType(
        identifier="Order",
        name="Order",
        attributes=[
            {"name": "number", "type": "string", "label": "Order number"},
            {"name": "total", "type": "decimal", "label": "Total"},
            {"name": "paid", "type": "boolean", "label": "Paid"},
        ],
        title_attribute="number",
    )
    session.add(order)
    session.flush()
    for n in range(7):
        values = {"number": f"ORDER-{n}", "total": "19.90", "paid": n % 2 == 0}
        instance = ObjectInstance(type_id=order.id, external_id=f"o{n}", custom_attributes=values)
        session.add(instance)
        session.flush()
        session.add(ObjectUserLink(user_id=conversation.user_id, instance_id=instance.id))


def snapshot(server: LiveServer) -> dict[str, Any]:
    """Everything an inbox action could change (sessions' last-seen times aside)."""
    with server.db.read_session() as session:
        return {
            "conversations": sorted(
                (c.id, c.user_id, c.assignee_id, c.status, tuple(c.tags), c.title, c.snoozed_until)
                for c in session.scalars(select(Conversation)).unique()
            ),
            "end_users": sorted(
                (u.id, u.email or "", repr(u.attributes)) for u in session.scalars(select(EndUser))
            ),
            "messages": session.scalar(select(func.count()).select_from(Message)),
            "files": session.scalar(select(func.count()).select_from(StoredFile)),
            "events": session.scalar(select(func.count()).select_from(OutboxEvent)),
            "agents": sorted(
                (a.email, a.role, a.active, a.password_hash or "", a.presence, a.capacity or -1)
                for a in session.scalars(select(Agent))
            ),
            "clients": sorted(
                (c.id, c.revoked_at is not None) for c in session.scalars(select(OAuthClient))
            ),
            "sessions": sorted(session.scalars(select(WebSession.id_hash)).all()),
            "tokens": sorted(
                (t.id, t.revoked_at is not None) for t in session.scalars(select(AgentToken))
            ),
            "articles": sorted(
                (
                    a.id,
                    a.title,
                    a.state,
                    a.body_source,
                    a.fin_pending,
                    a.deleted_at is not None,
                    a.intercom_pending,
                    a.intercom_attempts,
                )
                for a in session.scalars(select(Article))
            ),
            "article_translations": sorted(
                (t.article_id, t.locale, t.title, t.state, t.body_source)
                for t in session.scalars(select(ArticleTranslation))
            ),
            "article_collections": sorted(
                (c.id, c.name, c.description, c.position)
                for c in session.scalars(select(ArticleCollection))
            )
            + sorted(
                (n.collection_id, n.locale, n.name, n.description)
                for n in session.scalars(select(CollectionTranslation))
            )
            + sorted(
                (m.article_id, m.collection_id, "", 0)
                for m in session.scalars(select(CollectionMember))
            ),
            "webhook_endpoints": sorted(
                (e.id, e.url, e.format) for e in session.scalars(select(WebhookEndpoint))
            ),
            "alert_preferences": sorted(
                (p.agent_id, p.email_handover, p.email_assigned, p.digest_minutes or 0)
                for p in session.scalars(select(AlertPreference))
            ),
            "saved_replies": sorted(
                (r.id, r.title, r.body, r.owner_id or "", r.article_id or "")
                for r in session.scalars(select(SavedReply))
            ),
            "macros": sorted(
                (m.id, m.name, repr(m.actions), m.owner_id or "")
                for m in session.scalars(select(Macro))
            ),
            "object_types": sorted(
                (t.identifier, t.name, repr(t.attributes), t.title_attribute or "")
                for t in session.scalars(select(ObjectType))
            ),
            "object_instances": sorted(
                (i.id, i.external_id, repr(i.custom_attributes), i.updated_at)
                for i in session.scalars(select(ObjectInstance))
            ),
            "object_links": sorted(
                [
                    *session.execute(select(ObjectUserLink.user_id, ObjectUserLink.instance_id)),
                    *session.execute(
                        select(
                            ObjectConversationLink.conversation_id,
                            ObjectConversationLink.instance_id,
                        )
                    ),
                ]
            ),
            "ticket_types": sorted(
                (t.id, t.name, t.description, repr(t.attributes))
                for t in session.scalars(select(TicketType))
            ),
            "tickets": sorted(
                (t.id, t.state_id, repr(t.attributes)) for t in session.scalars(select(Ticket))
            ),
            "lookups": sorted(
                (x.id, x.name, x.enabled, repr(x.inputs), repr(x.fields))
                for x in session.scalars(select(Lookup))
            ),
            "lookup_tokens": sorted(
                (t.id, t.revoked_at is not None) for t in session.scalars(select(LookupToken))
            ),
            "teams": sorted(
                (
                    t.id,
                    t.name,
                    t.assignment_method,
                    t.capacity_default,
                    t.timezone or "",
                    repr(t.business_hours),
                    repr(t.holidays),
                )
                for t in session.scalars(select(Team))
            ),
            "team_members": sorted(
                session.execute(select(TeamMember.team_id, TeamMember.agent_id))
            ),
            "routing_rules": sorted(
                (r.id, r.name, r.enabled, r.position) for r in session.scalars(select(RoutingRule))
            ),
            "sla_policies": sorted(
                (p.id, p.name, p.position, p.first_response_minutes or 0, p.resolution_minutes or 0)
                for p in session.scalars(select(SlaPolicy))
            ),
        }


def files_on_disk(server: LiveServer) -> list[str]:
    directory = server.settings.attachments_dir
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []
