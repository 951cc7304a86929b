"""The chat widget's API (``/chat/v1``) as a visitor's browser uses it: sessions (anonymous and
signed, forged ones refused), their own conversations only, CORS, attachments, typing, the live
stream and ratings. Both backends, real HTTP; the chat's channel is off (the team answers)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from chat.chat_support import IDENTITY_SECRET, EventStream, Visitor, signed_hash
from inbox.web_support import new_agent, sign_in, start_server
from sqlalchemy import func, select
from support.server import LiveServer

from findesk.chat import service as chat_service
from findesk.chat.models import ChatSession
from findesk.conversations.models import Conversation
from findesk.csat.models import CsatRating
from findesk.fin_api.client import Variant
from findesk.fin_ledger.models import PendingFetch
from findesk.kit.actor import SYSTEM
from findesk.kit.errors import Invalid
from findesk.live.models import Activity
from findesk.notifier.models import OutboxEvent
from findesk.notifier.service import replay
from findesk.throttle.models import ThrottleCounter
from findesk.users.models import EndUser
from findesk.users.service import merge_into

SITE = "https://www.example.com"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live = start_server(
        request,
        request.param,
        tmp_path_factory.mktemp("chat-widget"),
        chat_identity_secret=IDENTITY_SECRET,
        chat_allowed_origins=SITE,
        live_poll_seconds=0.2,
        # Fin is configured for Messenger conversations: chat ones must still never reach it.
        fin_webhook_url="http://127.0.0.1:9/hooks/standalone/custom_helpdesk_conversation_event/x",
    )
    yield live
    live.stop()


@pytest.fixture(scope="module")
def agent(server: LiveServer) -> Iterator[httpx.Client]:
    with server.agent_http(f"chat-agent-{uuid.uuid4().hex[:6]}@example.com", "Grace") as client:
        yield client


def test_config_needs_no_token_and_says_what_the_widget_may_do(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = httpx.get(f"{server.base_url}/chat/v1/config").json()
    assert answer["channel"] == "off"
    assert answer["anonymous_allowed"] is True
    assert answer["identity_required"] is False
    assert answer["title"] == "Chat with us" and answer["accent_color"] == "#1f6feb"
    # The company's own words and colour (FINDESK_CHAT_TITLE, _GREETING, _ACCENT_COLOR).
    chosen = {"title": "Acme help", "greeting": "Hello!", "accent_color": "#aa0000"}
    for name, value in chosen.items():
        monkeypatch.setattr(server.settings, f"chat_{name}", value)
    answer = httpx.get(f"{server.base_url}/chat/v1/config").json()
    assert {name: answer[name] for name in chosen} == chosen


def test_every_other_call_needs_a_session_token(server: LiveServer) -> None:
    base = f"{server.base_url}/chat/v1"
    assert httpx.get(f"{base}/conversations").status_code == 401
    refused = httpx.get(f"{base}/conversations", headers={"Authorization": "Bearer fcs_forged"})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_token"
    no_body = httpx.post(f"{base}/conversations", content=b"{nope")  # 401 before any 400
    assert no_body.status_code == 401


def test_an_anonymous_visitor_gets_a_session_and_a_lead(server: LiveServer) -> None:
    visitor = Visitor.start(server)
    assert visitor.session["user"]["anonymous"] is True
    assert visitor.session["expires_at"]
    assert visitor.http.get("/conversations").json() == []
    with server.db.read_session() as session:
        user = session.get(EndUser, visitor.user_id)
        assert user is not None and (user.object_id or "").startswith("chat-visitor:")
        # Only the token's hash is stored.
        row = session.scalars(select(ChatSession).where(ChatSession.user_id == user.id)).one()
        assert row.token_hash != visitor.token and visitor.token not in row.token_hash


def test_a_signed_identity_is_the_same_user_each_time(server: LiveServer) -> None:
    user_id = f"site-{uuid.uuid4().hex[:6]}"
    identity = {
        "user_id": user_id,
        "user_hash": signed_hash(user_id),
        "name": "Ada",
        "email": "ada@example.com",
    }
    first = Visitor.start(server, **identity)
    again = Visitor.start(server, **identity)
    assert first.session["user"] == again.session["user"]
    assert first.session["user"]["anonymous"] is False
    assert first.session["user"]["name"] == "Ada"
    assert first.token != again.token


def test_a_forged_identity_is_refused_and_nothing_is_created(server: LiveServer) -> None:
    user_id = f"victim-{uuid.uuid4().hex[:6]}"
    base = f"{server.base_url}/chat/v1/session"
    for forged in (
        {"user_id": user_id, "user_hash": signed_hash(user_id, "not-the-secret")},
        {"user_id": user_id, "user_hash": signed_hash(user_id + "x")},
        {"user_id": user_id},
        {"user_id": user_id, "user_hash": ""},
    ):
        answer = httpx.post(base, json=forged)
        assert answer.status_code == 401, forged
        assert answer.json()["error"]["code"] in ("invalid_identity",)
    with server.db.read_session() as session:
        made = session.scalar(
            select(func.count())
            .select_from(EndUser)
            .where(EndUser.object_id == f"chat-user:{user_id}")
        )
        assert made == 0


def test_a_site_may_allow_signed_visitors_only(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server.settings, "chat_allow_anonymous", False)
    config = httpx.get(f"{server.base_url}/chat/v1/config").json()
    assert config["anonymous_allowed"] is False and config["identity_required"] is True
    refused = httpx.post(f"{server.base_url}/chat/v1/session", json={})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "identity_required"
    user_id = f"site-{uuid.uuid4().hex[:6]}"
    signed = Visitor.start(server, user_id=user_id, user_hash=signed_hash(user_id))
    assert signed.session["user"]["anonymous"] is False


def test_one_address_starts_only_so_many_anonymous_sessions_an_hour(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anonymous sessions cost nothing to ask for and each makes an end user: past the hourly
    limit an address is answered 429 with Retry-After and nothing is made; a signed visitor and
    a session's renewal are never held back."""
    url = f"{server.base_url}/chat/v1/session"
    # Sessions already started from this address in this hour count too: the limit is set just
    # above what was counted by one more session.
    first = Visitor.start(server)
    with server.db.read_session() as session:
        used = session.scalars(
            select(ThrottleCounter.failures).where(
                ThrottleCounter.scope == "chat.anonymous.address"
            )
        ).one()
    monkeypatch.setattr(server.settings, "chat_anonymous_per_hour", used + 2)
    Visitor.start(server), Visitor.start(server)

    def users() -> int:
        with server.db.read_session() as session:
            return session.scalar(select(func.count()).select_from(EndUser)) or 0

    before = users()
    refused = httpx.post(url, json={})
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "too_many_attempts"
    assert 0 < int(refused.headers["retry-after"]) <= 3600
    assert users() == before
    user_id = f"site-{uuid.uuid4().hex[:6]}"
    Visitor.start(server, user_id=user_id, user_hash=signed_hash(user_id))
    renewed = httpx.post(url, json={"token": first.token})
    assert renewed.status_code == 201
    monkeypatch.setattr(server.settings, "chat_anonymous_per_hour", used + 10)
    Visitor.start(server)


