"""Alert emails through a real SMTP server on loopback (``support.smtp``): handover and
assignment emails to the agents who asked for them, their content (subject, link, no HTML
injection), retries across an SMTP outage without a lost or doubled email, the digest, and
reply continuity (an unread reply is emailed once after the delay; a read one is not).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select, update
from support.alerts import agent_client
from support.fin import World
from support.receiver import eventually
from support.server import LiveServer, database_url
from support.smtp import Mail, SmtpServer

from findesk.kit.timeutil import isoformat, utcnow
from findesk.notifier.models import OutboxEvent

DELAY_MINUTES = 0.05  # reply continuity: 3 seconds
HOSTILE_TITLE = 'Refund <script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request, tmp_path_factory, smtp) -> Iterator[LiveServer]:
    url = database_url(request.param, request, tmp_path_factory.mktemp("db"))
    settings = {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port,
        "smtp_starttls": False,
        "smtp_from": "alerts@findesk.test",
        "reply_email_delay_minutes": DELAY_MINUTES,
        "reply_email_link_url": "https://help.example.com/messenger?c={conversation_id}",
        "notifier_backoff_base_seconds": 0.05,
        "notifier_backoff_max_seconds": 0.2,
        "notifier_poll_seconds": 0.2,
        "csat_enabled": False,
    }
    live = LiveServer(url, settings).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def fin(server: LiveServer) -> World:
    return server.fin_world()


@pytest.fixture
def ada(server: LiveServer) -> Iterator[httpx.Client]:
    with agent_client(server, "Ada Lovelace") as client:
        yield client


@pytest.fixture
def bob(server: LiveServer) -> Iterator[httpx.Client]:
    with agent_client(server, "Bob Builder") as client:
        yield client


def about(smtp: SmtpServer, to: str, conversation_id: str) -> list[Mail]:
    return [m for m in smtp.to(to) if conversation_id in m.part("plain")]


def settled(server: LiveServer, kind: str) -> bool:
    """Every event of ``kind`` was delivered (sent, or found needless): none left to retry."""
    with server.db.read_session() as session:
        rows = session.scalars(select(OutboxEvent).where(OutboxEvent.kind == kind)).all()
        return bool(rows) and all(r.state == "delivered" for r in rows)


def handed_over(fin: World, title: str = HOSTILE_TITLE) -> str:
    conversation, _ = fin.conversation(assignee_id=fin.fin_agent_id, title=title)
    fin.hand_over(conversation["id"])
    return str(conversation["id"])


def test_handover_email_to_who_asked(server, fin, smtp, ada, bob) -> None:
    response = ada.put("/me/alerts", json={"email_handover": True, "email_assigned": True})
    assert response.status_code == 200, response.text
    assert ada.get("/me/alerts").json() == {
        "email_handover": True,
        "email_assigned": True,
        "digest_minutes": None,
    }
    conversation_id = handed_over(fin)
    link = f"{server.base_url}/inbox/conversations/{conversation_id}"
    assert smtp.wait_until(lambda s: bool(about(s, ada.email, conversation_id)))
    mail = about(smtp, ada.email, conversation_id)[0]
    assert mail.message["From"] == "alerts@findesk.test"
    assert mail.subject.startswith("Waiting for a human: Refund")
    html_part = mail.part("html")
    assert f'<a href="{link}">' in html_part
    assert "<script" not in html_part and "<img" not in html_part
    assert "&lt;script&gt;" in html_part
    assert link in mail.part("plain")
    # Bob did not ask for handovers (the default): his address gets nothing of it. The
    # assignment below is a barrier: it is queued after the handover.
    assert ada.patch(
        f"/conversations/{conversation_id}", json={"assignee_id": bob.agent_id}
    ).is_success
    assert smtp.wait_until(lambda s: bool(about(s, bob.email, conversation_id)))
    assert [m.subject.split(":")[0] for m in about(smtp, bob.email, conversation_id)] == [
        "Assigned to you"
    ]


def test_assignment_email(server, fin, smtp, ada, bob) -> None:
    conversation_id = handed_over(fin, title="Where is my parcel?")
    response = ada.patch(f"/conversations/{conversation_id}", json={"assignee_id": bob.agent_id})
    assert response.status_code == 200, response.text
    assert smtp.wait_until(lambda s: bool(about(s, bob.email, conversation_id)))
    mail = about(smtp, bob.email, conversation_id)[0]
    assert mail.subject == "Assigned to you: Where is my parcel?"
    assert "Assigned to you by Ada Lovelace." in mail.part("plain")
    assert f"{server.base_url}/inbox/conversations/{conversation_id}" in mail.part("html")


def test_smtp_outage_retried_without_loss_or_double(server, fin, smtp, ada, bob) -> None:
    conversation_id = handed_over(fin, title="Sent through an outage")
    smtp.refuse()
    try:
        before = smtp.attempts
        assert ada.patch(
            f"/conversations/{conversation_id}", json={"assignee_id": bob.agent_id}
        ).is_success
        assert smtp.wait_until(lambda s: s.attempts >= before + 3)
        assert about(smtp, bob.email, conversation_id) == []
    finally:
        smtp.refuse(False)
    assert smtp.wait_until(lambda s: bool(about(s, bob.email, conversation_id)))
    assert eventually(lambda: settled(server, "email"))
    assert len(about(smtp, bob.email, conversation_id)) == 1


def test_digest_gathers_the_slot_into_one_email(server, fin, smtp, ada, bob) -> None:
    assert bob.put("/me/alerts", json={"digest_minutes": 60}).is_success
    first = handed_over(fin, title="Digest one")
    second = handed_over(fin, title="Digest two")
    for conversation_id in (first, second):
        assert ada.patch(
            f"/conversations/{conversation_id}", json={"assignee_id": bob.agent_id}
        ).is_success
    with server.db.read_session() as session:
        rows = session.scalars(
            select(OutboxEvent).where(
                OutboxEvent.kind == "email", OutboxEvent.conversation_id.like("dg_%")
            )
        ).all()
        keys = {r.conversation_id for r in rows if r.state == "pending"}
        due = {r.next_attempt_at for r in rows if r.state == "pending"}
    assert len(keys) == 1 and len(due) == 1  # one digest, due when its hour ends
    assert all(d > utcnow() for d in due)
    assert smtp.to(bob.email) == []
    # The hour ends (the clock is moved, not waited for): one email with both.
    with server.db.transaction() as session:
        session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.conversation_id.in_(keys))
            .values(next_attempt_at=utcnow())
        )
    assert smtp.wait_until(lambda s: bool(s.to(bob.email)))
    mails = smtp.to(bob.email)
    assert [m.subject for m in mails] == ["findesk: 2 alerts"]
    assert first in mails[0].part("plain") and second in mails[0].part("plain")


def test_unread_reply_is_emailed_once_read_one_is_not(server, fin, smtp, ada) -> None:
    reader = fin.user(email=f"reader-{time.time_ns()}@example.com")
    away = fin.user(email=f"away-{time.time_ns()}@example.com")
    read_conversation, _ = fin.conversation(user=reader, title="Read it")
    unread_conversation, _ = fin.conversation(user=away, title="Gone for lunch")
    read_id, unread_id = str(read_conversation["id"]), str(unread_conversation["id"])
    for conversation_id in (unread_id, read_id):
        response = ada.post(
            f"/conversations/{conversation_id}/messages",
            json={"body": "<p>Your refund is <b>done</b><script>steal()</script></p>"},
        )
        assert response.status_code == 201, response.text
    # Fin tells findesk the reader has read the reply (its read receipt).
    fin.update(read_id, last_user_read_at=isoformat(utcnow()))

    assert smtp.wait_until(lambda s: bool(s.to(away["email"])), timeout=DELAY_MINUTES * 60 + 20)
    mail = smtp.to(away["email"])[0]
    assert mail.subject == "New reply: Gone for lunch"
    html_part = mail.part("html")
    assert "Your refund is <b>done</b>" in html_part and "<script" not in html_part
    assert f"https://help.example.com/messenger?c={unread_id}" in html_part
    assert "Your refund is done" in mail.part("plain")

    assert eventually(lambda: settled(server, "reply_email"), timeout=20)
    assert smtp.to(reader["email"]) == []  # read: never emailed
    assert len(smtp.to(away["email"])) == 1  # once per reply


def test_a_routed_handover_emails_its_team_and_the_agent_routing_chose(
    server, fin, smtp, ada
) -> None:
    """A handover routed to a team: the member routing gave it to is told it is theirs, the
    other members who asked hear of it, and those outside the team (Ada asked for every
    handover) do not."""
    admin = agent_client(server, "Ana Admin", role="admin")
    carol, dave, ed = (agent_client(server, name) for name in ("Carol", "Dave", "Ed"))
    for who in (ada, dave, ed):
        assert who.put("/me/alerts", json={"email_handover": True, "email_assigned": True})
    assert carol.put("/me/presence", json={"presence": "online"}).is_success
    team = admin.post(
        "/teams",
        json={"name": f"Billing {server.port}", "member_ids": [carol.agent_id, dave.agent_id]},
    )
    assert team.status_code == 201, team.text
    tag = f"billing-{server.port}"
    rule = admin.post(
        "/routing-rules",
        json={
            "name": "Billing to the billing team",
            "conditions": [{"field": "tag", "op": "is", "value": tag}],
            "actions": {"team_id": team.json()["id"]},
        },
    )
    assert rule.status_code == 201, rule.text

    conversation, _ = fin.conversation(assignee_id=fin.fin_agent_id, title="Double charge")
    conversation_id = str(conversation["id"])
    fin.update(conversation_id, tags=[tag])
    fin.hand_over(conversation_id)

    assert smtp.wait_until(
        lambda s: bool(
            about(s, carol.email, conversation_id) and about(s, dave.email, conversation_id)
        )
    )
    to_carol = about(smtp, carol.email, conversation_id)
    assert [m.subject for m in to_carol] == ["Assigned to you: Double charge"]
    assert "Fin handed it over" in to_carol[0].part("plain")
    to_dave = about(smtp, dave.email, conversation_id)
    assert [m.subject for m in to_dave] == ["Waiting for a human: Double charge"]
    assert "It is Carol's." in to_dave[0].part("plain")
    # Every email of this handover was queued in its transaction: none is for Ada or Ed.
    with server.db.read_session() as session:
        queued = session.scalars(select(OutboxEvent).where(OutboxEvent.kind == "email")).all()
    to = sorted(json.loads(e.payload)["to"] for e in queued if conversation_id in e.payload)
    assert to == sorted([carol.email, dave.email])


def test_the_digest_takes_a_whole_number_as_json_writes_it(ada) -> None:
    """JSON has one kind of number: 30.0 is 30 (as JSON Schema's integer says); true and "30"
    are not numbers of minutes."""
    assert ada.put("/me/alerts", json={"digest_minutes": 30.0}).status_code == 200
    assert ada.get("/me/alerts").json()["digest_minutes"] == 30
    for wrong in (True, "30", 30.5, 0, 1441):
        assert ada.put("/me/alerts", json={"digest_minutes": wrong}).status_code == 422, wrong
    assert ada.get("/me/alerts").json()["digest_minutes"] == 30
