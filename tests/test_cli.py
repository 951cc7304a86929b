"""The ``findesk`` console script, run for real in a subprocess against a SQLite file, with a live
server on the same database to prove that what the CLI prints works."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
from support.cli import Cli
from support.server import LiveServer


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(tmp_path_factory.mktemp("cli") / "data")


@pytest.fixture(scope="module")
def live(cli: Cli) -> Iterator[LiveServer]:
    """A server on the CLI's SQLite database (the CLI creates it on first use)."""
    cli.json("agents", "list")  # migrates and seeds, so the server and CLI share one schema
    server = LiveServer(cli.database_url).start()
    yield server
    server.stop()


def get_token(live: LiveServer, client_id: str, secret: str) -> httpx.Response:
    return httpx.post(
        f"{live.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        timeout=30,
    )


def database_bytes(cli: Cli) -> bytes:
    """The SQLite file and its WAL (recent writes may not be checkpointed into the main file)."""
    return b"".join(
        path.read_bytes()
        for path in sorted(cli.data_dir.iterdir())
        if path.name.startswith("findesk.db")
    )


# --- OAuth clients ---------------------------------------------------------------------------


def test_clients_create_prints_credentials_that_work(cli: Cli, live: LiveServer) -> None:
    created = cli.json("clients", "create", "Fin production")
    assert set(created) >= {"client_id", "client_secret"}
    assert created["name"] == "Fin production"

    response = get_token(live, created["client_id"], created["client_secret"])
    assert response.status_code == 200, response.text
    token = response.json()
    assert token["token_type"] == "Bearer" and token["expires_in"] > 0
    agents = httpx.get(
        f"{live.base_url}/api/fin/agents",
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert agents.status_code == 200, agents.text

    # A wrong secret for the same client does not.
    wrong = get_token(live, created["client_id"], created["client_secret"] + "x")
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"


def test_clients_list_shows_the_client_but_never_its_secret(cli: Cli) -> None:
    created = cli.json("clients", "create", "listed-client")
    result = cli.run("clients", "list", "--json")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    matches = [c for c in listing["clients"] if c["client_id"] == created["client_id"]]
    assert len(matches) == 1
    assert matches[0]["name"] == "listed-client"
    assert matches[0]["revoked_at"] is None
    assert created["client_secret"] not in result.stdout
    for client in listing["clients"]:
        assert not {"client_secret", "secret", "secret_hash"} & set(client), client

    table = cli.run("clients", "list")
    assert table.returncode == 0 and created["client_id"] in table.stdout
    assert created["client_secret"] not in table.stdout


def test_clients_revoke_stops_new_and_issued_tokens(cli: Cli, live: LiveServer) -> None:
    created = cli.json("clients", "create", "to-revoke")
    keep = cli.json("clients", "create", "to-keep")
    issued = get_token(live, created["client_id"], created["client_secret"])
    assert issued.status_code == 200
    access_token = issued.json()["access_token"]
    kept_token = get_token(live, keep["client_id"], keep["client_secret"]).json()["access_token"]

    def fin_agents(token: str) -> httpx.Response:
        return httpx.get(
            f"{live.base_url}/api/fin/agents", headers={"Authorization": f"Bearer {token}"}
        )

    assert fin_agents(access_token).status_code == 200

    revoked = cli.json("clients", "revoke", created["client_id"])
    assert revoked == {"client_id": created["client_id"], "revoked": True}

    again = get_token(live, created["client_id"], created["client_secret"])
    assert again.status_code == 401, again.text
    assert again.json()["error"] == "invalid_client"

    refused = fin_agents(access_token)
    assert refused.status_code == 401, refused.text
    assert refused.headers["www-authenticate"].lower().startswith("bearer")

    # Other clients are unaffected.
    assert fin_agents(kept_token).status_code == 200
    listing = cli.json("clients", "list")["clients"]
    by_id = {c["client_id"]: c for c in listing}
    assert by_id[created["client_id"]]["revoked_at"] is not None
    assert by_id[keep["client_id"]]["revoked_at"] is None


def test_revoking_an_unknown_client_fails(cli: Cli) -> None:
    message = cli.fails("clients", "revoke", "fcl_doesnotexist")
    assert "fcl_doesnotexist" in message


# --- agents ----------------------------------------------------------------------------------


def test_agents_create_and_list(cli: Cli) -> None:
    email = f"Ada.{uuid.uuid4().hex[:6]}@Example.com"
    created = cli.json(
        "agents",
        "create",
        "--email",
        email,
        "--name",
        "Ada Lovelace",
        "--alias",
        "Ada",
        "--photo-url",
        "https://example.com/ada.png",
        "--admin",
    )
    assert created["id"].startswith("agt_")
    assert created["email"] == email.lower()
    assert created["name"] == "Ada Lovelace"
    assert created["alias"] == "Ada"
    assert created["photo_url"] == "https://example.com/ada.png"
    assert created["role"] == "admin"
    assert created["is_bot"] is False

    agents = cli.json("agents", "list")["agents"]
    assert agents[0]["is_bot"] is True
    assert agents[0]["name"] == "Fin"
    assert sum(a["is_bot"] for a in agents) == 1
    assert [a for a in agents if a["id"] == created["id"]] == [created]


def test_a_duplicate_email_is_refused_and_creates_nothing(cli: Cli) -> None:
    email = f"dup-{uuid.uuid4().hex[:6]}@example.com"
    first = cli.json("agents", "create", "--email", email, "--name", "First")
    before = cli.json("agents", "list")["agents"]

    for again in (email, email.upper(), f"  {email} "):
        message = cli.fails("agents", "create", "--email", again, "--name", "Second", "--json")
        assert "exists" in message and email in message, message

    after = cli.json("agents", "list")["agents"]
    assert after == before
    assert [a["name"] for a in after if a["email"] == email] == ["First"]
    assert first in after


def test_agents_token_works_on_the_agent_api(cli: Cli, live: LiveServer) -> None:
    email = f"tok-{uuid.uuid4().hex[:6]}@example.com"
    agent = cli.json("agents", "create", "--email", email, "--name", "Token Holder")
    issued = cli.json("agents", "token", email.upper())
    assert issued["agent_id"] == agent["id"]
    me = httpx.get(
        f"{live.base_url}/api/v1/me", headers={"Authorization": f"Bearer {issued['token']}"}
    )
    assert me.status_code == 200, me.text
    assert me.json()["id"] == agent["id"] and me.json()["email"] == email

    # A second token is independent; the first one keeps working.
    second = cli.json("agents", "token", email)
    assert second["token"] != issued["token"]
    for token in (issued["token"], second["token"]):
        response = httpx.get(
            f"{live.base_url}/api/v1/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200


def test_agents_token_for_an_unknown_email_fails(cli: Cli) -> None:
    message = cli.fails("agents", "token", "nobody-here@example.com", "--json")
    assert "nobody-here@example.com" in message


# --- secrets at rest -------------------------------------------------------------------------


def test_the_database_keeps_no_secret_in_clear_text(cli: Cli, live: LiveServer) -> None:
    client = cli.json("clients", "create", "at-rest")
    access_token = get_token(live, client["client_id"], client["client_secret"]).json()[
        "access_token"
    ]
    email = f"rest-{uuid.uuid4().hex[:6]}@example.com"
    cli.json("agents", "create", "--email", email, "--name", "At Rest")
    agent_token = cli.json("agents", "token", email)["token"]

    stored = database_bytes(cli)
    # The data we did store is there, so the search itself works.
    assert client["client_id"].encode() in stored
    assert email.encode() in stored
    for secret in (client["client_secret"], access_token, agent_token):
        assert secret.encode() not in stored, "a secret is stored in clear text"
        # Nor its distinctive random part without the prefix.
        assert secret.split("_", 1)[1].encode() not in stored


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--email", "not-an-email", "--name", "Bad Email"], "Invalid agent"),
        (["--email", "blank-name@example.com", "--name", "   "], "needs a name"),
        (
            ["--email", "js@example.com", "--name", "X", "--photo-url", "javascript:alert(1)"],
            "Invalid agent",
        ),
    ],
)
def test_agents_create_refuses_invalid_input(cli: Cli, args: list[str], reason: str) -> None:
    before = cli.json("agents", "list")["agents"]
    assert reason in cli.fails("agents", "create", *args)
    assert cli.json("agents", "list")["agents"] == before
