"""``findesk serve --workers N``: N processes answer on one port (PostgreSQL only), and a change
made through one of them reaches the live stream served by another at once.

Which process served a connection is read from /proc: the server side of the connection (its
client address is unique to the test's client) is a socket that one of the worker processes
holds. Linux only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.cli import Cli, findesk_command
from support.postgres import PostgresServer
from support.server import free_port

from findesk.agents.service import create_agent
from findesk.auth.service import create_agent_token
from findesk.conversations.service import Author, NewMessage, open_conversation
from findesk.kit.actor import FIN
from findesk.kit.db import Database
from findesk.migrations import upgrade
from findesk.users.service import create_user

PASSWORD = "correct horse battery staple"
LOGIN_CSRF = "test-login-csrf-0123456789"

needs_proc = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc (Linux)")


def test_more_than_one_worker_is_refused_on_sqlite(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "data")
    message = cli.fails("serve", "--workers", "2")
    assert "--workers 2 needs PostgreSQL" in message
    assert not cli.database_path.exists()  # refused before anything was done
    cli.env["FINDESK_WORKERS"] = "3"
    assert "--workers 3 needs PostgreSQL" in cli.fails("serve")


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def serving_pid(port: int, client_address: str, candidates: list[int]) -> int | None:
    """Which of ``candidates`` holds the established connection from ``client_address``."""
    wanted = "".join(f"{int(part):02X}" for part in reversed(client_address.split(".")))
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
        if int(local.split(":")[1], 16) == port and remote.split(":")[0] == wanted:
            if state == "01":  # ESTABLISHED
                inodes.add(f"socket:[{inode}]")
    for pid in candidates:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in inodes:
                    return pid
            except OSError:
                continue
    return None


@pytest.fixture
def two_workers(pg_server: PostgresServer, tmp_path: Path) -> Iterator[tuple[str, int, int]]:
    """``findesk serve --workers 2`` on a fresh PostgreSQL database: (URL, port, parent pid)."""
    url = pg_server.create_database(f"workers_{uuid.uuid4().hex[:8]}")
    cli = Cli(tmp_path / "data")
    port = free_port()
    env = {
        **cli.env,
        "FINDESK_DATABASE_URL": url,
        # Only LISTEN/NOTIFY can bring another process's change in time.
        "FINDESK_LIVE_POLL_SECONDS": "30",
    }
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [*findesk_command(), "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while len(children_of(process.pid)) < 2 or not _answers(port):
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        yield url, port, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
        finally:
            log.close()
    assert code == 0, (tmp_path / "serve.log").read_text()
    text = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in text, text


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def seed(url: str) -> tuple[str, str, str]:
    """An agent with a password and a token, and a conversation: (email, token, conversation)."""
    upgrade(url)
    db = Database(url)
    try:
        with db.transaction() as session:
            email = f"ada-{uuid.uuid4().hex[:6]}@example.com"
            agent = create_agent(session, email=email, name="Ada", password=PASSWORD)
            token = create_agent_token(session, agent)
            user, _ = create_user(session, object_id=None, name="Ana")
            conversation, _, _ = open_conversation(
                session,
                user_id=user.id,
                first=NewMessage(author=Author("end_user", user.id), body="<p>Hello</p>"),
                actor=FIN,
            )
            return email, token, conversation.id
    finally:
        db.dispose()


@needs_proc
@pytest.mark.postgres
def test_two_workers_share_the_port_and_the_live_feed(two_workers: tuple[str, int, int]) -> None:
    url, port, parent = two_workers
    email, token, conversation_id = seed(url)
    workers = children_of(parent)
    base = f"http://127.0.0.1:{port}"

    # Connections from addresses of their own, until both workers have answered one.
    by_pid: dict[int, tuple[httpx.Client, str]] = {}
    clients = []
    for n in range(2, 200):
        address = f"127.0.0.{n}"
        http = httpx.Client(
            base_url=base, timeout=20, transport=httpx.HTTPTransport(local_address=address)
        )
        clients.append(http)
        assert http.get("/healthz").status_code == 200
        pid = serving_pid(port, address, workers)
        assert pid in workers
        by_pid.setdefault(pid, (http, address))
        if len(by_pid) == 2:
            break
    try:
        assert len(by_pid) == 2, "one worker answered every connection"
        (watcher, watcher_address), (changer, changer_address) = by_pid.values()
        watcher_pid, changer_pid = by_pid

        # The watcher signs in and opens the live stream on its connection (to its worker).
        watcher.cookies.set("findesk_login_csrf", LOGIN_CSRF)
        response = watcher.post(
            "/login", data={"email": email, "password": PASSWORD, "csrf_token": LOGIN_CSRF}
        )
        assert response.status_code == 303, response.text
        # (A read timeout well below the poll and the heartbeat: nothing else will come.)
        with watcher.stream("GET", "/inbox/live", timeout=5) as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()
            assert next(lines) == "retry: 2000"
            assert serving_pid(port, watcher_address, workers) == watcher_pid

            # The change goes through the other worker...
            started = time.monotonic()
            changed = changer.patch(
                f"/api/v1/conversations/{conversation_id}",
                json={"title": "Seen by the other worker"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert changed.status_code == 200, changed.text
            assert serving_pid(port, changer_address, workers) == changer_pid

            # ... and the watcher's stream has it at once (the poll is 30 s away).
            for line in lines:
                if line.startswith("data: ") and conversation_id in line:
                    break
            assert time.monotonic() - started < 5
    finally:
        for http in clients:
            http.close()
