"""CSAT: the rating request a human's resolve writes (and Fin reads), the public rating page,
and the rating in the history and the inbox's timeline. Both backends, real HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from inbox.web_support import Node, Person, Web, new_agent, parse_html, sign_in, start_server
from sqlalchemy import func, select
from support.fin import World
from support.server import LiveServer

from findesk.conversations import service as conversations
from findesk.conversations.models import Conversation, ConversationEvent
from findesk.csat import service as csat
from findesk.csat.models import CsatRating
from findesk.kit.actor import agent as agent_actor
from findesk.kit.settings import Settings
from findesk.kit.settings_in_use import using_settings
from findesk.notifier.models import OutboxEvent

LINK = re.compile(r"/rate/(rate_[A-Za-z0-9_-]+)")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live = start_server(request, request.param, tmp_path_factory.mktemp("csat"))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def world(server: LiveServer) -> World:
    return server.fin_world()


@pytest.fixture(scope="module")
def me(server: LiveServer) -> Person:
    return new_agent(server, "Ada Agent")


@pytest.fixture(scope="module")
def web(server: LiveServer, me: Person) -> Iterator[Web]:
    signed_in = sign_in(server, me)
    yield signed_in
    signed_in.close()


@pytest.fixture(scope="module")
def public(server: LiveServer) -> Iterator[httpx.Client]:
    """An end user's browser: no session, no cookies that matter."""
    with httpx.Client(base_url=server.base_url, timeout=30, follow_redirects=False) as client:
        yield client


# --- helpers ---------------------------------------------------------------------------------


def handed_over(world: World) -> str:
    created, _ = world.conversation()
    world.hand_over(str(created["id"]))
    return str(created["id"])


def rating_requests(world: World, conversation_id: str) -> list[dict[str, Any]]:
    """The public messages, as Fin reads them, that link to a rating page."""
    reply = world.api.get_messages(conversation_id)
    assert reply.status == 200, reply.error
    found = reply.data["messages"] if isinstance(reply.data, dict) else reply.data
    return [m for m in found if m.get("body") and LINK.search(m["body"])]


def token_of(message: dict[str, Any]) -> str:
    match = LINK.search(message["body"])
    assert match is not None
    return match.group(1)


def inbox_status(web: Web, conversation_id: str, status: str) -> None:
    response = web.post(f"/inbox/conversations/{conversation_id}/status", {"status": status})
    assert response.status_code == 303, response.text[:300]
    assert "error" not in response.headers["location"], response.headers["location"]


def stored_rating(server: LiveServer, conversation_id: str) -> CsatRating | None:
    with server.db.read_session() as session:
        return session.get(CsatRating, conversation_id)


def events(server: LiveServer, conversation_id: str, kind: str) -> list[ConversationEvent]:
    with server.db.read_session() as session:
        return list(
            session.scalars(
                select(ConversationEvent).where(
                    ConversationEvent.conversation_id == conversation_id,
                    ConversationEvent.kind == kind,
                )
            )
        )


def outbox_events(server: LiveServer, conversation_id: str) -> int:
    with server.db.read_session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.conversation_id == conversation_id)
            )
            or 0
        )


def requested(server: LiveServer, web: Web, world: World) -> tuple[str, str]:
    """A conversation a human resolved in the inbox, and its rating link's token."""
    conversation_id = handed_over(world)
    inbox_status(web, conversation_id, "resolved")
    [message] = rating_requests(world, conversation_id)
    return conversation_id, token_of(message)


def form_of(page: Node) -> Node:
    return page.find("form")


# --- the request -----------------------------------------------------------------------------


def test_a_human_resolving_in_the_inbox_asks_for_a_rating_once(
    server: LiveServer, world: World, web: Web, me: Person
) -> None:
    conversation_id = handed_over(world)
    assert rating_requests(world, conversation_id) == []

    inbox_status(web, conversation_id, "resolved")

    [message] = rating_requests(world, conversation_id)
    assert (message["author"]["id"], message["author"]["user_type"]) == (me.id, "agent")
    assert message["visibility"] == "public"
    assert f"{server.base_url}/rate/rate_" in message["body"]
    assert "How did we do? Rate this conversation:" in message["body"]
    # The link's token is stored only as its hash.
    rating = stored_rating(server, conversation_id)
    assert rating is not None and rating.agent_id == me.id and rating.score is None
    assert token_of(message) not in rating.token_hash
    # Written in the agent's name by findesk: it neither takes the conversation nor counts as
    # the first human reply.
    with server.db.read_session() as session:
        row = session.get(Conversation, conversation_id)
        assert row is not None
        assert row.status == "resolved" and row.assignee_id is None
        assert row.first_human_reply_at is None

    # Reopened and resolved (and closed) again: not asked again.
    inbox_status(web, conversation_id, "open")
    inbox_status(web, conversation_id, "resolved")
    inbox_status(web, conversation_id, "closed")
    assert len(rating_requests(world, conversation_id)) == 1


