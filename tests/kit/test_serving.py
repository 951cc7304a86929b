"""Slow clients cannot hold connections: request headers must arrive within
FINDESK_HEADER_TIMEOUT_SECONDS and a body must not stall longer than FINDESK_BODY_TIMEOUT_SECONDS,
while everyone else is served at once and keep-alive connections keep working.

Everything is on loopback and bounded in count and time.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.cli import Cli, findesk_command
from support.server import LiveServer, database_url, free_port

TIMEOUT = 0.5
SLOW_CLIENTS = 60
PROMPT = 1.0  # a normal request's answer, generous for a shared two-core machine


def start(request: pytest.FixtureRequest, tmp: Path, header: float, body: float) -> LiveServer:
    return LiveServer(
        database_url("sqlite", request, tmp),
        {"data_dir": tmp, "header_timeout_seconds": header, "body_timeout_seconds": body},
    ).start()


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """Short header timeout: the body timeout's clock must not cut anything here."""
    live = start(request, tmp_path_factory.mktemp("headers"), TIMEOUT, TIMEOUT * 20)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def body_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """Short body timeout, well within the header timeout still running from the opening."""
    live = start(request, tmp_path_factory.mktemp("bodies"), TIMEOUT * 20, TIMEOUT)
    yield live
    live.stop()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setblocking(False)
    return sock


def closed_by_server(sock: socket.socket, seen: bytearray) -> bool:
    """Whether the server has closed the connection (what it sent first is kept in ``seen``)."""
    try:
        while chunk := sock.recv(4096):
            seen += chunk
        return True
    except BlockingIOError:
        return False
    except OSError:  # reset
        return True


def served_promptly(base_url: str, tries: int = 3) -> float:
    """How soon a normal request is answered: the quickest of a few in a row. One of them may
    meet a pause of the shared machine; a server held up by its slow clients delays them all."""
    quickest = float("inf")
    for _ in range(tries):
        started = time.monotonic()
        response = httpx.get(f"{base_url}/healthz", timeout=5)
        assert response.status_code == 200
        quickest = min(quickest, time.monotonic() - started)
    return quickest


def test_slow_headers_are_cut_off_while_others_are_served(server: LiveServer) -> None:
    port = server.port
    opened = time.monotonic()
    # Half send nothing at all; half start a request and dribble header lines, never ending it.
    silent = [connect(port) for _ in range(SLOW_CLIENTS // 2)]
    dribbling = [connect(port) for _ in range(SLOW_CLIENTS // 2)]
    for sock in dribbling:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    sockets = silent + dribbling
    seen = [bytearray() for _ in sockets]
    closed_at: dict[int, float] = {}
    slowest = 0.0
    try:
        while len(closed_at) < len(sockets) and time.monotonic() - opened < 10 * TIMEOUT + 5:
            for i, sock in enumerate(sockets):
                if i in closed_at:
                    continue
                if closed_by_server(sock, seen[i]):
                    closed_at[i] = time.monotonic() - opened
                elif i >= len(silent):
                    try:
                        sock.sendall(b"X-Slow: still here\r\n")
                    except OSError:
                        closed_at[i] = time.monotonic() - opened
            slowest = max(slowest, served_promptly(server.base_url))
            time.sleep(0.05)
    finally:
        for sock in sockets:
            sock.close()
    assert len(closed_at) == len(sockets), f"{len(sockets) - len(closed_at)} still open"
    assert min(closed_at.values()) >= TIMEOUT * 0.9
    assert max(closed_at.values()) < TIMEOUT + 3
    assert slowest < PROMPT
    # A request that was begun is told why; a connection that said nothing is just closed.
    assert all(seen[i].startswith(b"HTTP/1.1 408 ") for i in range(len(silent), len(sockets)))
    assert all(seen[i] == b"" for i in range(len(silent)))


def request_on(sock: socket.socket, path: str = "/healthz") -> bytes:
    sock.setblocking(True)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data and (chunk := sock.recv(4096)):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])  # type: ignore[index]
    while len(body) < length and (chunk := sock.recv(4096)):
        body += chunk
    return head


def test_a_keep_alive_connection_idle_between_requests_stays_usable(server: LiveServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        assert request_on(sock).startswith(b"HTTP/1.1 200 ")
        time.sleep(TIMEOUT * 2)  # idle longer than the header timeout, within keep-alive's
        assert request_on(sock).startswith(b"HTTP/1.1 200 ")


def post_head(length: int) -> bytes:
    return (
        "POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    sock.settimeout(limit)
    started, data = time.monotonic(), b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data, time.monotonic() - started


def test_a_stalled_body_is_answered_408_and_closed(body_server: LiveServer) -> None:
    with socket.create_connection(("127.0.0.1", body_server.port), timeout=5) as sock:
        sock.sendall(post_head(100) + b"grant_type=client")
        answer, waited = read_until_closed(sock, TIMEOUT + 5)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"connection: close" in answer.lower()
    assert TIMEOUT * 0.9 <= waited < TIMEOUT * 10
    assert served_promptly(body_server.base_url) < PROMPT


def test_a_body_that_keeps_coming_is_not_cut(body_server: LiveServer) -> None:
    body = b"grant_type=client_credentials&client_id=nobody&client_secret=nothing"
    pieces = [body[i : i + 8] for i in range(0, len(body), 8)]
    with socket.create_connection(("127.0.0.1", body_server.port), timeout=5) as sock:
        sock.sendall(post_head(len(body)))
        for piece in pieces:  # each gap shorter than the timeout, the whole longer
            time.sleep(TIMEOUT / 3)
            sock.sendall(piece)
        sock.settimeout(5)
        answer = sock.recv(4096)
    assert len(pieces) * TIMEOUT / 3 > TIMEOUT * 2
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]  # read whole: the client is unknown


def test_findesk_serve_applies_the_header_timeout(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "data")
    port = free_port()
    env = {**cli.env, "FINDESK_HEADER_TIMEOUT_SECONDS": str(TIMEOUT)}
    process = subprocess.Popen(
        [*findesk_command(), "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise AssertionError("findesk serve did not start")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
            answer, waited = read_until_closed(sock, TIMEOUT + 5)
        assert answer.startswith(b"HTTP/1.1 408 ") and waited < TIMEOUT + 3
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