def test_a_session_token_renews_and_a_bad_one_does_not(server: LiveServer) -> None:
    visitor = Visitor.start(server)
    base = f"{server.base_url}/chat/v1/session"
    renewed = httpx.post(base, json={"token": visitor.token})
    assert renewed.status_code == 201
    assert renewed.json()["user"]["id"] == visitor.user_id
    assert httpx.post(base, json={"token": "fcs_nope"}).status_code == 401


def test_a_visitor_sees_only_their_own_conversations(server: LiveServer) -> None:
    ada, eve = Visitor.start(server), Visitor.start(server)
    started = ada.ask("Where is my <b>parcel</b>?")
    conversation_id = started["conversation"]["id"]
    assert started["conversation"]["waiting_for_human"] is True  # no channel: the team answers
    assert started["message"]["author"]["type"] == "user"
    assert "&lt;b&gt;parcel&lt;/b&gt;" in started["message"]["body_html"]  # text, not markup
    listed = ada.http.get("/conversations").json()
    assert [c["id"] for c in listed] == [conversation_id]
    assert listed[0]["last_message"]["text"] == "Where is my <b>parcel</b>?"
    assert eve.http.get("/conversations").json() == []
    for attempt in (
        eve.http.get(f"/conversations/{conversation_id}/messages"),
        eve.http.post(f"/conversations/{conversation_id}/messages", json={"body": "mine now"}),
        eve.http.post(f"/conversations/{conversation_id}/typing"),
        eve.http.post(f"/conversations/{conversation_id}/read"),
        eve.http.post(f"/conversations/{conversation_id}/rating", json={"rating": "bad"}),
    ):
        assert attempt.status_code == 404, attempt.text
        assert attempt.json()["error"]["code"] == "not_found"
    assert len(ada.messages(conversation_id)) == 1
    # Nothing for Fin's Messenger webhook: the chat is not announced through the notifier.
    with server.db.read_session() as session:
        fin_events = session.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.conversation_id == conversation_id, OutboxEvent.kind == "fin")
        )
        assert fin_events == 0


