"""`findesk demo` (what `make run` starts) as a person meets it: a busy port is refused before
anything is seeded, naming the setting to change; seeding again beside a running demo leaves the
credentials it gave working (issue 11)."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.cli import Cli, findesk_command
from support.server import LiveServer, free_port

SESSION_COOKIE = "findesk_session"


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def demo(cli: Cli, *args: str, **settings: int) -> subprocess.CompletedProcess[str]:
    """`findesk demo` in its own process group, ended with its children should it start."""
    env = {**cli.env, **{f"FINDESK_{k.upper()}": str(v) for k, v in settings.items()}}
    process = subprocess.Popen(
        [*findesk_command(), "demo", *args],
        env=env,
        cwd=cli.data_dir.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
        pytest.fail(f"findesk demo started instead of refusing the port:\n{stdout}\n{stderr}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def assert_nothing_seeded(cli: Cli) -> None:
    leftovers = sorted(p.name for p in cli.data_dir.iterdir()) if cli.data_dir.exists() else []
    assert leftovers == [], f"the data folder was written before the port check: {leftovers}"


def test_a_busy_findesk_port_is_refused_before_seeding_naming_findesk_port(
    tmp_path: Path, busy_port: int
) -> None:
    cli = Cli(tmp_path / "data")
    result = demo(cli, port=busy_port, emulator_port=free_port())
    assert result.returncode == 1, result
    message = " ".join(result.stderr.split())
    assert f"Port {busy_port}" in message and "FINDESK_PORT" in message, message
    assert "Traceback" not in result.stderr
    assert_nothing_seeded(cli)


def test_a_busy_emulator_port_is_refused_naming_its_setting(tmp_path: Path, busy_port: int) -> None:
    cli = Cli(tmp_path / "data")
    result = demo(cli, port=free_port(), emulator_port=busy_port)
    assert result.returncode == 1, result
    message = " ".join(result.stderr.split())
    assert f"Port {busy_port}" in message and "FINDESK_EMULATOR_PORT" in message, message
    assert "FINDESK_PORT=" not in message  # findesk's own port is free: not the one to change
    assert_nothing_seeded(cli)


def test_the_option_names_itself_when_it_chose_the_busy_port(
    tmp_path: Path, busy_port: int
) -> None:
    cli = Cli(tmp_path / "data")
    result = demo(cli, "--port", str(free_port()), "--emulator-port", str(busy_port))
    assert result.returncode == 1, result
    assert "--emulator-port" in " ".join(result.stderr.split())
    assert_nothing_seeded(cli)


# --- seeding beside a running demo ------------------------------------------------------------


def oauth_token(live: LiveServer, creds: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{live.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(creds["client_id"], creds["client_secret"]),
        timeout=30,
    )


def sign_in(live: LiveServer, creds: dict[str, Any]) -> httpx.Client:
    http = httpx.Client(base_url=live.base_url, timeout=30)
    form = http.get("/login")
    assert form.status_code == 200
    csrf = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = http.post(
        "/login",
        data={
            "email": creds["agent_email"],
            "password": creds["agent_password"],
            "csrf_token": csrf,
        },
    )
    assert response.status_code == 303, response.text
    assert SESSION_COOKIE in http.cookies
    return http


def still_signed_in(http: httpx.Client) -> bool:
    response = http.get("/inbox")
    return response.status_code == 200 and "/login" not in str(response.url)


def test_seeding_again_beside_a_running_demo_keeps_its_credentials_working(
    tmp_path: Path,
) -> None:
    cli = Cli(tmp_path / "data")
    first = cli.json("demo", "--seed-only")
    live = LiveServer(cli.database_url).start()
    try:
        # Fin and an agent start using what the first seeding printed.
        token = oauth_token(live, first)
        assert token.status_code == 200, token.text
        fin = {"Authorization": f"Bearer {token.json()['access_token']}"}
        assert httpx.get(f"{live.base_url}/api/fin/agents", headers=fin).status_code == 200
        inbox = sign_in(live, first)
        assert still_signed_in(inbox)

        second = cli.json("demo", "--seed-only")

        # Nothing of the first is broken: Fin's token, its client, the inbox session.
        assert httpx.get(f"{live.base_url}/api/fin/agents", headers=fin).status_code == 200
        assert oauth_token(live, first).status_code == 200
        assert still_signed_in(inbox), "seeding signed the agent out of the inbox"
        agent_api = {"Authorization": f"Bearer {first['agent_token']}"}
        assert httpx.get(f"{live.base_url}/api/v1/queues", headers=agent_api).status_code == 200
        # And what the second printed works: it is the same set, not a revoked one.
        assert {k: second[k] for k in first} == first
        assert oauth_token(live, second).status_code == 200
        assert still_signed_in(sign_in(live, second))
    finally:
        live.stop()

    clients = cli.json("clients", "list")["clients"]
    demo_clients = [c for c in clients if c["name"] == "Fin (demo)"]
    assert len(demo_clients) == 1 and demo_clients[0]["revoked_at"] is None
    saved = cli.data_dir / "demo-credentials.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert first["client_secret"] in saved.read_text()


def test_a_revoked_demo_client_is_replaced_and_the_rest_kept(tmp_path: Path) -> None:
    """Seeding prints credentials that work: a client revoked meanwhile gets a successor."""
    cli = Cli(tmp_path / "data")
    first = cli.json("demo", "--seed-only")
    assert cli.run("clients", "revoke", first["client_id"]).returncode == 0
    second = cli.json("demo", "--seed-only")
    assert second["client_id"] != first["client_id"]
    assert second["agent_password"] == first["agent_password"]
    assert second["agent_token"] == first["agent_token"]
    live = LiveServer(cli.database_url).start()
    try:
        assert oauth_token(live, second).status_code == 200
        assert oauth_token(live, first).status_code == 401
    finally:
        live.stop()


def test_the_demo_has_four_weeks_behind_its_reports_and_its_queues_stay_as_they_were(
    tmp_path: Path,
) -> None:
    cli = Cli(tmp_path / "data")
    creds = cli.json("demo", "--seed-only")
    cli.json("demo", "--seed-only")  # seeding again adds no second history

    def report(*args: str) -> dict[str, Any]:
        result = cli.run("report", "--format", "json", *args)
        assert result.returncode == 0, result.stderr
        answer: dict[str, Any] = json.loads(result.stdout)
        return answer

    days = report("--view", "series")["data"]
    assert len(days) >= 20  # a month of days with conversations, weekends quieter
    totals = report("--view", "totals")["data"]
    assert 100 <= totals["conversations"] <= 250
    assert totals["fin_resolved"] > 0 and totals["handed_over"] > 0
    assert totals["avg_seconds_to_take_over"] > 60  # minutes, not the milliseconds of seeding
    assert totals["csat_ratings"] > 0
    assert sum(p["measures"]["conversations"] for p in days) == totals["conversations"]
    live = LiveServer(cli.database_url).start()
    try:
        queues = httpx.get(f"{live.base_url}/api/v1/queues",
                           headers={"Authorization": f"Bearer {creds['agent_token']}"})  # fmt: skip
        # The past is resolved or closed: only the demo's own conversations are open.
        assert queues.status_code == 200 and queues.json()["all"] <= 3
    finally:
        live.stop()
