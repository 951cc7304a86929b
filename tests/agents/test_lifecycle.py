"""An agent's life: personal tokens listed and revoked, deactivation (which ends sessions and
tokens, sends open conversations back to the waiting queue and keeps history) and reactivation,
through the agent API, the admin pages and the services; on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from alembic import command
from inbox.web_support import PASSWORD, Person, Web, client, new_agent, parse_html, sign_in
from inbox.web_support import submit_login as submit_login_form
from sqlalchemy import func, select, text, update
from support.fin import World
from support.server import LiveServer, database_url

from findesk.agents import service as agents
from findesk.agents.models import Agent
from findesk.audit.models import AuditEntry
from findesk.audit.service import AuditActor
from findesk.auth import service as auth
from findesk.auth.models import AgentToken
from findesk.kit.db import Database
from findesk.kit.errors import Conflict, Invalid, Unauthorized
from findesk.kit.secrets import hash_secret
from findesk.migrations import alembic_config, upgrade
from findesk.notifier.models import OutboxEvent

PROBLEM_JSON = "application/problem+json"


# --- helpers ---------------------------------------------------------------------------------


def api(server: LiveServer, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.base_url}/api/v1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def issue(server: LiveServer, agent_id: str, label: str | None = None) -> tuple[str, str]:
    """A personal token for the agent: (its public id, the secret)."""
    with server.db.transaction() as session:
        agent = session.get(Agent, agent_id)
        assert agent is not None
        row, secret = auth.issue_agent_token(session, agent, label=label)
        return row.id, secret


def person(server: LiveServer, name: str, role: str = "agent") -> tuple[Person, str]:
    """A human agent who can sign in (with ``PASSWORD``) and a personal token of theirs."""
    someone = new_agent(server, name, role=role)
    return someone, issue(server, someone.id)[1]


def works(server: LiveServer, token: str) -> bool:
    response = httpx.get(
        f"{server.base_url}/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


def signs_in(server: LiveServer, email: str, password: str = PASSWORD) -> bool:
    with client(server) as http:
        response = submit_login_form(http, email, password)
    assert response.status_code in (303, 401), response.text
    return response.status_code == 303


def audit_rows(server: LiveServer, action: str, target_id: str | None = None) -> list[AuditEntry]:
    with server.db.read_session() as session:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        if target_id is not None:
            query = query.where(AuditEntry.target_id == target_id)
        return list(session.scalars(query))


def outbox_count(server: LiveServer, conversation_id: str) -> int:
    with server.db.read_session() as session:
        query = select(func.count()).select_from(OutboxEvent)
        return int(session.scalar(query.where(OutboxEvent.conversation_id == conversation_id)))


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


@pytest.fixture(scope="module")
def world(server: LiveServer) -> World:
    return server.fin_world()


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    someone, token = person(server, "Ada Admin", role="admin")
    with api(server, token) as http:
        http.agent_id = someone.id  # type: ignore[attr-defined]
        yield http


# --- deactivation through the agent API --------------------------------------------------------


def test_deactivating_ends_sessions_and_tokens_and_sends_open_conversations_to_the_queue(
    server: LiveServer, world: World, admin: httpx.Client
) -> None:
    target, token = person(server, "Tom Target")
    _, second_token = issue(server, target.id, "laptop script")
    web = sign_in(server, target)
    owned, _ = world.conversation(title="Owned by Tom")
    closed, _ = world.conversation(title="Resolved by Tom")
    with api(server, token) as tom:
        for conversation in (owned, closed):
            world.hand_over(conversation["id"])
            taken = tom.post(f"/conversations/{conversation['id']}/take-over")
            assert taken.status_code == 200, taken.text
        reply = tom.post(f"/conversations/{owned['id']}/messages", json={"body": "<p>On it</p>"})
        assert reply.status_code == 201, reply.text
        resolved = tom.patch(f"/conversations/{closed['id']}", json={"status": "resolved"})
        assert resolved.status_code == 200, resolved.text
    events_before = outbox_count(server, owned["id"])

    response = admin.post(f"/agents/{target.id}/deactivate")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["agent"]["id"] == target.id and body["agent"]["active"] is False
    assert body["tokens_revoked"] == 2
    assert body["unassigned_conversation_ids"] == [owned["id"]]
    # Signed out everywhere, tokens dead, and no way back in.
    page = web.get("/inbox")
    assert page.status_code == 303 and urlsplit(page.headers["location"]).path == "/login"
    web.close()
    assert not works(server, token) and not works(server, second_token)
    assert not signs_in(server, target.email)
    # The open conversation waits for a human again, said by the admin, and Fin hears of it.
    got = admin.get(f"/conversations/{owned['id']}").json()
    assert got["conversation"]["owner"] == "waiting"
    assert got["conversation"]["assignee"] is None
    # Its messages are kept, with their author.
    [tom_said] = [m for m in got["messages"] if m["author"].get("id") == target.id]
    assert "On it" in tom_said["body"]
    last = admin.get(f"/conversations/{owned['id']}/history").json()["items"][-1]
    assert (last["from_value"], last["to_value"]) == (target.id, None)
    assert last["actor"] == "agent" and last["actor_agent"]["id"] == admin.agent_id  # type: ignore[attr-defined]
    assert outbox_count(server, owned["id"]) > events_before
    # A resolved conversation keeps its owner: its history stays as it was.
    kept = admin.get(f"/conversations/{closed['id']}").json()["conversation"]
    assert kept["assignee"]["id"] == target.id
    # Nobody can give the inactive agent anything; it is no longer listed.
    assigned = admin.patch(f"/conversations/{owned['id']}", json={"assignee_id": target.id})
    assert_problem(assigned, 404)
    assert target.id not in [a["id"] for a in admin.get("/agents").json()]
    # Audited: the deactivation by the admin, and each token it revoked.
    [entry] = audit_rows(server, "agent.deactivated", target.id)
    assert entry.actor_agent_id == admin.agent_id  # type: ignore[attr-defined]
    assert entry.detail["tokens_revoked"] == 2
    assert entry.detail["conversations_unassigned"] == 1
    revoked = [
        e for e in audit_rows(server, "agent_token.revoked") if e.detail["agent_id"] == target.id
    ]
    assert len(revoked) == 2
    assert {e.detail["reason"] for e in revoked} == {"agent deactivated"}

    # Deactivating again changes nothing and records nothing.
    again = admin.post(f"/agents/{target.id}/deactivate")
    assert again.status_code == 200 and again.json()["tokens_revoked"] == 0
    assert len(audit_rows(server, "agent.deactivated", target.id)) == 1

    # The end user writes again in the resolved one: it reopens waiting for a human, since its
    # owner can no longer answer.
    world.user_says(closed["id"], closed["user"]["id"], "<p>It happened again</p>")
    reopened = admin.get(f"/conversations/{closed['id']}").json()["conversation"]
    assert reopened["status"] == "open" and reopened["owner"] == "waiting"
    last = admin.get(f"/conversations/{closed['id']}/history").json()["items"][-1]
    assert (last["kind"], last["actor"], last["to_value"]) == ("assigned", "system", None)

    # Reactivated: signs in again with the same password; the old tokens stay revoked.
    back = admin.post(f"/agents/{target.id}/reactivate")
    assert back.status_code == 200, back.text
    assert back.json()["active"] is True
    assert signs_in(server, target.email)
    assert not works(server, token) and not works(server, second_token)
    assert works(server, issue(server, target.id)[1])
    [entry] = audit_rows(server, "agent.reactivated", target.id)
    assert entry.actor_agent_id == admin.agent_id  # type: ignore[attr-defined]


def test_the_bot_and_unknown_agents_cannot_be_deactivated(
    server: LiveServer, admin: httpx.Client
) -> None:
    refused = assert_problem(admin.post(f"/agents/{server.fin_agent_id}/deactivate"), 422)
    assert "Fin" in refused["detail"]
    with server.db.read_session() as session:
        bot = session.get(Agent, server.fin_agent_id)
        assert bot is not None and bot.active
    assert_problem(admin.post("/agents/agt_doesnotexist/deactivate"), 404)
    assert_problem(admin.post("/agents/agt_doesnotexist/reactivate"), 404)
    assert_problem(admin.get("/agents/agt_doesnotexist/tokens"), 404)


def test_only_admins_manage_agents_and_tokens(server: LiveServer, admin: httpx.Client) -> None:
    plain, plain_token = person(server, "Pia Plain")
    victim, victim_token = person(server, "Val Victim")
    token_id = admin.get(f"/agents/{victim.id}/tokens").json()[0]["id"]
    with api(server, plain_token) as http:
        for method, path in [
            ("POST", f"/agents/{victim.id}/deactivate"),
            ("POST", f"/agents/{victim.id}/reactivate"),
            ("GET", f"/agents/{victim.id}/tokens"),
            ("DELETE", f"/agents/{victim.id}/tokens/{token_id}"),
            ("POST", f"/agents/{plain.id}/deactivate"),  # not even oneself
        ]:
            assert_problem(http.request(method, path), 403)
    assert works(server, victim_token) and works(server, plain_token)
    assert signs_in(server, victim.email)


# --- personal tokens -----------------------------------------------------------------------


def test_an_admin_lists_an_agents_tokens_and_revokes_one(
    server: LiveServer, admin: httpx.Client
) -> None:
    someone = new_agent(server, "Kim Keys")
    first_id, first = issue(server, someone.id, "CI deploys")
    second_id, second = issue(server, someone.id)
    other_id, _ = issue(server, admin.agent_id)  # type: ignore[attr-defined]
    assert works(server, first)

    listing = admin.get(f"/agents/{someone.id}/tokens")

    assert listing.status_code == 200, listing.text
    tokens = listing.json()
    assert [t["id"] for t in tokens] == [second_id, first_id]  # newest first
    assert all(t["id"].startswith("tok_") for t in tokens)
    by_id = {t["id"]: t for t in tokens}
    assert by_id[first_id]["label"] == "CI deploys" and by_id[second_id]["label"] is None
    assert by_id[first_id]["last_used_at"] is not None  # used above
    assert by_id[second_id]["last_used_at"] is None
    assert all(t["revoked_at"] is None and t["created_at"].endswith("Z") for t in tokens)
    for secret in (first, second):  # never the secret, nor what it is stored as
        assert secret not in listing.text and secret.split("_", 1)[1] not in listing.text
        assert hash_secret(secret) not in listing.text

    revoked = admin.delete(f"/agents/{someone.id}/tokens/{first_id}")

    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["id"] == first_id and revoked.json()["revoked_at"] is not None
    assert not works(server, first) and works(server, second)
    [entry] = audit_rows(server, "agent_token.revoked", first_id)
    assert entry.actor_agent_id == admin.agent_id  # type: ignore[attr-defined]
    assert entry.detail == {"agent_id": someone.id, "agent_email": someone.email}
    # Again: nothing more happens; another agent's token is not this agent's.
    assert admin.delete(f"/agents/{someone.id}/tokens/{first_id}").status_code == 200
    assert len(audit_rows(server, "agent_token.revoked", first_id)) == 1
    assert_problem(admin.delete(f"/agents/{someone.id}/tokens/{other_id}"), 404)
    assert_problem(admin.delete(f"/agents/{someone.id}/tokens/tok_doesnotexist"), 404)


def test_last_used_is_written_at_most_once_an_hour(server: LiveServer) -> None:
    someone = new_agent(server, "Lu Lastused")
    token_id, token = issue(server, someone.id)

    def last_used() -> Any:
        with server.db.read_session() as session:
            return session.scalar(select(AgentToken.last_used_at).where(AgentToken.id == token_id))

    assert last_used() is None
    assert works(server, token)
    first = last_used()
    assert first is not None
    for _ in range(3):
        assert works(server, token)
    assert last_used() == first  # not a write per call


def test_a_new_password_revokes_the_agents_tokens(server: LiveServer) -> None:
    someone = new_agent(server, "Pat Password")
    token_id, token = issue(server, someone.id)
    assert works(server, token)
    by = AuditActor.cli()
    with server.db.transaction() as session:
        agent = session.get(Agent, someone.id)
        assert agent is not None
        agents.set_password(session, agent, "a brand new passphrase", by=by)
    assert not works(server, token)
    [entry] = audit_rows(server, "agent_token.revoked", token_id)
    assert entry.actor_kind == "cli" and entry.detail["reason"] == "password changed"
    assert works(server, issue(server, someone.id)[1])  # new tokens work


# --- the admin pages -----------------------------------------------------------------------


def agent_page(web: Web, agent_id: str) -> Any:
    return web.page(f"/inbox/admin/agents/{agent_id}")


def follow(web: Web, response: httpx.Response) -> tuple[str, dict[str, str], Any]:
    """Where the form sent the agent, what the page said there ("notice", "error"), the page."""
    assert response.status_code == 303, response.text
    location = urlsplit(response.headers["location"])
    page = parse_html(web.get(response.headers["location"]).text)
    said = {
        kind: node.text
        for kind, css in (("notice", "notice"), ("error", "error"))
        if (node := page.first("p", css)) is not None
    }
    return location.path, said, page


def test_the_admin_pages_list_tokens_revoke_one_and_deactivate_after_confirmation(
    server: LiveServer, world: World
) -> None:
    boss = new_agent(server, "Bo Boss", role="admin")
    web = sign_in(server, boss)
    target = new_agent(server, "Ty Target")
    token_id, token = issue(server, target.id, "zapier")
    other_id, other = issue(server, target.id)
    conversation, _ = world.conversation(title="Ty's")
    with api(server, other) as ty:
        world.hand_over(conversation["id"])
        assert ty.post(f"/conversations/{conversation['id']}/take-over").status_code == 200

    admin_page = web.page("/inbox/admin")
    assert admin_page.first("a", href=f"/inbox/admin/agents/{target.id}") is not None
    page = agent_page(web, target.id)
    text = page.text
    assert token_id in text and other_id in text and "zapier" in text
    assert token not in web.get(f"/inbox/admin/agents/{target.id}").text
    # Deactivating is behind a second step that says what it does.
    zone = page.find("details", "danger-zone")
    form = zone.find("form", action=f"/inbox/admin/agents/{target.id}/deactivate")
    assert "1 open conversation" in zone.text and "2 personal tokens" in zone.text
    assert form.find("input", name="csrf_token").attrs["value"] == web.csrf

    revoke = f"/inbox/admin/agents/{target.id}/tokens/{token_id}/revoke"
    assert page.first("form", action=revoke) is not None
    path, query, _ = follow(web, web.post(revoke))
    assert path == f"/inbox/admin/agents/{target.id}" and "notice" in query
    assert not works(server, token) and works(server, other)

    path, query, after = follow(web, web.post(f"/inbox/admin/agents/{target.id}/deactivate"))
    assert path == f"/inbox/admin/agents/{target.id}" and "notice" in query, query
    assert not works(server, other)
    assert not signs_in(server, target.email)
    assert after.first("form", action=f"/inbox/admin/agents/{target.id}/reactivate") is not None
    with server.db.read_session() as session:
        agent = session.get(Agent, target.id)
        assert agent is not None and not agent.active
    [entry] = audit_rows(server, "agent.deactivated", target.id)
    assert entry.actor_agent_id == boss.id and entry.address == "127.0.0.1"

    path, query, _ = follow(web, web.post(f"/inbox/admin/agents/{target.id}/reactivate"))
    assert "notice" in query
    assert signs_in(server, target.email)

    # The bot is refused with a clear reason, on the page and on submitting.
    bot_page = agent_page(web, server.fin_agent_id)
    assert (
        bot_page.first("form", action=f"/inbox/admin/agents/{server.fin_agent_id}/deactivate")
        is None
    )
    _, query, _ = follow(web, web.post(f"/inbox/admin/agents/{server.fin_agent_id}/deactivate"))
    assert "Fin" in query["error"]
    assert web.get("/inbox/admin/agents/agt_doesnotexist").status_code == 404
    web.close()


# --- the rules, on a database of their own ----------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_last_active_admin_and_the_bot_cannot_be_deactivated(
    backend: str, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    url = database_url(backend, request, tmp_path)
    upgrade(url)
    db = Database(url)
    try:
        with db.transaction() as session:
            bot = agents.ensure_fin_agent(session, "fin@findesk.invalid")
            first = agents.create_agent(
                session, email="first@example.com", name="First", role="admin", password=PASSWORD
            )
            plain = agents.create_agent(session, email="plain@example.com", name="Plain")
            ids = bot.id, first.id, plain.id
        bot_id, first_id, plain_id = ids
        with pytest.raises(Conflict, match="last active administrator"), db.transaction() as s:
            agents.deactivate_agent(s, first_id)
        with pytest.raises(Invalid, match="Fin"), db.transaction() as session:
            agents.deactivate_agent(session, bot_id)
        with db.transaction() as session:  # an agent who is not an admin: fine
            agents.deactivate_agent(session, plain_id)
        with db.transaction() as session:
            second = agents.create_agent(
                session, email="second@example.com", name="Second", role="admin"
            )
            second_id = second.id
            assert agents.has_active_admin(session)
        with db.transaction() as session:  # with another admin, the first may go
            agents.deactivate_agent(session, first_id)
        with pytest.raises(Conflict, match="last active administrator"), db.transaction() as s:
            agents.deactivate_agent(s, second_id)
        with db.transaction() as session:
            session.execute(update(Agent).where(Agent.id == second_id).values(active=False))
            assert not agents.has_active_admin(session)
    finally:
        db.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_tokens_issued_before_the_upgrade_get_an_id_and_keep_working(
    backend: str, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    url = database_url(backend, request, tmp_path)
    command.upgrade(alembic_config(url), "0007")
    secrets = ["fpt_issued-before-the-upgrade-1", "fpt_issued-before-the-upgrade-2"]
    db = Database(url)
    try:
        with db.transaction() as session:
            session.execute(
                text(
                    "INSERT INTO agents (id, email, name, is_bot, role, active, created_at, "
                    "updated_at) VALUES ('agt_old', 'old@example.com', 'Old', false, 'agent', "
                    "true, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
            for secret in secrets:
                session.execute(
                    text(
                        "INSERT INTO agent_tokens (token_hash, agent_id, created_at) "
                        "VALUES (:h, 'agt_old', CURRENT_TIMESTAMP)"
                    ),
                    {"h": hash_secret(secret)},
                )
        upgrade(url)
        with db.transaction() as session:
            rows = [auth.check_agent_token(session, secret) for secret in secrets]
            assert all(r.id.startswith("tok_") and len(r.id) == 24 for r in rows)
            assert rows[0].id != rows[1].id
            assert [r.label for r in rows] == [None, None]
            auth.revoke_agent_token(session, rows[0].id)
        with db.read_session() as session, pytest.raises(Unauthorized):
            auth.check_agent_token(session, secrets[0])
    finally:
        db.dispose()