def test_replaying_a_chat_conversation_never_queues_a_fin_webhook(server: LiveServer) -> None:
    """``findesk outbox replay --conversation`` records a fresh webhook for a Messenger
    conversation with nothing to replay; for a chat one it says why not and records nothing."""
    conversation_id = Visitor.start(server).ask("Hello")["conversation"]["id"]
    with pytest.raises(Invalid, match="chat conversation"):
        with server.db.transaction() as session:
            replay(session, dead=True, conversation_id=conversation_id)
    with server.db.read_session() as session:
        queued = session.scalars(
            select(OutboxEvent.kind).where(OutboxEvent.conversation_id == conversation_id)
        ).all()
        assert "fin" not in queued


def test_merging_an_anonymous_visitor_into_a_user_ends_its_sessions(server: LiveServer) -> None:
    """The agent's merge moves the visitor's chat to the user, but the anonymous browser does not
    gain the user's conversations: its session ends; the user, signed in, sees the chat."""
    user_id = f"site-{uuid.uuid4().hex[:6]}"
    ada = Visitor.start(
        server, user_id=user_id, user_hash=signed_hash(user_id), email=f"{user_id}@example.com"
    )
    ada_first = ada.ask("My own question")["conversation"]["id"]
    stranger = Visitor.start(server)
    asked = stranger.ask("I am Ada, this is my email")["conversation"]["id"]
    with server.db.transaction() as session:
        visitor, user = session.get(EndUser, stranger.user_id), session.get(EndUser, ada.user_id)
        assert visitor is not None and user is not None
        merge_into(session, visitor, user, SYSTEM)
    refused = stranger.http.get("/conversations")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_token"
    assert stranger.http.get(f"/conversations/{ada_first}/messages").status_code == 401
    assert {c["id"] for c in ada.http.get("/conversations").json()} == {ada_first, asked}


@pytest.mark.parametrize("variant", ["rest", "posts-only"])
def test_the_fin_api_does_not_see_chat_conversations(server: LiveServer, variant: Variant) -> None:
    ada = Visitor.start(server)
    conversation_id = ada.ask("Hello")["conversation"]["id"]
    world = server.fin_world(variant)
    fin = world.api
    # The same calls find a Messenger conversation: a 404 below is the chat's, not the path's.
    messenger = world.open(world.user()["id"])["conversation"]["id"]
    assert fin.get_conversation(messenger).status == 200
    assert fin.get_messages(messenger).status == 200

    assert fin.get_conversation(conversation_id).status == 404
    assert fin.get_messages(conversation_id).status == 404
    written = fin.create_message(
        conversation_id=conversation_id,
        author={"user_type": "agent", "id": server.fin_agent_id},
        body="<p>hi</p>",
        object_id=f"fin-{uuid.uuid4().hex}",
    )
    assert written.status == 404
    assert fin.update_conversation(conversation_id, status="resolved").status == 404
    assert len(ada.messages(conversation_id)) == 1
    with server.db.read_session() as session:
        assert session.get(Conversation, conversation_id).status == "open"  # type: ignore[union-attr]


