"""Helpers of the Fin call ledger tests: reading the ledger and the metrics, and the Fin
emulator wired to a live findesk on loopback."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select
from support.receiver import eventually
from support.server import LiveServer, free_port

from findesk.conversations.models import Message
from findesk.emulator.server import EmulatorConfig, create_emulator
from findesk.fin_ledger.models import FinCall, PendingFetch

WAIT = 20.0  # seconds: generous for a shared two-core machine; passing runs take far less
INTEGRATION = "ledger-integration"
WEBHOOK_KEY = "ledger-webhook-key"
HOOK = f"/hooks/standalone/custom_helpdesk_conversation_event/{INTEGRATION}"


# --- the ledger and the messages, as the database has them --------------------------------------


def calls(server: LiveServer, *where: Any) -> list[FinCall]:
    with server.db.read_session() as session:
        rows = session.scalars(select(FinCall).where(*where).order_by(FinCall.id)).all()
        session.expunge_all()
        return list(rows)


def wait_for_calls(
    server: LiveServer, count: int, *where: Any, timeout: float = WAIT
) -> list[FinCall]:
    """Wait until the recorder has written at least ``count`` calls matching ``where``."""
    assert eventually(lambda: len(calls(server, *where)) >= count, timeout), (
        f"fewer than {count} matching calls in the ledger: {calls(server, *where)!r}"
    )
    return calls(server, *where)


def message(server: LiveServer, message_id: str) -> Message:
    with server.db.read_session() as session:
        row = session.scalars(select(Message).where(Message.id == message_id)).one()
        session.expunge_all()
        return row


def seen_at(server: LiveServer, message_id: str) -> datetime | None:
    return message(server, message_id).seen_by_fin_at


def pending_ids(server: LiveServer, conversation_id: str) -> set[str]:
    with server.db.read_session() as session:
        query = select(PendingFetch.message_id).where(
            PendingFetch.conversation_id == conversation_id
        )
        return set(session.scalars(query))


# --- metrics ------------------------------------------------------------------------------------


def scrape(server: LiveServer) -> str:
    return httpx.get(f"{server.base_url}/metrics", timeout=10).text


def metric(text: str, name: str, **labels: str) -> float:
    """The sample's value (0 when absent); labels in any order."""
    for line in text.splitlines():
        found = re.match(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$", line)
        if not found or found.group(1) != name:
            continue
        given = dict(re.findall(r'(\w+)="([^"]*)"', found.group(2) or ""))
        if given == labels:
            return float(found.group(3))
    return 0.0


# --- the Fin emulator, served on loopback -------------------------------------------------------


class Served:
    """An ASGI app served by uvicorn in a thread, on ``port`` (a free one by default)."""

    def __init__(self, app: FastAPI, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Fin emulator did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def findesk_and_emulator(
    database_url: str,
    state_dir: Path,
    *,
    webhook_key: str = WEBHOOK_KEY,
    emulator_debounce: float = 0.05,
    **settings: Any,
) -> tuple[LiveServer, Served]:
    """findesk, its notifier aimed at the Fin emulator with ``webhook_key`` (the emulator
    expects ``WEBHOOK_KEY``: another key is refused, as Fin refuses it), and the emulator."""
    port = free_port()
    findesk = LiveServer(
        database_url,
        {
            "fin_webhook_url": f"http://127.0.0.1:{port}{HOOK}",
            "fin_webhook_key": webhook_key,
            "notifier_poll_seconds": 0.2,
            **settings,
        },
    ).start()
    client_id, secret = findesk.new_oauth_client("fin-emulator")
    config = EmulatorConfig(
        state_dir=state_dir,
        helpdesk_base_url=f"{findesk.base_url}/api/fin",
        token_url=f"{findesk.base_url}/oauth/token",
        client_id=client_id,
        client_secret=secret,
        fin_agent_id=findesk.fin_agent_id,
        integration_id=INTEGRATION,
        webhook_key=WEBHOOK_KEY,
        content_token="ledger-content-token",
        retry_delay=0.1,
        debounce=emulator_debounce,
    )
    try:
        emulator = Served(create_emulator(config), port=port)
    except BaseException:
        findesk.stop()
        raise
    return findesk, emulator


def until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    assert eventually(condition, timeout), f"{what} within {timeout:g} s"
