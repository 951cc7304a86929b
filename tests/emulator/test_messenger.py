"""The Messenger, as an end user uses it: over HTTP against the emulator wired to a live findesk.

(The browser drives it in tests/test_demo_e2e.py; here every rule is checked one by one.)
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import httpx
import pytest
from content_api_server import ServedApp
from loop_support import REFUNDS_URL, Loop, emulator_config
from support.receiver import eventually
from support.server import free_port

from findesk.conversations.models import Conversation
from findesk.emulator.server import create_emulator


@contextmanager
def visitor(
    loop: Loop, name: str = "Ana Silva", email: str = "ana@example.com"
) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{loop.emulator.base_url}/messenger", timeout=30) as http:
        introduced = http.post("/api/visitor", json={"name": name, "email": email})
        assert introduced.status_code == 201, introduced.text
        yield http


@pytest.fixture
def ana(loop: Loop) -> Iterator[httpx.Client]:
    with visitor(loop) as http:
        yield http


def start(http: httpx.Client, text: str) -> dict:
    started = http.post("/api/conversations", json={"text": text})
    assert started.status_code == 201, started.text
    return started.json()


def test_the_page_is_served_with_a_strict_content_security_policy(loop: Loop) -> None:
    page = httpx.get(f"{loop.emulator.base_url}/messenger")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/messenger/static/messenger.js"' in page.text
    script = httpx.get(f"{loop.emulator.base_url}/messenger/static/messenger.js")
    assert script.status_code == 200 and "EventSource" in script.text
    assert httpx.get(f"{loop.emulator.base_url}/messenger/static/sync.py").status_code == 404


def test_a_visitor_says_who_they_are_before_anything_else(loop: Loop) -> None:
    with httpx.Client(base_url=f"{loop.emulator.base_url}/messenger") as http:
        assert http.get("/api/conversations").status_code == 401
        assert http.post("/api/conversations", json={"text": "hi"}).status_code == 401
        assert http.post("/api/visitor", json={"name": "A", "email": "nope"}).status_code == 422
        assert http.post("/api/visitor", json={"name": " ", "email": "a@b.co"}).status_code == 422
        # A cross-site form cannot send JSON: anything else is refused.
        form = http.post("/api/visitor", data={"name": "A", "email": "a@b.co"})
        assert form.status_code == 415
        introduced = http.post("/api/visitor", json={"name": "A  B", "email": "a@b.co"})
        assert introduced.status_code == 201 and introduced.json()["name"] == "A B"
        cookie = introduced.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/messenger" in cookie
        assert http.get("/api/visitor").json() == {"name": "A B", "email": "a@b.co"}
        assert http.get("/api/conversations").json() == []


def test_fin_answers_with_a_citation_then_a_person_takes_over(loop: Loop, ana) -> None:
    view = start(ana, "How long do refunds take?")
    cid = view["id"]
    assert [m["from"] for m in view["messages"]] == ["you", "fin"]
    assert view["messages"][0]["html"] == "<p>How long do refunds take?</p>"
    assert "5 business days" in view["messages"][1]["html"]
    assert f'href="{REFUNDS_URL}"' in view["messages"][1]["html"]
    assert view["owner"] == "fin"
    with loop.findesk.db.read_session() as session:
        conversation = session.get(Conversation, cid)
        assert conversation is not None and conversation.user.email == "ana@example.com"

    asked = ana.post(f"/api/conversations/{cid}/messages", json={"ask_for_a_person": True})
    assert asked.status_code == 200 and asked.json()["owner"] == "waiting"
    with loop.findesk.db.read_session() as session:
        conversation = session.get(Conversation, cid)
        assert conversation is not None and conversation.assignee_id is None

    with loop.findesk.agent_http("maria@example.com", "Maria Human") as agent:
        assert agent.post(f"/conversations/{cid}/typing").status_code == 202
        assert eventually(lambda: ana.get(f"/api/conversations/{cid}").json()["typing"])
        assert ana.get(f"/api/conversations/{cid}").json()["typing"] == "Maria Human"
        note = {"body": "<p>internal: check the invoice</p>", "visibility": "private"}
        assert agent.post(f"/conversations/{cid}/messages", json=note).status_code == 201
        reply = {"body": "<p>Hi Ana, I refunded the double charge.</p>"}
        assert agent.post(f"/conversations/{cid}/messages", json=reply).status_code == 201

    def agent_replied() -> bool:
        messages = ana.get(f"/api/conversations/{cid}").json()["messages"]
        return any(m["from"] == "agent" for m in messages)

    assert eventually(agent_replied)
    shown = ana.get(f"/api/conversations/{cid}").json()
    last = shown["messages"][-1]
    assert last["name"] == "Maria Human" and "refunded the double charge" in last["html"]
    assert shown["owner"] == "human"
    assert not any("internal" in m["html"] for m in shown["messages"])  # notes stay inside
    listing = ana.get("/api/conversations").json()
    assert [c["id"] for c in listing] == [cid] and listing[0]["last"]["name"] == "Maria Human"


def test_the_stream_pushes_replies_as_they_come(loop: Loop, ana) -> None:
    cid = start(ana, "How long do refunds take?")["id"]
    events: queue.Queue[dict] = queue.Queue()

    def from_sam(view: dict) -> bool:
        return any(m["name"] == "Sam Agent" for m in view["messages"])

    def listen() -> None:  # until the view with Sam's reply arrives
        with ana.stream("GET", f"/api/conversations/{cid}/stream", timeout=30) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    events.put(json.loads(line[6:]))
                    if from_sam(json.loads(line[6:])):
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    first = events.get(timeout=10)
    assert len(first["messages"]) == 2 and not from_sam(first)
    with loop.findesk.agent_http("sam@example.com", "Sam Agent") as agent:
        body = {"body": "<p>Sam here, taking a look.</p>"}
        assert agent.post(f"/conversations/{cid}/messages", json=body).status_code == 201
    listener.join(timeout=20)
    assert not listener.is_alive(), "the reply was not pushed"
    *_, latest = [events.get_nowait() for _ in range(events.qsize())]
    assert from_sam(latest) and latest["owner"] == "human"


def test_one_visitor_cannot_read_anothers_conversation(loop: Loop, ana) -> None:
    cid = start(ana, "Do you ship to Portugal?")["id"]
    with visitor(loop, "Eve", "eve@example.com") as eve:
        assert eve.get(f"/api/conversations/{cid}").status_code == 404
        assert eve.get(f"/api/conversations/{cid}/stream").status_code == 404
        said = eve.post(f"/api/conversations/{cid}/messages", json={"text": "hi"})
        assert said.status_code == 404
        assert eve.get("/api/conversations").json() == []
    assert ana.post(f"/api/conversations/{cid}/messages", json={"text": " "}).status_code == 422


def test_what_fin_saw_and_the_visitors_survive_a_restart(loop: Loop, ana, tmp_path) -> None:
    cid = start(ana, "How long do refunds take?")["id"]
    before = loop.emulator.app.state.engine.last_seen_id(cid)
    assert before is not None
    # A second emulator process on the same state folder: Fin's memory and the Messenger's
    # visitors and transcripts are on disk.
    state_dir = tmp_path / "restarted"
    first = ServedApp(create_emulator(emulator_config(loop.findesk, state_dir)), port=free_port())
    try:
        http = httpx.Client(base_url=f"{first.base_url}/messenger", timeout=30)
        assert http.post("/api/visitor", json={"name": "Rui", "email": "rui@example.com"})
        started = http.post("/api/conversations", json={"text": "How long do refunds take?"})
        restarted_cid = started.json()["id"]
        seen = first.app.state.engine.last_seen_id(restarted_cid)
        first.stop()
        second = ServedApp(create_emulator(emulator_config(loop.findesk, state_dir)))
        try:
            again = httpx.Client(base_url=f"{second.base_url}/messenger", cookies=http.cookies)
            shown = again.get(f"/api/conversations/{restarted_cid}")
            assert shown.status_code == 200 and len(shown.json()["messages"]) == 2
            assert second.app.state.engine.last_seen_id(restarted_cid) == seen
        finally:
            second.stop()
    finally:
        first.stop()


def test_a_helpdesk_that_cannot_be_reached_is_reported_and_nothing_is_lost(
    loop: Loop, tmp_path
) -> None:
    config = emulator_config(loop.findesk, tmp_path / "down")
    dead = f"http://127.0.0.1:{free_port()}"
    config = replace(
        config,
        helpdesk_base_url=f"{dead}/api/fin",
        token_url=f"{dead}/oauth/token",
        retries=1,
        retry_delay=0.01,
    )
    served = ServedApp(create_emulator(config))
    try:
        http = httpx.Client(base_url=f"{served.base_url}/messenger", timeout=30)
        assert http.post("/api/visitor", json={"name": "Rui", "email": "rui@example.com"})
        failed = http.post("/api/conversations", json={"text": "Hello?"})
        assert failed.status_code == 502
        assert "could not reach the helpdesk" in failed.json()["error"]
        assert http.get("/api/conversations").json() == []
    finally:
        served.stop()


def test_who_am_i_is_no_error_before_a_visitor_says_who_they_are(loop: Loop) -> None:
    with httpx.Client(base_url=f"{loop.emulator.base_url}/messenger") as http:
        nobody = http.get("/api/visitor")
        assert nobody.status_code == 204 and nobody.content == b""
        icon = http.get("/static/favicon.svg")
        assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg")


def test_the_page_may_show_pictures_from_the_helpdesk_and_https_only(loop: Loop) -> None:
    policy = httpx.get(f"{loop.emulator.base_url}/messenger").headers["content-security-policy"]
    img_src = next(d for d in policy.split(";") if d.strip().startswith("img-src")).split()
    assert img_src == ["img-src", "'self'", loop.findesk.base_url, "https:", "data:"]
    assert "'unsafe-inline'" not in policy


def test_attachments_are_shown_when_their_urls_are_safe(loop: Loop, ana) -> None:
    cid = start(ana, "How long do refunds take?")["id"]
    store = loop.emulator.app.state.transcripts
    files = f"{loop.findesk.base_url}/files/k1"
    attachments = [
        {"url": f"{files}/receipt.png", "filetype": "png", "filename": "receipt.png"},
        {"url": "https://cdn.example.com/guide.pdf", "filetype": "pdf", "filename": "Guide"},
        {"url": "http://elsewhere.example/photo.jpg", "filetype": "jpg", "filename": "photo"},
        {"url": "https://cdn.example.com/logo.svg", "filetype": "svg", "filename": "logo.svg"},
        {"url": "javascript:alert(1)", "filetype": "png", "filename": "evil.png"},
        {"url": "https://user:pw@example.com/x.png", "filetype": "png", "filename": "creds"},
        {"url": "https://example.com/a b.png", "filetype": "png", "filename": "space"},
        "not an attachment",
    ]
    message = {
        "id": "msg_attachments_test",
        "conversation_id": cid,
        "message_type": "comment",
        "body": None,
        "author": {"id": "agt_unknown", "user_type": "agent"},
        "visibility": "public",
        "created_at": "2026-05-03T10:15:00.000Z",
        "attachments": attachments,
    }
    store.remember(cid, store.seen(cid).user_id or "", [message], None, None)
    shown = ana.get(f"/api/conversations/{cid}").json()["messages"][-1]
    assert shown["html"] == "" and shown["created_at"] == "2026-05-03T10:15:00.000Z"
    assert shown["name"] == "Support" and shown["initials"] == "S" and shown["photo_url"] is None
    assert shown["attachments"] == [
        # From the helpdesk itself: a picture, even over http.
        {"url": f"{files}/receipt.png", "name": "receipt.png", "filetype": "png", "image": True},
        {
            "url": "https://cdn.example.com/guide.pdf",
            "name": "Guide",
            "filetype": "pdf",
            "image": False,
        },
        # Plain http from elsewhere: the page may not show it, so a link.
        {
            "url": "http://elsewhere.example/photo.jpg",
            "name": "photo",
            "filetype": "jpg",
            "image": False,
        },
        {
            "url": "https://cdn.example.com/logo.svg",
            "name": "logo.svg",
            "filetype": "svg",
            "image": False,
        },
    ]


def test_the_conversation_view_says_when_it_is_resolved(loop: Loop, ana) -> None:
    view = start(ana, "How long do refunds take?")
    assert view["status"] == "open"
    cid = view["id"]
    with loop.findesk.agent_http("lin@example.com", "Lin Agent") as agent:
        assert agent.patch(f"/conversations/{cid}", json={"status": "resolved"}).is_success
    assert eventually(lambda: ana.get(f"/api/conversations/{cid}").json()["status"] == "resolved")
    assert ana.get("/api/conversations").json()[0]["status"] == "resolved"


def test_a_human_reply_shows_the_agents_alias_and_a_photo_the_page_may_show(
    loop: Loop, ana
) -> None:
    from findesk.agents.service import create_agent

    cid = start(ana, "How long do refunds take?")["id"]
    agents = [  # alias, photo, initials and photo the Messenger shows
        ("Jo Park", "https://cdn.example.com/jo.png", "JP", "https://cdn.example.com/jo.png"),
        # Plain http from elsewhere: the page's CSP would refuse it, so initials.
        ("Kim de Lee", "http://elsewhere.example/kim.png", "KL", None),
    ]
    for number, (alias, photo, initials, shown_photo) in enumerate(agents):
        email = f"photo-{number}@example.com"
        with loop.findesk.db.transaction() as session:
            agent_id = create_agent(
                session, email=email, name=f"Person {number}", alias=alias, photo_url=photo
            ).id
        with loop.findesk.fin_world().api.http as fin:
            body = {
                "conversation_id": cid,
                "message_type": "comment",
                "body": f"<p>Hello from {number}</p>",
                "author": {"id": agent_id, "user_type": "agent"},
                "visibility": "public",
                "created_at": "2026-05-03T10:15:00Z",
                "object_id": f"photo-reply-{number}",
                "attachments": [],
            }
            assert fin.post("/messages", json=body).status_code == 201
        loop.emulator.app.state.engine.sync(cid)
        last = ana.get(f"/api/conversations/{cid}").json()["messages"][-1]
        assert (last["name"], last["initials"]) == (alias, initials)
        assert last["photo_url"] == shown_photo
