"""Soak test of findesk on PostgreSQL with several processes: the whole Fin loop at a steady rate.

Run: ``.venv/bin/python bench/soak.py [--minutes M] [--rate R] [--probe-every S] [--json]``

What it starts, on a throwaway PostgreSQL cluster (the tests' harness): three ``findesk serve``
processes on three ports (delivery and publishing taken out of them, as in production), two
``findesk worker`` processes delivering the outbox, and the Fin emulator (``findesk emulator``),
whose webhook the workers call and whose sync engine calls findesk's Fin API through a
round-robin proxy in this process, so that each of Fin's calls goes to the next app process.

What it does, for ``--minutes`` at ``--rate`` conversations a second (open loop: each starts on
schedule, whether or not the earlier ones have finished):

1. An end user starts a conversation in the emulator's Messenger (Fin creates the user and the
   conversation and answers from its content library); every second one asks for a person, and
   Fin hands the conversation over.
2. A human agent then types (the typing signal sent to two different app processes: only one
   typing event may reach Fin), replies through the agent API on app 2 or 3, and resolves the
   conversation through the other one.
3. A live-stream subscriber (an agent signed in to the inbox, ``/inbox/live`` on app 1) records
   every change it is told of, and when: the delay from the change (its ``at``, taken before the
   commit) to its arrival. The agents' changes are made on apps 2 and 3, so their delays are
   across processes; Fin's are spread over all three.
4. Every ``--probe-every`` seconds a sign-in probe: wrong passwords for one account from one
   address of its own, each attempt on the next app process, until one is refused (429). The
   limit holds across processes when the first four are let through (401) and the fifth is
   refused, whichever process it reaches.

At the end it waits for the outbox to drain and checks, besides HTTP errors and errors in any
process's log (and the emulator's own error log of failed sync runs):

* **lost notifications**: every outbox event delivered (none pending, none dead), and every
  agent reply shown to its end user in the Messenger (Fin heard of it and fetched it);
* **lost live updates**: every activity row written during the run reached the subscriber;
* **typing**: the typing events sent to Fin, summed over the app processes (``/metrics``), one
  per conversation;
* **sign-in limits**: every probe refused at its fifth attempt at the latest.

Exit status: 0 when nothing failed or was lost, 1 otherwise, 2 when the set-up failed, 130 when
interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import secrets
import signal
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from findesk.agents.service import create_agent, ensure_fin_agent
from findesk.auth.service import create_agent_token, create_client
from findesk.kit.db import Database
from findesk.kit.settings import WEBHOOK_PATH, Settings
from findesk.live.models import Activity
from findesk.migrations import upgrade
from findesk.notifier.repository import counts_by_state

from benchkit import (
    ChildProcess,
    ProcessTree,
    bench_folder,
    errors_logged,
    findesk_command,
    findesk_env,
    finish,
    free_port,
    log,
    machine_busy_seconds,
    percent_of_machine,
    percentile,
    run_main,
    serve_command,
    throwaway_postgres,
)

PASSWORD = "correct horse battery staple"
CSRF = "soak-login-csrf-0123456789abcdef"
INTEGRATION = "soak"
AGENTS = 6
QUESTION = "How long do refunds take to reach my card?"
REFUNDS = "<p>Refunds are paid back to the original card within 5 business days.</p>"
FREE_FAILURES = 4  # let through (401) before the pair's wait begins; the next one is refused
MAX_PROBE_ATTEMPTS = 8
DRAIN_SECONDS = 90.0
LIVE_BOUND_SECONDS = 1.0
# How a child that stopped gracefully on SIGTERM exits: uvicorn re-raises the signal once it has
# shut down; the findesk worker returns 0.
STOPPED = (0, -signal.SIGTERM)
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
    "content-encoding",
}


@dataclass(frozen=True)
class Options:
    minutes: float
    rate: float
    probe_every: float
    as_json: bool


# --- set-up -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeds:
    fin_agent_id: str
    client_id: str
    client_secret: str
    agent_tokens: list[str]
    watcher_email: str
    probe_emails: list[str]


def seed(url: str, probes: int) -> Seeds:
    """Schema, the Fin bot, Fin's OAuth client, agents with tokens, the subscriber's account and
    one account per sign-in probe (its counters must start clean)."""
    upgrade(url)
    db = Database(url)
    try:
        with db.transaction() as session:
            fin_email = Settings.model_fields["fin_agent_email"].default
            fin = ensure_fin_agent(session, fin_email)
            client, secret = create_client(session, "Fin (emulator)")
            tokens = []
            for n in range(AGENTS):
                agent = create_agent(session, email=f"agent{n}@soak.example", name=f"Agent {n}")
                tokens.append(create_agent_token(session, agent))
            watcher = create_agent(
                session, email="watcher@soak.example", name="Watcher", password=PASSWORD
            )
            emails = []
            for n in range(probes):
                probe = create_agent(
                    session, email=f"probe{n}@soak.example", name=f"Probe {n}", password=PASSWORD
                )
                emails.append(probe.email)
            return Seeds(fin.id, client.id, secret, tokens, watcher.email, emails)
    finally:
        db.dispose()


class RoundRobinProxy:
    """HTTP/1.1 on loopback, each request sent to the next app process in turn (as a reverse
    proxy in front of several app processes would): the Fin emulator's way in."""

    def __init__(self, backends: list[str]) -> None:
        self.backends = backends
        self.served = [0] * len(backends)
        self.failures = 0
        self._turn = 0
        self._client = httpx.AsyncClient(timeout=30)
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._client.aclose()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                request_line, *lines = head[:-4].decode("latin-1").split("\r\n")
                method, target, _ = request_line.split(" ", 2)
                headers, length = [], 0
                for line in lines:
                    name, _, value = line.partition(":")
                    name, value = name.strip(), value.strip()
                    if name.lower() == "content-length":
                        length = int(value)
                    elif name.lower() not in HOP_BY_HOP:
                        headers.append((name, value))
                body = await reader.readexactly(length) if length else b""
                turn = self._turn % len(self.backends)
                self._turn += 1
                self.served[turn] += 1
                try:
                    response = await self._client.request(
                        method, self.backends[turn] + target, headers=headers, content=body
                    )
                    status, reason, content = (
                        response.status_code,
                        response.reason_phrase,
                        response.content,
                    )
                    answer = [
                        (k, v)
                        for k, v in response.headers.multi_items()
                        if k.lower() not in HOP_BY_HOP
                    ]
                except httpx.HTTPError as exc:
                    self.failures += 1
                    status, reason, content = 502, "Bad Gateway", str(exc).encode()
                    answer = []
                out = [f"HTTP/1.1 {status} {reason}\r\n"]
                out += [f"{name}: {value}\r\n" for name, value in answer]
                out.append(f"content-length: {len(content)}\r\n\r\n")
                writer.write("".join(out).encode("latin-1") + content)
                await writer.drain()
        except ConnectionError:
            return
        finally:
            writer.close()