def test_closing_through_the_agent_api_asks_for_a_rating(server: LiveServer, world: World) -> None:
    with server.agent_http("closer@example.com", "Cleo Closer") as api:
        conversation_id = handed_over(world)
        response = api.patch(f"/conversations/{conversation_id}", json={"status": "closed"})
        assert response.status_code == 200, response.text
        [message] = rating_requests(world, conversation_id)
        assert message["author"]["id"] == api.agent_id  # type: ignore[attr-defined]
        # The rating request is in the history the agent API shows.
        history = api.get(f"/conversations/{conversation_id}/history").json()
        kinds = [e["kind"] for e in history.get("items", history.get("data", []))]
        assert "rating_requested" in kinds


def test_fin_resolving_asks_nothing_by_default(server: LiveServer, world: World) -> None:
    created, _ = world.conversation()
    conversation_id = str(created["id"])
    world.fin_says(conversation_id)
    world.update(conversation_id, status="resolved")
    assert rating_requests(world, conversation_id) == []
    assert stored_rating(server, conversation_id) is None


def test_no_request_when_csat_is_off(server: LiveServer, world: World, me: Person) -> None:
    conversation_id = handed_over(world)
    with using_settings(Settings(csat_enabled=False)), server.db.transaction() as session:
        conversations.update_conversation(
            session, conversation_id, {"status": "resolved"}, agent_actor(me.id)
        )
    assert rating_requests(world, conversation_id) == []
    assert stored_rating(server, conversation_id) is None


@pytest.fixture(params=["sqlite", "postgres"])
def fin_asks_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    live = start_server(
        request,
        request.param,
        tmp_path,
        csat_for_fin_resolved=True,
        csat_message="Tell us how Fin did:",
    )
    yield live
    live.stop()


def test_fin_resolving_asks_for_a_rating_when_configured(fin_asks_server: LiveServer) -> None:
    world = fin_asks_server.fin_world()
    created, _ = world.conversation()
    conversation_id = str(created["id"])
    world.fin_says(conversation_id)
    assert outbox_events(fin_asks_server, conversation_id) == 0  # Fin's own doings

    world.update(conversation_id, status="resolved")

    [message] = rating_requests(world, conversation_id)
    assert message["author"]["id"] == fin_asks_server.fin_agent_id
    assert "Tell us how Fin did:" in message["body"]
    assert f"{fin_asks_server.base_url}/rate/" in message["body"]
    # Fin made the status change, findesk wrote the request: Fin must hear of that message.
    assert outbox_events(fin_asks_server, conversation_id) == 1
    world.update(conversation_id, status="open")
    world.update(conversation_id, status="resolved")
    assert len(rating_requests(world, conversation_id)) == 1


# --- the page --------------------------------------------------------------------------------


def test_the_page_shows_a_form_that_works_without_scripts(
    server: LiveServer, world: World, web: Web, public: httpx.Client
) -> None:
    conversation_id, token = requested(server, web, world)
    response = public.get(f"/rate/{token}")
    assert response.status_code == 200
    assert "<script" not in response.text and "style=" not in response.text
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert response.headers["referrer-policy"] == "no-referrer"
    page = parse_html(response.text)
    assert page.find("h1").text.strip() == "How did we do?"
    form = form_of(page)
    assert form.attrs["method"] == "post"
    assert form.find("legend") is not None
    radios = form.find_all("input", type="radio")
    assert [r.attrs["value"] for r in radios] == ["1", "2", "3", "4", "5"]
    assert not any("checked" in r.attrs for r in radios)
    for radio in radios:  # each has its label
        assert form.find("label", **{"for": radio.attrs["id"]}) is not None
    assert form.find("textarea", name="comment") is not None
    assert form.find("label", **{"for": "rate-comment"}) is not None

    # ?score=4 picks 4 beforehand, and records nothing (link scanners follow links).
    preselected = parse_html(public.get(f"/rate/{token}", params={"score": "4"}).text)
    checked = [
        r.attrs["value"]
        for r in preselected.find_all("input", type="radio")
        if "checked" in r.attrs
    ]
    assert checked == ["4"]
    rating = stored_rating(server, conversation_id)
    assert rating is not None and rating.score is None and rating.rated_at is None
    css = public.get("/rate/static/rate.css")
    assert css.status_code == 200 and "prefers-color-scheme: dark" in css.text


