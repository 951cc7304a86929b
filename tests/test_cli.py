"""The ``findesk`` console script, run for real in a subprocess against a SQLite file, with a live
server on the same database to prove that what the CLI prints works."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from inbox.web_support import client as web_client
from inbox.web_support import submit_login
from sqlalchemy import update
from support.cli import Cli, findesk_command
from support.server import LiveServer, free_port

from findesk.agents.models import Agent
from findesk.kit.db import Database


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
    """The SQLite file and its WAL (recent writes may not be checkpointed into the main file).

    Read by a child process: closing a descriptor of the database file in this process would
    drop the locks the live server's connections hold (POSIX locks are per process), and the
    next CLI run would then take itself for the last user and delete the WAL index under them.
    """
    paths = [str(p) for p in sorted(cli.data_dir.iterdir()) if p.name.startswith("findesk.db")]
    return subprocess.run(["cat", *paths], capture_output=True, check=True).stdout


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


# --- passwords, never on the command line ----------------------------------------------------

PASSWORD = "correct horse battery staple"
FIRST_ADMIN_HINT = "findesk agents create EMAIL --name NAME --admin --password"


def signs_in(live: LiveServer, email: str, password: str = PASSWORD) -> bool:
    with web_client(live) as http:
        response = submit_login(http, email, password)
    assert response.status_code in (303, 401), response.text
    return response.status_code == 303


def on_a_terminal(cli: Cli, args: list[str], answers: list[str]) -> tuple[int, str]:
    """Run the command on a pseudo-terminal of its own, typing each answer after a prompt."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [*findesk_command(), *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=cli.env,
        cwd=cli.data_dir.parent,
        start_new_session=True,  # no controlling terminal but this one
    )
    os.close(slave)
    seen = b""

    def read(since: int, prompt: bool) -> None:
        """Read until a prompt (what ``getpass`` writes once it stops echoing) or the end."""
        nonlocal seen
        deadline = time.monotonic() + 60
        while not (prompt and seen[since:].endswith(b": ")):
            ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError(f"the command is stuck; it said {seen!r}")
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the command ended and closed the terminal
                chunk = b""
            if not chunk:
                if prompt:
                    raise AssertionError(f"the command ended before asking: {seen!r}")
                return
            seen += chunk

    try:
        for answer in answers:
            read(len(seen), prompt=True)
            os.write(master, answer.encode() + b"\n")
        read(len(seen), prompt=False)
        return process.wait(timeout=60), seen.decode(errors="replace")
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()


def test_agents_create_asks_for_the_password_twice_on_a_terminal(
    cli: Cli, live: LiveServer
) -> None:
    email = f"root-{uuid.uuid4().hex[:6]}@example.com"
    code, said = on_a_terminal(
        cli,
        ["agents", "create", email, "--name", "Root", "--admin", "--password"],
        [PASSWORD, "a different passphrase", PASSWORD, PASSWORD],
    )
    assert code == 0, said
    assert "do not match" in said
    assert PASSWORD not in said  # never echoed
    assert signs_in(live, email)
    [created] = [a for a in cli.json("agents", "list")["agents"] if a["email"] == email]
    assert created["role"] == "admin"


def test_agents_create_reads_the_password_from_stdin(cli: Cli, live: LiveServer) -> None:
    email = f"script-{uuid.uuid4().hex[:6]}@example.com"
    created = cli.json(
        "agents", "create", email, "--name", "Scripted", "--password-stdin", input=PASSWORD + "\n"
    )
    assert created["email"] == email and created["role"] == "agent"
    assert signs_in(live, email)
    assert not signs_in(live, f"{email}x")


