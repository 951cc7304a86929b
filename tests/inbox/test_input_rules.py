"""The inbox's and the admin page's forms hold text to the same rules as the APIs (``kit.text``):
a NUL byte, another control character or a 100,000-character value is refused with a message on
the page and stores nothing; a value at the limit is stored whole. On SQLite and on PostgreSQL,
whose columns would refuse a longer value with a server error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from support.fin import World
from support.server import LiveServer
from web_support import (
    PASSWORD,
    Node,
    Web,
    new_agent,
    parse_html,
    sign_in,
    snapshot,
    start_server,
    unique,
)

from findesk.agents.models import Agent
from findesk.attachments.models import StoredFile
from findesk.auth.models import OAuthClient
from findesk.conversations.models import Conversation, Message
from findesk.kit.text import (
    ARTICLE_TITLE_MAX,
    EMAIL_MAX,
    MESSAGE_BODY_MAX,
    NAME_MAX,
    TAG_MAX,
)
from findesk.knowledge.models import Article

CONTROL = "must not contain control characters"
HUGE = 100_000


def bad_values(limit: int) -> dict[str, tuple[str, str]]:
    """name -> (a value, what the refusal says) for a one-line field of ``limit`` characters."""
    return {
        "NUL": ("Ada\x00Lovelace", f"{CONTROL} (found U+0000)"),
        "escape sequence": ("Ada \x1b[2J", f"{CONTROL} (found U+001B)"),
        "100,000 characters": ("x" * HUGE, f"must be at most {limit} characters (it has {HUGE})"),
    }


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live = start_server(
        request, request.param, tmp_path_factory.mktemp("rules"), kb_publish_in_process=False
    )
    yield live
    live.stop()


@pytest.fixture(scope="module")
def world(server: LiveServer) -> World:
    return server.fin_world()


@pytest.fixture(scope="module")
def web(server: LiveServer) -> Iterator[Web]:
    signed_in = sign_in(server, new_agent(server, "Ada Agent"))
    yield signed_in
    signed_in.close()


@pytest.fixture(scope="module")
def admin_web(server: LiveServer) -> Iterator[Web]:
    signed_in = sign_in(server, new_agent(server, "Root Admin", role="admin"))
    yield signed_in
    signed_in.close()


def follow(web: Web, response: httpx.Response) -> Node:
    assert response.status_code == 303, (response.status_code, response.text[:300])
    location = response.headers["location"]
    assert len(location) < 1000, "the refusal must not carry the value back in the URL"
    return web.page(location)


def error_on(page: Node) -> str:
    return page.find("p", "error").text


def one(server: LiveServer, model: Any, **where: Any) -> Any:
    with server.db.read_session() as session:
        query = select(model).filter_by(**where)
        return session.scalars(query).unique().one_or_none()


# --- the admin page: agents and OAuth clients ------------------------------------------------


def agent_form(**fields: str) -> dict[str, str]:
    return {
        "email": f"{unique('new')}@example.com",
        "name": "New Agent",
        "password": PASSWORD,
        "role": "agent",
        **fields,
    }


ADMIN_FIELDS = {
    # what: (form action, field, its limit, a form around it)
    "agent name": ("/inbox/admin/agents", "name", NAME_MAX, agent_form),
    "agent alias": ("/inbox/admin/agents", "alias", NAME_MAX, agent_form),
    "client name": ("/inbox/admin/clients", "name", NAME_MAX, dict),
}


@pytest.mark.parametrize("bad", list(bad_values(0)))
@pytest.mark.parametrize("what", list(ADMIN_FIELDS))
def test_the_admin_forms_refuse_bad_names_and_store_nothing(
    server: LiveServer, admin_web: Web, what: str, bad: str
) -> None:
    action, field, limit, form = ADMIN_FIELDS[what]
    value, says = bad_values(limit)[bad]
    before = snapshot(server)
    page = follow(admin_web, admin_web.post(action, form(**{field: value})))
    assert says in error_on(page), what
    assert snapshot(server) == before


@pytest.mark.parametrize(
    ("email", "says"),
    [
        ("ada\x00@example.com", "not a valid email address"),
        ("ada\x07@example.com", "not a valid email address"),
        ("x" * HUGE + "@example.com", f"at most {EMAIL_MAX} characters"),
    ],
)
def test_the_admin_form_refuses_a_bad_email(
    server: LiveServer, admin_web: Web, email: str, says: str
) -> None:
    before = snapshot(server)
    page = follow(admin_web, admin_web.post("/inbox/admin/agents", agent_form(email=email)))
    assert says in error_on(page)
    assert snapshot(server) == before


def test_names_at_the_limit_are_stored_whole(server: LiveServer, admin_web: Web) -> None:
    email = f"{unique('long')}@example.com"
    email = "e" * (EMAIL_MAX - len(email)) + email
    name, alias = "N" * NAME_MAX, "Ä" * NAME_MAX
    # A one-line field's tabs and line breaks are spaces; around it, nothing.
    form = agent_form(email=email, name=f"  {name}\n", alias=alias)
    page = follow(admin_web, admin_web.post("/inbox/admin/agents", form))
    assert "created" in page.find("p", "notice").text
    agent = one(server, Agent, email=email)
    assert (agent.name, agent.alias) == (name, alias)

    client_name = unique("Fin").ljust(NAME_MAX, "c")
    response = admin_web.post("/inbox/admin/clients", {"name": client_name})
    assert response.status_code == 200, response.text[:300]
    assert one(server, OAuthClient, name=client_name) is not None


# --- a conversation's forms ------------------------------------------------------------------


@pytest.mark.parametrize("bad", list(bad_values(0)))
def test_the_tags_form_refuses_a_bad_tag_and_changes_nothing(
    server: LiveServer, world: World, web: Web, bad: str
) -> None:
    cid = world.conversation(title=unique("Order"))[0]["id"]
    world.update(cid, tags=["kept"])
    value, says = bad_values(TAG_MAX)[bad]
    before = snapshot(server)
    page = follow(web, web.post(f"/inbox/conversations/{cid}/tags", {"tags": f"vip, {value}"}))
    assert f"A tag {says}" in error_on(page)
    assert snapshot(server) == before
    assert one(server, Conversation, id=cid).tags == ["kept"]


def test_a_tag_at_the_limit_is_stored_whole(server: LiveServer, world: World, web: Web) -> None:
    cid = world.conversation(title=unique("Order"))[0]["id"]
    tag = "t" * TAG_MAX
    follow(web, web.post(f"/inbox/conversations/{cid}/tags", {"tags": f"vip,{tag}\t"}))
    assert one(server, Conversation, id=cid).tags == ["vip", tag]


def test_a_reply_too_long_is_refused_and_control_characters_never_stored(
    server: LiveServer, world: World, web: Web
) -> None:
    cid = world.conversation(title=unique("Order"))[0]["id"]
    base = f"/inbox/conversations/{cid}"
    before = snapshot(server)
    page = follow(web, web.post(f"{base}/reply", {"body": "x" * (MESSAGE_BODY_MAX + 1)}))
    assert f"at most {MESSAGE_BODY_MAX} characters" in error_on(page)
    assert snapshot(server) == before

    follow(web, web.post(f"{base}/reply", {"body": "<p>Hi\x00 \x1b[2Jthere\x7f</p>"}))
    with server.db.read_session() as session:
        bodies = session.scalars(select(Message.body).filter_by(conversation_id=cid)).all()
    assert bodies[-1] == "<p>Hi [2Jthere</p>"


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("image/" + "x" * 300, "image/png"),  # longer than its column: guessed from the name
        ("image/png\x00", "image/png"),
        ("not a type", "image/png"),
        ("IMAGE/PNG; charset=binary", "image/png"),
        ("application/vnd.example+json", "application/vnd.example+json"),
    ],
)
def test_an_attachments_content_type_is_believed_only_when_well_formed(
    server: LiveServer, world: World, web: Web, sent: str, stored: str
) -> None:
    cid = world.conversation(title=unique("Order"))[0]["id"]
    name = unique("scan") + ".png"
    response = web.http.post(
        f"/inbox/conversations/{cid}/reply",
        data={"body": "<p>The scan</p>", "csrf_token": web.csrf},
        files=[("files", (name, b"\x89PNG not really", sent))],
    )
    assert response.status_code == 303, response.text
    assert one(server, StoredFile, filename=name).content_type == stored


# --- the article editor ----------------------------------------------------------------------


def article_form(**fields: str) -> dict[str, str]:
    return {
        "title": unique("Reset a password"),
        "body": "Open **Settings**.",
        "body_format": "markdown",
        "locale": "en",
        "url": "",
        "action": "save",
        **fields,
    }


def new_article(web: Web) -> str:
    response = web.post("/inbox/articles", article_form())
    assert response.status_code == 303, response.text[:300]
    return str(response.headers["location"]).split("?")[0].rsplit("/", 1)[1]


@pytest.mark.parametrize("bad", list(bad_values(0)))
@pytest.mark.parametrize("form", ["new", "edit"])
def test_the_article_form_refuses_a_bad_title_next_to_the_field(
    server: LiveServer, web: Web, form: str, bad: str
) -> None:
    action = "/inbox/articles" if form == "new" else f"/inbox/articles/{new_article(web)}"
    value, says = bad_values(ARTICLE_TITLE_MAX)[bad]
    before = snapshot(server)
    response = web.post(action, article_form(title=value))
    assert response.status_code == 422
    page = parse_html(response.text)
    assert says in page.find("p", "field-error", id="title-error").text
    assert page.find("input", name="title").attrs["aria-invalid"] == "true"
    assert snapshot(server) == before


def test_the_article_form_refuses_control_characters_in_the_body(
    server: LiveServer, web: Web
) -> None:
    before = snapshot(server)
    response = web.post("/inbox/articles", article_form(body="Step 1\n\x1b[31mred\x1b[0m"))
    assert response.status_code == 422
    page = parse_html(response.text)
    assert f"{CONTROL} (found U+001B)" in page.find("p", "field-error", id="body-error").text
    assert snapshot(server) == before


def test_an_article_title_at_the_limit_is_stored_whole(server: LiveServer, web: Web) -> None:
    title = unique("T").ljust(ARTICLE_TITLE_MAX, "é")
    response = web.post("/inbox/articles", article_form(title=f" {title}\n"))
    assert response.status_code == 303, response.text[:300]
    assert one(server, Article, title=title) is not None