def test_cors_answers_only_allowed_origins(server: LiveServer) -> None:
    url = f"{server.base_url}/chat/v1/conversations"
    asks = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    allowed = httpx.options(url, headers={"Origin": SITE, **asks})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == SITE
    assert "Authorization" in allowed.headers["access-control-allow-headers"]
    assert "access-control-allow-credentials" not in allowed.headers
    own = httpx.options(url, headers={"Origin": server.base_url, **asks})
    assert own.headers["access-control-allow-origin"] == server.base_url
    # findesk's own page reached by another name (localhost): the browser's Host agrees.
    other_name = f"http://localhost:{server.port}"
    named = httpx.options(url, headers={"Origin": other_name, "Host": f"localhost:{server.port}"})
    assert named.headers["access-control-allow-origin"] == other_name
    visitor = Visitor.start(server)
    listed = visitor.http.get("/conversations", headers={"Origin": SITE})
    assert listed.status_code == 200
    assert listed.headers["access-control-allow-origin"] == SITE
    for evil in ("https://evil.example", "null", SITE + ".evil.example"):
        refused = httpx.options(url, headers={"Origin": evil, **asks})
        assert refused.status_code == 403
        assert "access-control-allow-origin" not in refused.headers
        call = visitor.http.get("/conversations", headers={"Origin": evil})
        assert call.status_code == 403
        assert "access-control-allow-origin" not in call.headers


def test_attachments_are_uploaded_then_sent_with_a_message(
    server: LiveServer, tmp_path: Path
) -> None:
    ada, eve = Visitor.start(server), Visitor.start(server)
    uploaded = ada.http.post(
        "/attachments", files={"file": ("receipt.png", b"\x89PNG\r\n\x1a\nfake", "image/png")}
    )
    assert uploaded.status_code == 201, uploaded.text
    upload = uploaded.json()
    assert upload["name"] == "receipt.png" and upload["content_type"] == "image/png"
    assert upload["size"] == 12
    # Another visitor cannot send someone else's upload.
    stolen = eve.http.post("/conversations", json={"body": "look", "attachments": [upload["key"]]})
    assert stolen.status_code == 422
    started = ada.ask("Here is my receipt", attachments=[upload["key"]])
    files = started["message"]["attachments"]
    assert [(f["name"], f["content_type"], f["size"]) for f in files] == [
        ("receipt.png", "image/png", 12)
    ]
    download = httpx.get(files[0]["url"])
    assert download.status_code == 200
    assert download.content == b"\x89PNG\r\n\x1a\nfake"
    # Sent once: it cannot be attached again.
    again = ada.http.post(
        f"/conversations/{started['conversation']['id']}/messages",
        json={"attachments": [upload["key"]]},
    )
    assert again.status_code == 422