def test_a_password_is_never_a_command_line_value(cli: Cli) -> None:
    email = f"argv-{uuid.uuid4().hex[:6]}@example.com"
    before = cli.json("agents", "list")["agents"]
    result = cli.run("agents", "create", email, "--name", "Argv", "--password", PASSWORD)
    assert result.returncode != 0
    # --password asks on a terminal; without one it says what to do instead.
    message = cli.fails(
        "agents", "create", email, "--name", "Argv", "--password", input=f"{PASSWORD}\n" * 2
    )
    assert "--password-stdin" in message, message
    assert "at least 10" in cli.fails(
        "agents", "create", email, "--name", "Argv", "--password-stdin", input="short\n"
    )
    assert "stdin" in cli.fails("agents", "create", email, "--name", "Argv", "--password-stdin")
    assert "--password" in cli.fails(
        "agents", "create", email, "--name", "A", "--password", "--password-stdin", input=PASSWORD
    )
    assert cli.json("agents", "list")["agents"] == before
    # set-password reads stdin the same way.
    cli.json("agents", "create", email, "--name", "Argv")
    new_password = "an entirely new passphrase"
    changed = cli.run("agents", "set-password", email, "--password-stdin", input=new_password)
    assert changed.returncode == 0, changed.stderr
    assert cli.run("agents", "set-password", email, "--password", new_password).returncode != 0


# --- personal tokens and deactivation ----------------------------------------------------------