# --- what happened ------------------------------------------------------------------------------


@dataclass
class Reply:
    conversation_id: str
    message_id: str
    visitor_cookie: str


@dataclass
class Probe:
    statuses: list[int]

    @property
    def refused_at(self) -> int | None:
        """The attempt (from 1) that was refused with 429, if any."""
        return len(self.statuses) if self.statuses and self.statuses[-1] == 429 else None

    @property
    def shared(self) -> bool:
        """Let through exactly as often as the pair allows, then refused."""
        return (
            self.refused_at is not None
            and self.refused_at > FREE_FAILURES
            and all(status == 401 for status in self.statuses[:-1])
        )


@dataclass
class LiveEvent:
    id: int
    conversation_id: str
    actor: str
    delay: float  # seconds from the change's ``at`` to its arrival here


@dataclass
class Run:
    started: int = 0
    completed: int = 0
    handed_over: int = 0
    replies: list[Reply] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    live: list[LiveEvent] = field(default_factory=list)
    live_open: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: int = 0
    most_in_flight: int = 0

    def error(self, what: str) -> None:
        self.errors[what] += 1
        if self.errors[what] == 1:
            log(f"error: {what}")


def _at(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


# --- the load -----------------------------------------------------------------------------------


class Driver:
    def __init__(
        self,
        run: Run,
        seeds: Seeds,
        apps: list[ChildProcess],
        emulator: ChildProcess,
    ) -> None:
        self.run = run
        self.seeds = seeds
        self.apps = apps
        self.emulator = emulator
        self.http = httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200))

    async def close(self) -> None:
        await self.http.aclose()

    async def call(
        self, method: str, url: str, expected: int, what: str, **options: Any
    ) -> httpx.Response | None:
        self.run.requests += 1
        try:
            response = await self.http.request(method, url, **options)
        except httpx.HTTPError as exc:
            self.run.error(f"{what}: {type(exc).__name__}: {exc}")
            return None
        if response.status_code != expected:
            self.run.error(f"{what}: HTTP {response.status_code} {response.text[:200]}")
            return None
        return response

    async def conversation(self, n: int) -> None:
        run = self.run
        run.started += 1
        run.in_flight += 1
        run.most_in_flight = max(run.most_in_flight, run.in_flight)
        try:
            await self._conversation(n)
        finally:
            run.in_flight -= 1

    async def _conversation(self, n: int) -> None:
        messenger = f"{self.emulator.base_url}/messenger/api"
        visitor = await self.call(
            "POST",
            f"{messenger}/visitor",
            201,
            "messenger visitor",
            json={"name": f"Visitor {n}", "email": f"visitor{n}@soak.example"},
        )
        if visitor is None:
            return
        cookie = visitor.cookies["fin_messenger"]
        headers = {"Cookie": f"fin_messenger={cookie}"}
        started = await self.call(
            "POST",
            f"{messenger}/conversations",
            201,
            "messenger start",
            json={"text": QUESTION},
            headers=headers,
        )
        if started is None:
            return
        conversation_id = str(started.json()["id"])
        if n % 2:
            self.run.completed += 1
            return  # Fin answered; it keeps this one
        asked = await self.call(
            "POST",
            f"{messenger}/conversations/{conversation_id}/messages",
            200,
            "messenger ask for a person",
            json={"ask_for_a_person": True},
            headers=headers,
        )
        if asked is None:
            return
        if asked.json()["owner"] != "waiting":
            self.run.error(f"Fin did not hand over: {asked.json()['owner']}")
            return
        self.run.handed_over += 1
        token = self.seeds.agent_tokens[n % AGENTS]
        auth = {"Authorization": f"Bearer {token}"}
        here, there = self.apps[1 + n % 2], self.apps[2 - n % 2]  # apps 2 and 3, never app 1
        path = f"/api/v1/conversations/{conversation_id}"
        for app in (here, there):  # one typing event may reach Fin, whichever process sends it
            await self.call("POST", f"{app.base_url}{path}/typing", 202, "typing", headers=auth)
        reply = await self.call(
            "POST",
            f"{here.base_url}{path}/messages",
            201,
            "agent reply",
            json={"body": f"<p>Hello visitor {n}, a refund is on its way.</p>"},
            headers=auth,
        )
        if reply is None:
            return
        self.run.replies.append(Reply(conversation_id, str(reply.json()["id"]), cookie))
        resolved = await self.call(
            "PATCH",
            f"{there.base_url}{path}",
            200,
            "agent resolve",
            json={"status": "resolved"},
            headers=auth,
        )
        if resolved is not None:
            self.run.completed += 1

    async def probe(self, n: int) -> None:
        """Wrong passwords for one account from one address, each on the next app process."""
        address = f"127.1.{n // 250}.{1 + n % 250}"  # each probe an address of its own
        transport = httpx.AsyncHTTPTransport(local_address=address)
        statuses: list[int] = []
        async with httpx.AsyncClient(transport=transport, timeout=60) as http:
            http.cookies.set("findesk_login_csrf", CSRF)
            for attempt in range(MAX_PROBE_ATTEMPTS):
                app = self.apps[attempt % len(self.apps)]
                self.run.requests += 1
                try:
                    response = await http.post(
                        f"{app.base_url}/login",
                        data={
                            "email": self.seeds.probe_emails[n],
                            "password": f"wrong guess {attempt}",
                            "csrf_token": CSRF,
                        },
                    )
                except httpx.HTTPError as exc:
                    self.run.error(f"sign-in probe: {type(exc).__name__}: {exc}")
                    return
                statuses.append(response.status_code)
                if response.status_code not in (401, 429):
                    self.run.error(f"sign-in probe: HTTP {response.status_code}")
                    return
                if response.status_code == 429:
                    break
        self.run.probes.append(Probe(statuses))

    async def watch(self, app: ChildProcess) -> None:
        """The inbox's live stream on ``app``, as a signed-in agent; every change and its delay."""
        transport = httpx.AsyncHTTPTransport(local_address="127.0.3.1")
        async with httpx.AsyncClient(base_url=app.base_url, transport=transport) as http:
            http.cookies.set("findesk_login_csrf", CSRF)
            signed_in = await http.post(
                "/login",
                data={"email": self.seeds.watcher_email, "password": PASSWORD, "csrf_token": CSRF},
                timeout=60,
            )
            if signed_in.status_code != 303:
                self.run.error(f"watcher sign-in: HTTP {signed_in.status_code}")
                self.run.live_open.set()
                return
            timeout = httpx.Timeout(60, read=None)
            async with http.stream("GET", "/inbox/live", timeout=timeout) as stream:
                if stream.status_code != 200:
                    self.run.error(f"live stream: HTTP {stream.status_code}")
                    self.run.live_open.set()
                    return
                async for line in stream.aiter_lines():
                    if line.startswith("retry:"):
                        self.run.live_open.set()
                    elif line.startswith("data: "):
                        arrived = time.time()
                        event = json.loads(line[6:])
                        self.run.live.append(
                            LiveEvent(
                                int(event["id"]),
                                str(event["conversation_id"]),
                                str(event["actor"]),
                                arrived - _at(str(event["at"])),
                            )
                        )

    async def fin_saw(self, reply: Reply) -> bool:
        """Whether the reply is in the end user's Messenger (Fin was told, and fetched it)."""
        try:
            response = await self.http.get(
                f"{self.emulator.base_url}/messenger/api/conversations/{reply.conversation_id}",
                headers={"Cookie": f"fin_messenger={reply.visitor_cookie}"},
            )
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and any(
            m["id"] == reply.message_id for m in response.json()["messages"]
        )


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Report:
    options: Options
    seconds: float = 0.0
    run: Run = field(default_factory=Run)
    proxy_served: list[int] = field(default_factory=list)
    proxy_failures: int = 0
    outbox: dict[str, int] = field(default_factory=dict)
    replies_unseen: int = 0
    changes: int = 0
    live_missing: int = 0
    typing: dict[str, int] = field(default_factory=dict)
    logged: dict[str, dict[str, int]] = field(default_factory=dict)
    emulator_errors: list[str] = field(default_factory=list)
    exit_codes: dict[str, int | None] = field(default_factory=dict)
    cpu: dict[str, float | None] = field(default_factory=dict)

    # --- figures ---

    def delays(self, cross_process_only: bool) -> list[float]:
        return [e.delay for e in self.run.live if not cross_process_only or e.actor == "agent"]

    @property
    def lost_notifications(self) -> int:
        return self.outbox.get("pending", 0) + self.outbox.get("dead", 0) + self.replies_unseen

    @property
    def errors(self) -> int:
        return (
            sum(self.run.errors.values())
            + self.proxy_failures
            + sum(sum(kinds.values()) for kinds in self.logged.values())
            + len(self.emulator_errors)
            + sum(1 for code in self.exit_codes.values() if code not in STOPPED)
        )

    @property
    def probes_not_shared(self) -> int:
        return sum(not probe.shared for probe in self.run.probes)

    @property
    def typing_ok(self) -> bool:
        return self.typing.get("sent", 0) == self.run.handed_over and not self.typing.get(
            "failed", 0
        )

    @property
    def ok(self) -> bool:
        return (
            self.errors == 0
            and self.lost_notifications == 0
            and self.live_missing == 0
            and self.probes_not_shared == 0
            and bool(self.run.probes)
            and self.typing_ok
            and self.run.completed == self.run.started
        )

    def to_json(self) -> dict[str, Any]:
        def stats(values: list[float]) -> dict[str, Any]:
            return {
                "count": len(values),
                "p50_ms": _ms(percentile(list(values), 50)),
                "p99_ms": _ms(percentile(list(values), 99)),
                "max_ms": _ms(max(values, default=math.nan)),
                "over_1s": sum(v > LIVE_BOUND_SECONDS for v in values),
            }

        run = self.run
        return {
            "minutes": self.options.minutes,
            "rate": self.options.rate,
            "seconds": round(self.seconds, 1),
            "conversations": {
                "started": run.started,
                "completed": run.completed,
                "handed_over": run.handed_over,
                "agent_replies": len(run.replies),
                "most_in_flight": run.most_in_flight,
            },
            "requests": run.requests + sum(self.proxy_served),
            "fin_calls_per_app": self.proxy_served,
            "errors": {
                "total": self.errors,
                "http": dict(run.errors),
                "proxy": self.proxy_failures,
                "logged": self.logged,
                "emulator": self.emulator_errors[:10],
                "exit_codes": self.exit_codes,
            },
            "notifications": {
                "outbox": self.outbox,
                "replies_not_seen_by_fin": self.replies_unseen,
                "lost": self.lost_notifications,
            },
            "live": {
                "changes": self.changes,
                "received": len({e.id for e in run.live}),
                "missing": self.live_missing,
                "across_processes": stats(self.delays(True)),
                "all": stats(self.delays(False)),
            },
            "typing": {**self.typing, "expected_sent": run.handed_over},
            "sign_in": {
                "probes": len(run.probes),
                "refused_at_attempt": dict(
                    sorted(Counter(str(p.refused_at) for p in run.probes).items())
                ),
                "not_shared": self.probes_not_shared,
            },
            "cpu_seconds": {k: None if v is None else round(v, 1) for k, v in self.cpu.items()},
            "ok": self.ok,
        }