def test_a_visitors_stream_spends_nothing_on_other_visitors_conversations(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every open stream sees every live-feed row: the rows of others' conversations are
    dropped without a thread or a query (the feed says whose conversation a row is about), so
    the cost of a stream does not grow with everyone else's chats. A conversation of theirs
    made elsewhere (another tab) still reaches it."""
    seen: list[set[str]] = []
    real = chat_service.stream_events

    def counting(session: Any, state: Any, items: list[dict[str, Any]]) -> Any:
        seen.append({item["conversation_id"] for item in items})
        return real(session, state, items)

    monkeypatch.setattr(chat_service, "stream_events", counting)
    ada, eve = Visitor.start(server), Visitor.start(server)
    stream = EventStream(server, ada.token)
    try:
        others = {eve.ask(f"Question {n}")["conversation"]["id"] for n in range(5)}
        # Ada's own conversation, made by another of her tabs: her stream learns of it.
        other_tab = Visitor(server, {**ada.session})
        mine = other_tab.ask("From my other tab")["conversation"]["id"]
        stream.wait_for(lambda e: e.name == "message" and e.data["conversation_id"] == mine)
    finally:
        stream.close()
    translated = set().union(*seen)
    assert mine in translated
    assert not translated & others, "Ada's stream worked on Eve's conversations"


def test_an_agents_reply_and_typing_reach_the_visitors_stream(
    server: LiveServer, agent: httpx.Client
) -> None:
    ada, eve = Visitor.start(server), Visitor.start(server)
    conversation_id = ada.ask("Can a person help?")["conversation"]["id"]
    eve.ask("Me too")
    stream = EventStream(server, ada.token)
    eve_stream = EventStream(server, eve.token)
    try:
        assert agent.post(f"/conversations/{conversation_id}/typing").status_code == 202
        typing = stream.wait_for(lambda e: e.name == "typing")
        assert typing.data == {"conversation_id": conversation_id, "author": "agent"}
        reply = agent.post(
            f"/conversations/{conversation_id}/messages", json={"body": "<p>Yes, <b>I can</b>.</p>"}
        )
        assert reply.status_code == 201, reply.text
        got = stream.wait_for(lambda e: e.name == "message" and e.data["author"]["type"] == "agent")
        assert got.data["conversation_id"] == conversation_id
        assert got.data["body_html"] == "<p>Yes, <b>I can</b>.</p>"
        assert got.data["author"]["name"] == "Grace"
        assert got.id is not None
        owner = stream.wait_for(
            lambda e: e.name == "conversation" and not e.data["waiting_for_human"]
        )
        assert owner.data["id"] == conversation_id
        # Eve's stream carries none of Ada's conversation: a reply in Eve's own shows it is live.
        eve_id = eve.http.get("/conversations").json()[0]["id"]
        agent.post(f"/conversations/{eve_id}/messages", json={"body": "<p>Hello Eve</p>"})
        eve_stream.wait_for(
            lambda e: (
                e.name == "message"
                and e.data["conversation_id"] == eve_id
                and e.data["author"]["type"] == "agent"
            )
        )
        assert all(
            e.data.get("conversation_id", e.data.get("id")) != conversation_id
            for e in eve_stream.events
        )
        # The visitor's unread count and read marker.
        listed = ada.http.get("/conversations").json()[0]
        assert listed["unread"] == 1 and listed["last_message"]["author_type"] == "agent"
        assert ada.http.post(f"/conversations/{conversation_id}/read").status_code == 204
        assert ada.http.get("/conversations").json()[0]["unread"] == 0
        # Resuming from an event id: what came after it is sent again.
        resumed = EventStream(server, ada.token, after=str(int(typing.id or 0)))
        resumed.wait_for(lambda e: e.name == "message" and e.data["id"] == got.data["id"])
        resumed.close()
        assert ada.http.post(f"/conversations/{conversation_id}/typing").status_code == 202
        # The notifier announced none of it to Fin's Messenger webhook (which is configured).
        with server.db.read_session() as session:
            announced = session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(
                    OutboxEvent.conversation_id.in_([conversation_id, eve_id]),
                    OutboxEvent.kind == "fin",
                )
            )
            assert announced == 0
            # Nor does the inbox wait for Fin to fetch the agent's reply (it never will).
            waiting = session.scalar(
                select(func.count())
                .select_from(PendingFetch)
                .where(PendingFetch.conversation_id == conversation_id)
            )
            assert waiting == 0
    finally:
        stream.close()
        eve_stream.close()


def test_the_visitors_typing_reaches_the_inbox_at_most_once_a_second(
    server: LiveServer,
) -> None:
    inbox = sign_in(server, new_agent(server, "Typing Watcher")).http
    ada = Visitor.start(server)
    conversation_id = ada.ask("Hello")["conversation"]["id"]
    with server.db.read_session() as session:
        before = session.scalar(select(func.max(Activity.id))) or 0
    for _ in range(3):  # a widget calling too often: one event
        assert ada.http.post(f"/conversations/{conversation_id}/typing").status_code == 202
    with inbox.stream(
        "GET", "/inbox/live", headers={"Last-Event-ID": str(before)}, timeout=20
    ) as response:
        assert response.status_code == 200, response.read()
        line = next(line for line in response.iter_lines() if line.startswith("data: "))
    event = json.loads(line.removeprefix("data: "))
    assert (event["conversation_id"], event["kind"], event["actor"]) == (
        conversation_id, "typing", "user"
    )  # fmt: skip
    with server.db.read_session() as session:
        kinds = session.scalars(
            select(Activity.kind).where(
                Activity.id > before, Activity.conversation_id == conversation_id
            )
        ).all()
    assert kinds == ["typing"]


def test_resolving_asks_for_a_rating_stored_in_csat(
    server: LiveServer, agent: httpx.Client
) -> None:
    ada = Visitor.start(server)
    conversation_id = ada.ask("Thanks in advance")["conversation"]["id"]
    early = ada.http.post(f"/conversations/{conversation_id}/rating", json={"rating": "good"})
    assert early.status_code == 409  # nobody asked yet
    stream = EventStream(server, ada.token)
    try:
        agent.post(f"/conversations/{conversation_id}/messages", json={"body": "<p>Done.</p>"})
        resolved = agent.patch(f"/conversations/{conversation_id}", json={"status": "resolved"})
        assert resolved.status_code == 200, resolved.text
        asked = stream.wait_for(lambda e: e.name == "rating_request")
        assert asked.data == {"conversation_id": conversation_id}
    finally:
        stream.close()
    # No rating link message in the widget: the widget asks itself.
    assert all("/rate/" not in m["body_html"] for m in ada.messages(conversation_id))
    bad = ada.http.post(f"/conversations/{conversation_id}/rating", json={"rating": "great"})
    assert bad.status_code == 422
    assert "error" in bad.json()
    rated = ada.http.post(
        f"/conversations/{conversation_id}/rating", json={"rating": "amazing", "remark": "Quick!"}
    )
    assert rated.status_code == 201, rated.text
    with server.db.read_session() as session:
        row = session.get(CsatRating, conversation_id)
        assert row is not None and row.score == 5 and row.comment == "Quick!"
    twice = ada.http.post(f"/conversations/{conversation_id}/rating", json={"rating": "bad"})
    assert twice.status_code == 409


def test_the_widget_files_and_demo_page_are_served_from_the_chat_package(
    server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.templating import Jinja2Templates

    from findesk.chat import endpoints

    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "widget.js").write_text("console.log('chat');\n")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "chat_demo.html").write_text(
        '<script src="{{ widget_js_url }}" data-findesk-chat'
        ' data-user-id="{{ demo_user.user_id }}"'
        ' data-user-hash="{{ demo_user.user_hash }}"></script>'
    )
    monkeypatch.setattr(endpoints, "STATIC", tmp_path / "static")
    monkeypatch.setattr(endpoints, "HERE", tmp_path)
    monkeypatch.setattr(endpoints, "templates", Jinja2Templates(directory=tmp_path / "templates"))
    script = httpx.get(f"{server.base_url}/chat/widget.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["cross-origin-resource-policy"] == "cross-origin"
    assert httpx.get(f"{server.base_url}/chat/assets/..%2Fwidget.js").status_code == 404
    assert httpx.get(f"{server.base_url}/chat/widget.css").status_code == 404  # none here
    page = httpx.get(f"{server.base_url}/chat/demo")
    assert page.status_code == 200
    assert page.headers["x-content-type-options"] == "nosniff"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "unsafe-inline" not in policy
    assert f'src="{server.base_url}/chat/widget.js"' in page.text
    # The demo visitor is signed as a site's backend would sign them: the API accepts it.
    user_id = "demo-42"
    assert f'data-user-hash="{signed_hash(user_id)}"' in page.text
    signed = httpx.post(
        f"{server.base_url}/chat/v1/session",
        json={"user_id": user_id, "user_hash": signed_hash(user_id)},
    )
    assert signed.status_code == 201


def test_uploads_never_sent_and_expired_sessions_are_pruned(server: LiveServer) -> None:
    from datetime import timedelta

    from findesk.chat import service
    from findesk.chat.models import ChatUpload
    from findesk.kit.timeutil import utcnow

    ada = Visitor.start(server)
    upload = ada.http.post("/attachments", files={"file": ("note.txt", b"hello", "text/plain")})
    key = upload.json()["key"]
    path = server.settings.attachments_dir / key
    assert path.is_file()
    with server.db.transaction() as session:
        service.prune(session, server.settings, utcnow() + timedelta(days=31))
    assert not path.exists()
    with server.db.read_session() as session:
        assert session.get(ChatUpload, key) is None
    assert ada.http.get("/conversations").status_code == 401  # its session expired too
