"""The audit log of administrative actions, against a live server on SQLite and on PostgreSQL:
what the admin pages record (who, when, from where, about what, never a secret), the audit page
(admins only, filters, older pages), and that the log outlives the live feed's purge."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from inbox.web_support import (
    PASSWORD,
    Node,
    Person,
    Web,
    client,
    new_agent,
    parse_html,
    sign_in,
    start_server,
    unique,
)
from sqlalchemy import func, select
from support.server import LiveServer

from findesk.agents.repository import get_by_email
from findesk.agents.service import create_agent, set_password
from findesk.audit import service as audit
from findesk.audit.models import AuditEntry
from findesk.audit.service import AuditActor, AuditFilter
from findesk.auth.service import create_agent_token, create_client
from findesk.kit.actor import SYSTEM as SYSTEM_ACTOR
from findesk.kit.timeutil import as_utc, utcnow
from findesk.live import service as live
from findesk.live.models import Activity

COLUMNS = (
    "id",
    "at",
    "action",
    "actor_kind",
    "actor_agent_id",
    "actor_label",
    "address",
    "target_type",
    "target_id",
    "detail",
)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live_server = start_server(request, request.param, tmp_path_factory.mktemp("audit"))
    yield live_server
    live_server.stop()


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Person:
    return new_agent(server, "Ada Admin", role="admin")


@pytest.fixture(scope="module")
def admin_web(server: LiveServer, admin: Person) -> Iterator[Web]:
    web = sign_in(server, admin)
    yield web
    web.close()


# --- helpers ---------------------------------------------------------------------------------


def rows(server: LiveServer, **where: str) -> list[dict[str, Any]]:
    """Audit rows, newest first, as plain dicts of every column."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc())
    for column, value in where.items():
        query = query.where(getattr(AuditEntry, column) == value)
    with server.db.read_session() as session:
        return [{c: getattr(e, c) for c in COLUMNS} for e in session.scalars(query)]


def everything_logged(server: LiveServer) -> str:
    """The whole audit table, serialised: where a leaked secret would show."""
    return json.dumps(rows(server), default=str)


def count(server: LiveServer) -> int:
    with server.db.read_session() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def follow(web: Web, response: httpx.Response) -> Node:
    assert response.status_code == 303, (response.status_code, response.text[:300])
    return web.page(response.headers["location"])


def listed(page: Node) -> list[Node]:
    return page.find_all("tr", "audit-entry")


def audit_page(web: Web, **params: str) -> Node:
    return web.page("/inbox/admin/audit", **params)


# --- what the admin pages record ----------------------------------------------------------------


def test_an_admin_adding_an_agent_is_recorded_with_who_when_where_and_what(
    server: LiveServer, admin: Person, admin_web: Web
) -> None:
    email = f"{unique('cleo')}@example.com"
    before = utcnow()
    response = admin_web.post(
        "/inbox/admin/agents",
        {"email": email, "name": "Cleo New", "password": PASSWORD, "role": "admin"},
    )
    assert response.status_code == 303, response.text
    after = utcnow()
    with server.db.read_session() as session:
        created = get_by_email(session, email)
        assert created is not None
        agent_id = created.id

    [entry] = rows(server, target_id=agent_id)
    assert entry["action"] == "agent.created"
    assert entry["actor_kind"] == "agent"
    assert entry["actor_agent_id"] == admin.id
    assert entry["actor_label"] == admin.email
    assert entry["address"] == "127.0.0.1"
    assert entry["target_type"] == "agent"
    assert before - timedelta(seconds=1) <= as_utc(entry["at"]) <= after + timedelta(seconds=1)
    assert entry["detail"] == {
        "email": email,
        "name": "Cleo New",
        "role": "admin",
        "can_sign_in": True,
    }
    assert PASSWORD not in everything_logged(server)

    # The audit page shows it as a person reads it: no JSON.
    [row] = listed(audit_page(admin_web, target=agent_id))
    cells = [td.text for td in row.find_all("td")]
    assert admin.email in cells[1]
    assert cells[2] == "127.0.0.1"
    assert cells[3] == "Agent created"
    assert agent_id in cells[4]
    assert "Email" in cells[5] and email in cells[5] and "Can sign in yes" in cells[5]
    assert "{" not in row.text and '"' not in row.text
    assert row.find("time").attrs["datetime"].startswith(before.strftime("%Y-%m-%d"))