def agent_api_works(live: LiveServer, token: str) -> bool:
    response = httpx.get(
        f"{live.base_url}/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


def test_agents_tokens_lists_them_without_secrets_and_revoke_token_stops_one(
    cli: Cli, live: LiveServer
) -> None:
    email = f"keys-{uuid.uuid4().hex[:6]}@example.com"
    agent = cli.json("agents", "create", email, "--name", "Key Holder")
    first = cli.json("agents", "token", email, "--label", "CI deploys")
    second = cli.json("agents", "token", email)
    assert first["token_id"].startswith("tok_") and first["label"] == "CI deploys"
    assert agent_api_works(live, first["token"])

    listed = cli.run("agents", "tokens", email.upper(), "--json")
    assert listed.returncode == 0, listed.stderr
    tokens = json.loads(listed.stdout)
    assert tokens["agent_id"] == agent["id"]
    assert [t["id"] for t in tokens["tokens"]] == [second["token_id"], first["token_id"]]
    assert tokens["tokens"][1]["label"] == "CI deploys"
    assert tokens["tokens"][1]["last_used_at"] is not None
    table = cli.run("agents", "tokens", email)
    assert first["token_id"] in table.stdout and "CI deploys" in table.stdout
    for secret in (first["token"], second["token"]):
        assert secret.split("_", 1)[1] not in listed.stdout + table.stdout

    revoked = cli.json("agents", "revoke-token", first["token_id"])
    assert revoked["token_id"] == first["token_id"] and revoked["revoked_at"]
    assert not agent_api_works(live, first["token"])
    assert agent_api_works(live, second["token"])
    after = cli.json("agents", "tokens", email)["tokens"]
    assert [t["revoked_at"] is not None for t in after] == [False, True]
    assert "tok_doesnotexist" in cli.fails("agents", "revoke-token", "tok_doesnotexist")
    assert "nobody-here@example.com" in cli.fails("agents", "tokens", "nobody-here@example.com")
    entries = cli.json("audit", "list", "--target", first["token_id"])["entries"]
    assert [e["action"] for e in entries] == ["agent_token.revoked", "agent_token.issued"]
    assert entries[0]["actor_kind"] == "cli"


def test_agents_deactivate_and_reactivate(cli: Cli, live: LiveServer) -> None:
    email = f"leaver-{uuid.uuid4().hex[:6]}@example.com"
    agent = cli.json(
        "agents", "create", email, "--name", "Leaver", "--password-stdin", input=PASSWORD
    )
    token = cli.json("agents", "token", email)["token"]
    assert signs_in(live, email) and agent_api_works(live, token)

    gone = cli.json("agents", "deactivate", email)

    assert gone["agent_id"] == agent["id"] and gone["active"] is False
    assert gone["tokens_revoked"] == 1 and gone["unassigned_conversation_ids"] == []
    assert not signs_in(live, email) and not agent_api_works(live, token)
    [listed] = [a for a in cli.json("agents", "list")["agents"] if a["id"] == agent["id"]]
    assert listed["active"] is False
    assert "deactivated" in cli.run("agents", "list").stdout

    back = cli.json("agents", "reactivate", email)
    assert back["active"] is True
    assert signs_in(live, email) and not agent_api_works(live, token)
    actions = [e["action"] for e in cli.json("audit", "list", "--target", agent["id"])["entries"]]
    assert actions[:2] == ["agent.reactivated", "agent.deactivated"]

    [bot] = [a for a in cli.json("agents", "list")["agents"] if a["is_bot"]]
    assert "Fin" in cli.fails("agents", "deactivate", bot["email"])
    assert "nobody-here@example.com" in cli.fails("agents", "deactivate", "nobody-here@example.com")


# --- the first hour ----------------------------------------------------------------------------


def serve_output(cli: Cli) -> str:
    """Start ``findesk serve`` until it answers, stop it, and return what it printed."""
    port = free_port()
    process = subprocess.Popen(
        [*findesk_command(), "serve", "--port", str(port)],
        env=cli.env,
        cwd=cli.data_dir.parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise AssertionError(f"findesk serve did not start: {process.communicate(timeout=5)}")
    finally:
        process.send_signal(signal.SIGINT)
    out, errors = process.communicate(timeout=30)
    return out + errors


def test_serve_without_an_admin_says_how_to_create_one(tmp_path: Path) -> None:
    fresh = Cli(tmp_path / "data")
    said = serve_output(fresh)
    [hint] = [line for line in said.splitlines() if FIRST_ADMIN_HINT in line]
    assert "administrator" in hint

    # An agent who is not an admin, or an admin who is not active, does not count.
    fresh.json("agents", "create", "plain@example.com", "--name", "Plain")
    email = "root@example.com"
    fresh.json(
        "agents", "create", email, "--name", "Root", "--admin", "--password-stdin", input=PASSWORD
    )
    assert FIRST_ADMIN_HINT not in serve_output(fresh)
    assert "last active administrator" in fresh.fails("agents", "deactivate", email)
    stored = Database(fresh.database_url)
    try:
        with stored.transaction() as session:
            session.execute(update(Agent).where(Agent.email == email).values(active=False))
    finally:
        stored.dispose()
    assert FIRST_ADMIN_HINT in serve_output(fresh)


# --- listings ----------------------------------------------------------------------------------


def test_listings_print_ids_whole_in_a_narrow_terminal(cli: Cli) -> None:
    """The ids (and emails) a listing shows are what the next command takes: however narrow the
    terminal, each is printed whole, on one line."""
    email = f"a.rather.long.address.{uuid.uuid4().hex[:6]}@support.example-company.com"
    agent = cli.json("agents", "create", email, "--name", "Alexandra Theodora Long-Name Person")
    token = cli.json("agents", "token", email, "--label", "a label long enough to need wrapping")
    client = cli.json("clients", "create", "A client whose name is long enough to wrap")
    listings: dict[tuple[str, ...], list[str]] = {
        ("agents", "list"): [agent["id"], email],
        ("clients", "list"): [client["client_id"]],
        ("agents", "tokens", email): [token["token_id"]],
        ("audit", "list", "--limit", "3"): [client["client_id"], token["token_id"], agent["id"]],
    }
    for columns in ("60", "80", "200"):
        narrow = Cli(cli.data_dir)
        narrow.env["COLUMNS"] = columns
        for command, values in listings.items():
            result = narrow.run(*command)
            assert result.returncode == 0, result.stderr
            lines = result.stdout.splitlines()
            for value in values:
                assert any(value in line for line in lines), (columns, command, value, lines)
            assert "…" not in result.stdout, result.stdout
    # Wide enough, the listing is a table: a header line, then one line per agent.
    wide = Cli(cli.data_dir)
    header, *rows = wide.run("agents", "list").stdout.splitlines()
    assert header.split() == ["id", "name", "email", "alias", "role", "bot", "state"]
    assert any(agent["id"] in row and email in row for row in rows), rows
