"""The audit log from the command line: what the ``findesk`` commands record (as the CLI, with no
address, never a secret) and ``findesk audit list``, run for real against a SQLite file."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import select
from support.cli import Cli

from findesk.audit import service as audit
from findesk.audit.models import AuditEntry
from findesk.audit.service import AuditActor
from findesk.kit.db import Database


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(tmp_path_factory.mktemp("audit-cli") / "data")


def entries(cli: Cli, *args: str) -> list[dict[str, Any]]:
    listed = cli.json("audit", "list", "--limit", "10000", *args)["entries"]
    assert isinstance(listed, list)
    return listed


def test_cli_actions_are_recorded_as_the_cli_and_hold_no_secret(cli: Cli) -> None:
    email = f"ada.{uuid.uuid4().hex[:6]}@example.com"
    first_password, second_password = "first long password", "second long password"
    client = cli.json("clients", "create", "Fin production")
    revoked = cli.json("clients", "revoke", client["client_id"])
    assert revoked["revoked"] is True
    agent = cli.json(
        "agents", "create", email, "--name", "Ada", "--password-stdin", input=first_password
    )
    changed = cli.run("agents", "set-password", email, "--password-stdin", input=second_password)
    assert changed.returncode == 0, changed.stderr
    token = cli.json("agents", "token", email)["token"]

    listed = entries(cli)
    by_action = {(e["action"], e["target_id"]): e for e in listed}
    expected = [
        ("oauth_client.created", "oauth_client", client["client_id"], {"name": "Fin production"}),
        ("oauth_client.revoked", "oauth_client", client["client_id"], {"name": "Fin production"}),
        (
            "agent.created",
            "agent",
            agent["id"],
            {"email": email, "name": "Ada", "role": "agent", "can_sign_in": True},
        ),
        ("agent.password_set", "agent", agent["id"], {"email": email}),
    ]
    for action, target_type, target_id, detail in expected:
        entry = by_action[(action, target_id)]
        assert entry["target_type"] == target_type
        assert entry["detail"] == detail
    [issued] = [e for e in listed if e["action"] == "agent_token.issued"]
    assert issued["detail"] == {"agent_id": agent["id"], "agent_email": email}
    for entry in [issued, *(by_action[(a, t)] for a, _, t, _ in expected)]:
        assert entry["actor_kind"] == "cli"
        assert entry["actor_label"] == "cli"
        assert entry["actor_agent_id"] is None
        assert entry["address"] is None
        assert entry["at"].endswith("Z")
    # Newest first.
    assert [e["id"] for e in listed] == sorted((e["id"] for e in listed), reverse=True)
    assert listed[0]["action"] == "agent_token.issued"
    # The Fin bot seeded on first use is findesk's own doing.
    assert any(
        e["action"] == "agent.created" and e["actor_kind"] == "system" and e["detail"].get("bot")
        for e in listed
    )

    secrets = [client["client_secret"], first_password, second_password, token]
    table = cli.run("audit", "list")
    assert table.returncode == 0, table.stderr
    assert "agent_token.issued" in table.stdout and client["client_id"] in table.stdout
    stored = Database(cli.database_url)
    try:
        with stored.read_session() as session:
            every_row = json.dumps(
                [
                    {c.key: getattr(e, c.key) for c in AuditEntry.__table__.columns}
                    for e in session.scalars(select(AuditEntry))
                ],
                default=str,
            )
    finally:
        stored.dispose()
    for secret in secrets:
        assert secret not in json.dumps(listed)
        assert secret not in table.stdout
        assert secret not in every_row


def test_audit_list_filters_and_limits(cli: Cli) -> None:
    tag = uuid.uuid4().hex[:8]
    admin_email = f"root.{tag}@example.com"
    someone = AuditActor("agent", f"agt_{tag}", admin_email, "203.0.113.5")
    target = f"fcl_{tag}"
    cli.json("agents", "list")  # creates the database
    stored = Database(cli.database_url)
    try:
        with stored.transaction() as session:
            audit.record(session, someone, "oauth_client.created", "oauth_client", target, {})
            audit.record(session, someone, "oauth_client.revoked", "oauth_client", target, {})
            audit.record(session, audit.CLI, "agent.updated", "agent", f"agt_other_{tag}", {})
    finally:
        stored.dispose()

    def actions(*args: str) -> list[str]:
        return [e["action"] for e in entries(cli, *args)]

    assert actions("--target", target) == ["oauth_client.revoked", "oauth_client.created"]
    assert actions("--actor", admin_email.upper()) == [
        "oauth_client.revoked",
        "oauth_client.created",
    ]
    assert actions("--actor", someone.agent_id or "") == [
        "oauth_client.revoked",
        "oauth_client.created",
    ]
    assert actions("--actor", admin_email, "--action", "oauth_client.created") == [
        "oauth_client.created"
    ]
    [where] = entries(cli, "--target", target, "--limit", "1")
    assert where["action"] == "oauth_client.revoked" and where["address"] == "203.0.113.5"
    assert "agent.updated" in actions("--actor", "cli", "--since", "2000-01-01")
    assert "agent.updated" not in actions("--actor", "system")
    assert actions("--since", "2999-01-01T00:00:00+00:00") == []
    assert actions("--target", target, "--until", "2000-01-01") == []

    assert "--action must be one of" in cli.fails("audit", "list", "--action", "agent.exploded")
    assert "not-a-date" in cli.fails("audit", "list", "--since", "not-a-date")