def test_creating_and_revoking_a_client_in_the_admin_page_is_recorded_without_its_secret(
    server: LiveServer, admin: Person, admin_web: Web
) -> None:
    name = unique("Fin production")
    created = admin_web.post("/inbox/admin/clients", {"name": name})
    assert created.status_code == 200, created.text
    client_id, secret = (
        code.text for code in parse_html(created.text).find("div", "secret").find_all("code")
    )
    revoke = admin_web.post(f"/inbox/admin/clients/{client_id}/revoke")
    assert revoke.status_code == 303, revoke.text
    again = admin_web.post(f"/inbox/admin/clients/{client_id}/revoke")  # already revoked
    assert again.status_code == 303, again.text

    entries = rows(server, target_id=client_id)
    assert [e["action"] for e in entries] == ["oauth_client.revoked", "oauth_client.created"]
    for entry in entries:
        assert entry["target_type"] == "oauth_client"
        assert (entry["actor_kind"], entry["actor_agent_id"]) == ("agent", admin.id)
        assert entry["actor_label"] == admin.email
        assert entry["address"] == "127.0.0.1"
        assert entry["detail"] == {"name": name}
    assert secret not in everything_logged(server)

    page = audit_page(admin_web, target=client_id)
    assert [r.attrs["data-action"] for r in listed(page)] == [
        "oauth_client.revoked",
        "oauth_client.created",
    ]
    assert secret not in admin_web.get("/inbox/admin/audit").text


def test_a_refused_or_rolled_back_change_records_nothing(
    server: LiveServer, admin: Person, admin_web: Web
) -> None:
    taken = f"{unique('dup')}@example.com"
    new_agent_form = {"email": taken, "name": "Dee", "password": PASSWORD}
    assert admin_web.post("/inbox/admin/agents", new_agent_form).status_code == 303
    before = count(server)
    for form in (
        new_agent_form,  # exists already
        {"email": f"{unique('e')}@example.com", "name": "Eve", "password": "short"},
        {"email": "not-an-email", "name": "Fay", "password": PASSWORD},
    ):
        page = follow(admin_web, admin_web.post("/inbox/admin/agents", form))
        assert page.first("p", "error") is not None, form
    assert admin_web.post("/inbox/admin/clients/fcl_doesnotexist/revoke").status_code == 404
    assert count(server) == before

    # The entry lives in the change's transaction: when that rolls back, so does the entry.
    email = f"{unique('gone')}@example.com"
    with pytest.raises(RuntimeError), server.db.transaction() as session:
        create_agent(session, email=email, name="Gone", by=AuditActor.cli())
        create_client(session, "gone", by=audit.CLI)
        raise RuntimeError("the request failed after the change")
    assert count(server) == before


def test_password_and_token_actions_name_the_agent_never_the_secret(server: LiveServer) -> None:
    person = new_agent(server, "Hal Helper")
    new_password = "another long passphrase"
    actor = AuditActor("agent", "agt_someadmin", "root@example.com", "10.1.2.3")
    with server.db.transaction() as session:
        agent = get_by_email(session, person.email)
        assert agent is not None
        set_password(session, agent, new_password, by=actor)
        token = create_agent_token(session, agent, by=actor)
    [password_set] = rows(server, target_id=person.id, action="agent.password_set")
    assert password_set["detail"] == {"email": person.email}
    assert (password_set["actor_label"], password_set["address"]) == (
        "root@example.com",
        "10.1.2.3",
    )
    [issued] = rows(server, action="agent_token.issued", actor_agent_id="agt_someadmin")
    assert issued["target_type"] == "agent_token"
    assert issued["detail"] == {"agent_id": person.id, "agent_email": person.email}
    logged = everything_logged(server)
    assert token not in logged and token.split("_", 1)[1] not in logged
    assert new_password not in logged and PASSWORD not in logged
    # Seeding without an actor is findesk's own doing.
    [created] = rows(server, target_id=person.id, action="agent.created")
    assert (created["actor_kind"], created["actor_label"], created["address"]) == (
        "system",
        "system",
        None,
    )

    # A secret in an entry's detail is refused outright.
    for detail in ({"password": "x"}, {"client_secret": "x"}, {"meta": {"token": "x"}}):
        with pytest.raises(ValueError, match="secret"), server.db.transaction() as session:
            audit.record(session, actor, "agent.updated", "agent", person.id, detail)


# --- the audit page ---------------------------------------------------------------------------


def test_the_audit_page_is_for_admins_only(
    server: LiveServer, admin_web: Web, admin: Person
) -> None:
    agent = sign_in(server, new_agent(server, "Bob Agent"))
    try:
        refused = agent.get("/inbox/admin/audit")
        assert refused.status_code == 403
        assert "audit-entry" not in refused.text and admin.email not in refused.text
    finally:
        agent.close()

    with client(server) as stranger:
        response = stranger.get("/inbox/admin/audit", params={"action": "agent.created"})
        assert response.status_code == 303
        location = urlsplit(response.headers["location"])
        assert location.path == "/login"
        assert parse_qs(location.query)["next"] == ["/inbox/admin/audit?action=agent.created"]

    # Admins reach it from the admin page; it keeps to the strict policy (no inline script).
    admin_page = admin_web.page("/inbox/admin")
    assert admin_page.first("a", href="/inbox/admin/audit") is not None
    response = admin_web.get("/inbox/admin/audit")
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "style-src 'self'" in response.headers["content-security-policy"]
    assert "no-store" in response.headers["cache-control"]
    page = parse_html(response.text)
    sources = [s.attrs.get("src") for s in page.find_all("script")]
    assert "/static/inbox.js" in sources
    assert all(src and src.startswith("/static/") for src in sources)
    assert page.find_all("style") == []
    assert not re.search(r"\sstyle=|\son[a-z]+=", response.text)