def _ms(seconds: float) -> float | None:
    return None if math.isnan(seconds) else round(seconds * 1000, 1)


def _metric_sum(text: str, name: str, label: str) -> int:
    pattern = re.compile(rf'^{name}\{{outcome="{label}"\}} ([0-9.e+]+)$', re.MULTILINE)
    return sum(int(float(value)) for value in pattern.findall(text))


async def soak(options: Options, folder: Path, report: Report) -> None:
    seconds = options.minutes * 60
    probes = max(1, int(seconds // options.probe_every))
    with throwaway_postgres() as postgres:
        url = postgres.create_database("findesk_soak")
        log("seeding")
        seeds = await asyncio.to_thread(seed, url, probes)
        webhook_key, content_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        emulator_port = free_port()
        common = {
            "database_url": url,
            "notifier_in_process": "false",
            "kb_publish_in_process": "false",
            "fin_webhook_url": f"http://127.0.0.1:{emulator_port}{WEBHOOK_PATH}/{INTEGRATION}",
            "fin_webhook_key": webhook_key,
        }
        apps = []
        for n in range(3):
            port = free_port()
            apps.append(
                ChildProcess(
                    f"app {n + 1}",
                    serve_command(port),
                    folder / f"app{n + 1}.log",
                    findesk_env(folder / "data", **common),
                    port=port,
                )
            )
        workers = [
            ChildProcess(
                f"worker {n + 1}",
                findesk_command("worker"),
                folder / f"worker{n + 1}.log",
                findesk_env(folder / "data", **common),
            )
            for n in range(2)
        ]
        proxy = RoundRobinProxy([app.base_url for app in apps])
        await proxy.start()
        emulator = ChildProcess(
            "emulator",
            findesk_command(
                "emulator",
                "--helpdesk-url",
                f"http://127.0.0.1:{proxy.port}",
                "--integration-id",
                INTEGRATION,
                "--fin-agent-id",
                seeds.fin_agent_id,
                "--port",
                str(emulator_port),
            ),
            folder / "emulator.log",
            findesk_env(
                folder / "emulator-data",
                emulator_client_id=seeds.client_id,
                emulator_client_secret=seeds.client_secret,
                emulator_webhook_key=webhook_key,
                emulator_content_token=content_token,
            ),
            port=emulator_port,
        )
        children = [*apps, *workers, emulator]
        driver = Driver(report.run, seeds, apps, emulator)
        try:
            log("starting 3 app processes, 2 workers and the Fin emulator")
            for child in children:
                child.start()
            for child in (*apps, emulator):
                await asyncio.to_thread(
                    child.wait_ready, "/messenger" if child is emulator else "/healthz", 90
                )
            await fill_library(emulator, content_token)
            await measure(options, seconds, driver, apps, url, report, children, postgres.pid)
        finally:
            await driver.close()
            for child in children:
                code, _ = await child.stop_async(30)
                report.exit_codes[child.name] = code
            await proxy.stop()
            report.proxy_served = proxy.served
            report.proxy_failures = proxy.failures
            for child in children:
                kinds = errors_logged(child.log_text())
                if kinds:
                    report.logged[child.name] = kinds
                    log(f"{child.name} logged errors; its log ends with:\n{child.log_tail()}")


async def fill_library(emulator: ChildProcess, content_token: str) -> None:
    """One page in Fin's content library, for Fin to answer the visitors' question from."""
    headers = {"Authorization": f"Bearer {content_token}"}
    async with httpx.AsyncClient(base_url=emulator.base_url, headers=headers) as http:
        source = await http.post(
            "/ai/content_import_sources",
            json={"url": "https://help.example.com", "sync_behavior": "api"},
        )
        source.raise_for_status()
        page = await http.post(
            "/ai/external_pages",
            json={
                "title": "Refunds",
                "html": REFUNDS,
                "url": "https://help.example.com/refunds",
                "locale": "en",
                "source_id": source.json()["id"],
                "external_id": "refunds",
                "ai_agent_availability": True,
                "ai_copilot_availability": False,
            },
        )
        page.raise_for_status()


def _last_activity_id(url: str) -> int:
    db = Database(url)
    try:
        with db.read_session() as session:
            return int(session.scalar(select(func.max(Activity.id))) or 0)
    finally:
        db.dispose()


def _activity_ids_after(url: str, after: int) -> set[int]:
    db = Database(url)
    try:
        with db.read_session() as session:
            return set(session.scalars(select(Activity.id).where(Activity.id > after)))
    finally:
        db.dispose()


def _outbox(url: str) -> dict[str, int]:
    db = Database(url)
    try:
        with db.read_session() as session:
            return counts_by_state(session)
    finally:
        db.dispose()


async def measure(
    options: Options,
    seconds: float,
    driver: Driver,
    apps: list[ChildProcess],
    url: str,
    report: Report,
    children: list[ChildProcess],
    postgres_pid: int | None,
) -> None:
    run = report.run
    watcher = asyncio.create_task(driver.watch(apps[0]))
    await asyncio.wait_for(run.live_open.wait(), 60)
    first_change = await asyncio.to_thread(_last_activity_id, url)
    cpu_before = _cpu(children, postgres_pid)
    tasks: list[asyncio.Task[None]] = []
    log(f"soaking for {options.minutes:g} min at {options.rate:g} conversations/s")
    started = time.perf_counter()
    conversations = int(seconds * options.rate)
    schedule = sorted(
        [(n / options.rate, "conversation", n) for n in range(conversations)]
        + [
            (options.probe_every * (n + 0.5), "probe", n)
            for n in range(int(seconds // options.probe_every) or 1)
        ]
    )
    for at, kind, n in schedule:
        delay = started + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        work = driver.conversation(n) if kind == "conversation" else driver.probe(n)
        tasks.append(asyncio.create_task(work))
        if n and n % 60 == 0 and kind == "conversation":
            log(f"  {n} conversations started, {run.in_flight} in flight")
    await asyncio.gather(*tasks)
    report.seconds = time.perf_counter() - started
    log("draining: the outbox, Fin's syncs, the live stream")
    deadline = time.monotonic() + DRAIN_SECONDS
    unseen = list(run.replies)
    while time.monotonic() < deadline:
        report.outbox = await asyncio.to_thread(_outbox, url)
        unseen = [r for r in unseen if not await driver.fin_saw(r)]
        if not unseen and not report.outbox.get("pending"):
            break
        await asyncio.sleep(0.5)
    report.replies_unseen = len(unseen)
    changes = await asyncio.to_thread(_activity_ids_after, url, first_change)
    while time.monotonic() < deadline and changes - {e.id for e in run.live}:
        await asyncio.sleep(0.2)
    report.changes = len(changes)
    report.live_missing = len(changes - {e.id for e in run.live})
    report.cpu = _cpu_used(cpu_before, _cpu(children, postgres_pid))
    watcher.cancel()
    try:
        await watcher
    except asyncio.CancelledError:
        pass
    for app in apps:
        metrics = await driver.http.get(f"{app.base_url}/metrics")
        for outcome in ("sent", "throttled", "failed", "dropped"):
            total = _metric_sum(metrics.text, "findesk_typing_events_total", outcome)
            report.typing[outcome] = report.typing.get(outcome, 0) + total
    errors = await driver.http.get(
        f"{driver.emulator.base_url}/emulator/errors",
        headers={"Authorization": f"Bearer {_content_token(driver.emulator)}"},
    )
    report.emulator_errors = [
        f"{e['operation']} {e['status']}: {e['message']}" for e in errors.json()
    ]


def _content_token(emulator: ChildProcess) -> str:
    assert emulator.env is not None
    return emulator.env["FINDESK_EMULATOR_CONTENT_TOKEN"]


def _cpu(children: list[ChildProcess], postgres_pid: int | None) -> dict[str, float | None]:
    def total(group: list[ChildProcess]) -> float | None:
        values = [child.cpu_seconds() for child in group]
        return None if any(v is None for v in values) else sum(v or 0.0 for v in values)

    return {
        "apps": total([c for c in children if c.name.startswith("app")]),
        "workers": total([c for c in children if c.name.startswith("worker")]),
        "emulator": total([c for c in children if c.name == "emulator"]),
        "postgres": None if postgres_pid is None else ProcessTree(postgres_pid).cpu_seconds(),
        "driver": time.process_time(),
        "machine": machine_busy_seconds(),
        "wall": time.perf_counter(),
    }


def _cpu_used(
    before: dict[str, float | None], after: dict[str, float | None]
) -> dict[str, float | None]:
    used: dict[str, float | None] = {}
    for key, start in before.items():
        end = after[key]
        used[key] = None if start is None or end is None else end - start
    wall = used.pop("wall") or 0.0
    machine = used.pop("machine")
    ours = [v for v in used.values() if v is not None]
    others = None if machine is None else max(0.0, machine - sum(ours))
    used["others_percent_of_machine"] = percent_of_machine(others, wall)
    return used


# --- the report ---------------------------------------------------------------------------------


def print_report(report: Report) -> None:
    data = report.to_json()
    conv, notes, live = data["conversations"], data["notifications"], data["live"]
    cross, every = live["across_processes"], live["all"]
    print(
        f"soak: {report.seconds:.0f} s at {report.options.rate:g} conversations/s on PostgreSQL; "
        "3 app processes, 2 workers, the Fin emulator"
    )
    print(
        f"  conversations  {conv['started']} started, {conv['completed']} completed, "
        f"{conv['handed_over']} handed over, {conv['agent_replies']} agent replies; "
        f"{data['requests']} requests (Fin's per app: {data['fin_calls_per_app']})"
    )
    print(f"  errors         {data['errors']['total']}")
    for what, count in data["errors"]["http"].items():
        print(f"    {count} x {what}")
    for name, kinds in data["errors"]["logged"].items():
        print(f"    {name} logged: {kinds}")
    for entry in data["errors"]["emulator"]:
        print(f"    emulator: {entry}")
    for name, code in data["errors"]["exit_codes"].items():
        if code not in STOPPED:
            print(f"    {name} exited with {code}")
    print(
        f"  notifications  outbox {notes['outbox']}; replies Fin never showed: "
        f"{notes['replies_not_seen_by_fin']}; lost: {notes['lost']}"
    )
    print(
        f"  live updates   {live['received']} of {live['changes']} changes received "
        f"({live['missing']} missing)"
    )
    for label, stats in (("across processes", cross), ("all changes", every)):
        print(
            f"    {label:<17} n={stats['count']}  p50 {stats['p50_ms']} ms  "
            f"p99 {stats['p99_ms']} ms  max {stats['max_ms']} ms  over 1 s: {stats['over_1s']}"
        )
    typing = data["typing"]
    print(
        f"  typing         sent {typing.get('sent', 0)} (expected {typing['expected_sent']}), "
        f"throttled {typing.get('throttled', 0)}, failed {typing.get('failed', 0)}"
    )
    sign_in = data["sign_in"]
    print(
        f"  sign-in limit  {sign_in['probes']} probes, refused at attempt "
        f"{sign_in['refused_at_attempt']}; not shared: {sign_in['not_shared']}"
    )
    cpu = data["cpu_seconds"]
    print(
        f"  CPU seconds    apps {cpu['apps']}, workers {cpu['workers']}, emulator "
        f"{cpu['emulator']}, PostgreSQL {cpu['postgres']}, this driver {cpu['driver']}; "
        f"other processes: {cpu['others_percent_of_machine']}% of the machine"
    )
    print("PASS" if report.ok else "FAIL")


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="how long (5)")
    parser.add_argument(
        "--rate", type=float, default=1.0, help="conversations started a second (1)"
    )
    parser.add_argument(
        "--probe-every", type=float, default=10.0, help="seconds between sign-in probes (10)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.rate <= 0 or args.probe_every <= 0:
        parser.error("--minutes, --rate and --probe-every must be > 0")
    if args.minutes * 60 / args.probe_every > 60_000:
        parser.error("too many sign-in probes: raise --probe-every")
    return Options(args.minutes, args.rate, args.probe_every, args.json)


def main(argv: Sequence[str]) -> int:
    options = parse_args(argv)
    report = Report(options)
    with bench_folder() as folder:
        asyncio.run(soak(options, folder, report))
    return finish(report.ok, options.as_json, report.to_json, lambda: print_report(report))


if __name__ == "__main__":
    run_main(main)