def test_rating_once_then_409_and_unchanged(
    server: LiveServer, world: World, web: Web, public: httpx.Client
) -> None:
    conversation_id, token = requested(server, web, world)
    with server.db.read_session() as session:
        before = session.get(Conversation, conversation_id)
        assert before is not None
        activity_before, updated_before = before.last_activity_at, before.updated_at
    told_fin = outbox_events(server, conversation_id)

    response = public.post(f"/rate/{token}", data={"score": "4", "comment": "Quick and kind."})
    assert response.status_code == 200, response.text
    assert outbox_events(server, conversation_id) == told_fin  # Fin is not told of a rating
    assert "Thank you" in response.text
    rating = stored_rating(server, conversation_id)
    assert rating is not None
    assert (rating.score, rating.comment) == (4, "Quick and kind.")
    assert rating.rated_at is not None
    with server.db.read_session() as session:
        after = session.get(Conversation, conversation_id)
        assert after is not None
        assert after.updated_at > updated_before
        assert after.last_activity_at == activity_before

    again = public.post(f"/rate/{token}", data={"score": "1", "comment": "Changed my mind"})
    assert again.status_code == 409
    assert "You have rated this conversation already" in again.text
    still = stored_rating(server, conversation_id)
    assert still is not None
    assert (still.score, still.comment, still.rated_at) == (4, "Quick and kind.", rating.rated_at)
    # The page, visited again, says so too (no form).
    shown = public.get(f"/rate/{token}")
    assert shown.status_code == 200
    assert "You have rated this conversation already" in shown.text
    assert "<form" not in shown.text
    [event] = events(server, conversation_id, "rating")
    assert event.to_value == 4 and event.detail == {"comment": "Quick and kind."}


def test_unknown_token_is_a_404_page(public: httpx.Client) -> None:
    for token in ("rate_nope", "x" * 500):
        response = public.get(f"/rate/{token}")
        assert response.status_code == 404
        assert "find that link" in response.text
        assert public.post(f"/rate/{token}", data={"score": "5"}).status_code == 404


@pytest.mark.parametrize("score", ["0", "6", "", "four", "4.5"])
def test_a_score_out_of_range_shows_the_form_again_and_records_nothing(
    server: LiveServer, world: World, web: Web, public: httpx.Client, score: str
) -> None:
    conversation_id, token = requested(server, web, world)
    response = public.post(f"/rate/{token}", data={"score": score, "comment": "kept <b>text</b>"})
    assert response.status_code == 400
    page = parse_html(response.text)
    assert "Choose a score from 1 to 5." in page.find("p", "error").text
    form = form_of(page)
    assert form.find("textarea", name="comment").text == "kept <b>text</b>"
    rating = stored_rating(server, conversation_id)
    assert rating is not None and rating.score is None and rating.comment is None
    assert events(server, conversation_id, "rating") == []


def test_a_comment_too_long_is_refused(
    server: LiveServer, world: World, web: Web, public: httpx.Client
) -> None:
    conversation_id, token = requested(server, web, world)
    response = public.post(
        f"/rate/{token}", data={"score": "3", "comment": "x" * (csat.COMMENT_MAX + 1)}
    )
    assert response.status_code == 400
    rating = stored_rating(server, conversation_id)
    assert rating is not None and rating.score is None


def test_a_rating_shows_escaped_in_the_inbox_timeline_and_the_history(
    server: LiveServer, world: World, web: Web, public: httpx.Client
) -> None:
    conversation_id, token = requested(server, web, world)
    comment = 'Fine <script>alert("x")</script> & thanks'
    response = public.post(f"/rate/{token}", data={"score": "5", "comment": comment})
    assert response.status_code == 200

    page = web.get(f"/inbox/conversations/{conversation_id}")
    assert page.status_code == 200
    assert '<script>alert("x")' not in page.text
    assert "Rated 5/5: “Fine &lt;script&gt;" in page.text
    told = [n.text for n in parse_html(page.text).find_all("span", "event-text")]
    assert f"Rated 5/5: “{comment}”" in told
    [event] = events(server, conversation_id, "rating")
    assert event.to_value == 5 and event.detail == {"comment": comment}
    assert event.actor == "system"