def test_the_filters_narrow_the_list_and_older_pages_continue_it(
    server: LiveServer, admin_web: Web
) -> None:
    tag = unique("filter")
    someone = AuditActor("agent", f"agt_{tag}", f"{tag}@example.com", "192.0.2.9")
    target = f"agt_target_{tag}"
    with server.db.transaction() as session:
        for i in range(53):
            audit.record(session, someone, "agent.updated", "agent", target, {"step": i})
        audit.record(session, audit.CLI, "agent.deactivated", "agent", target, {})
    today = utcnow().strftime("%Y-%m-%d")
    tomorrow = (utcnow() + timedelta(days=1)).strftime("%Y-%m-%d")
    yesterday = (utcnow() - timedelta(days=1)).strftime("%Y-%m-%d")

    def actions(**params: str) -> list[str]:
        return [r.attrs["data-action"] for r in listed(audit_page(admin_web, **params))]

    assert actions(target=target, action="agent.deactivated") == ["agent.deactivated"]
    assert actions(target=target, actor="cli") == ["agent.deactivated"]
    assert actions(target=target, actor="system") == []
    assert actions(target=target, actor=someone.agent_id or "") == ["agent.updated"] * 50
    assert len(actions(actor=f"{tag}@EXAMPLE.com")) == 50  # an email, as the CLI takes it
    assert actions(target=target, since=tomorrow) == []
    assert actions(target=target, until=yesterday) == []
    assert len(actions(target=target, since=today, until=today)) == 50
    assert actions(target=f"{target}-other") == []

    # The actor select offers the agents seen in the log, and keeps the choice.
    page = audit_page(admin_web, actor=someone.agent_id or "", target=target)
    chosen = page.find("select", name="actor").find("option", selected="")
    assert chosen.attrs["value"] == someone.agent_id and chosen.text == someone.label
    assert page.find("input", name="target").attrs["value"] == target

    # Newest first, 50 a page; "Older entries" keeps the filters and goes on with no overlap.
    first = audit_page(admin_web, target=target)
    first_ids = [int(r.attrs["data-entry-id"]) for r in listed(first)]
    assert len(first_ids) == 50 and first_ids == sorted(first_ids, reverse=True)
    assert listed(first)[0].attrs["data-action"] == "agent.deactivated"
    older = first.find("a", "older").attrs["href"]
    assert f"target={target}" in older
    second = admin_web.page(older)
    second_ids = [int(r.attrs["data-entry-id"]) for r in listed(second)]
    assert len(second_ids) == 4 and max(second_ids) < min(first_ids)
    assert all(a.text != "Older entries" for a in second.find_all("a", "older"))
    # Details are read as text: the step number, labelled.
    assert "Step 0" in listed(second)[-1].text

    # A bad date is said, not a crash; the other filters still apply.
    response = admin_web.get("/inbox/admin/audit", since="yesterday", target=target)
    assert response.status_code == 200
    bad = parse_html(response.text)
    assert "yesterday" in bad.find("p", "error").text
    assert len(listed(bad)) == 50


def test_the_listing_filters_on_exact_times_and_pages_by_id(server: LiveServer) -> None:
    tag = unique("times")
    with server.db.transaction() as session:
        first = audit.record(session, audit.CLI, "setting.changed", "setting", tag, {"n": 1})
        session.flush()
        first_id, first_at = first.id, as_utc(first.at)
        for n in (2, 3):
            audit.record(session, audit.CLI, "setting.changed", "setting", tag, {"n": n})
    with server.db.read_session() as session:
        everything = audit.list_entries(session, AuditFilter(target_id=tag), limit=2)
        assert [e.detail["n"] for e in everything.entries] == [3, 2]
        assert everything.next_before is not None
        rest = audit.list_entries(
            session, AuditFilter(target_id=tag), before=everything.next_before, limit=2
        )
        assert [e.id for e in rest.entries] == [first_id] and rest.next_before is None
        up_to_first = AuditFilter(target_id=tag, until=first_at + timedelta(microseconds=1))
        assert first_id in [e.id for e in audit.list_entries(session, up_to_first).entries]
        after = AuditFilter(target_id=tag, since=utcnow() + timedelta(seconds=5))
        assert audit.list_entries(session, after).entries == []


# --- retention ---------------------------------------------------------------------------------


def test_audit_entries_survive_the_live_feed_purge(server: LiveServer, admin_web: Web) -> None:
    email = f"{unique('kept')}@example.com"
    form = {"email": email, "name": "Kept", "password": PASSWORD}
    assert admin_web.post("/inbox/admin/agents", form).status_code == 303
    with server.db.transaction() as session:
        live.record(session, "conv_purged", "message", SYSTEM_ACTOR, None)
    logged = rows(server)
    assert any(e["detail"].get("email") == email for e in logged)

    with server.db.transaction() as session:
        purged = live.purge(session, utcnow() + timedelta(days=3650))
    assert purged >= 1
    with server.db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(Activity)) == 0
    assert rows(server) == logged
