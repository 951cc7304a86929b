"""Benchmark of findesk's own chat: a visitor's question to Fin's answer in their event stream.

Run: ``.venv/bin/python bench/chat.py [--visitors N] [--questions N] [--json] [--logs DIR]``

Starts ``findesk serve`` (SQLite in a temporary folder; the chat answered through the Fin Agent
API) and ``findesk emulator`` (Intercom's side, answering from one published page) as a user runs
them, each in its own process. Then ``--visitors`` (8) anonymous visitors, each with its event
stream open (``GET /chat/v1/events``), ask ``--questions`` (15) questions each, one after the
other. A question is a new conversation (``POST /chat/v1/conversations``): findesk stores it and
queues the call to Intercom in the same transaction, its delivery worker calls ``/fin/start`` on
the emulator, the emulator's Fin answers with a citation through a signed ``fin_replied``
webhook, and findesk stores the answer and sends it down the visitor's stream.

The figures: round trips a second, the median and p99 from the POST to Fin's answer in the
stream, and the CPU time per round trip of findesk, of the emulator and of this load generator
(all three share the machine's cores, so the load generator's share is printed too). The
emulator keeps Intercom's rate limit (167 calls in 10 s, 10,000 a minute): past it, findesk is
answered 429 and waits as told, so a run of more questions than that measures the limit, not
findesk. The report counts those 429s.

Exit status: 0; 1 when a question went unanswered or an error was logged; 2 when the set-up
failed; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import secrets
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from findesk.agents.service import ensure_fin_agent
from findesk.auth.service import create_client
from findesk.kit.db import Database
from findesk.kit.settings import Settings
from findesk.migrations import upgrade

from benchkit import (
    ChildProcess,
    bench_folder,
    errors_logged,
    findesk_command,
    findesk_env,
    finish,
    free_port,
    log,
    percentile,
    run_main,
    serve_command,
)

QUESTION = "How long do refunds take?"
PAGE_HTML = "<p>Refunds are paid back to the original card within 5 business days.</p>"
ANSWER_TIMEOUT = 30.0


@dataclass(frozen=True)
class Options:
    visitors: int
    questions: int
    as_json: bool
    logs: Path | None  # where to copy the two processes' logs at the end


@dataclass
class Samples:
    latencies: list[float] = field(default_factory=list)
    unanswered: int = 0


@dataclass(frozen=True)
class Result:
    round_trips: int
    unanswered: int
    seconds: float
    median_ms: float
    p99_ms: float
    cpu_ms: dict[str, float | None]  # per round trip: findesk, emulator, load generator
    rate_limited: int  # calls the emulated Intercom answered 429
    errors: dict[str, int]

    @property
    def ok(self) -> bool:
        return self.unanswered == 0 and not self.errors


@dataclass(frozen=True)
class Stack:
    findesk: ChildProcess
    emulator: ChildProcess


def seed(url: str) -> tuple[str, str, str]:
    """A migrated database with the Fin bot and an OAuth client for the emulator's Fin (it
    reads nothing in this benchmark, but it starts as Fin does): the bot's id, the client."""
    upgrade(url)
    db = Database(url)
    try:
        with db.transaction() as session:
            fin = ensure_fin_agent(session, Settings.model_fields["fin_agent_email"].default)
            client, secret = create_client(session, "bench-emulator")
            return fin.id, client.id, secret
    finally:
        db.dispose()


def start(folder: Path) -> Stack:
    url = f"sqlite:///{folder / 'findesk.db'}"
    fin_id, client_id, client_secret = seed(url)
    port, emulator_port = free_port(), free_port()
    helpdesk, intercom = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{emulator_port}"
    token, webhook_secret, content_token = (secrets.token_urlsafe(24) for _ in range(3))
    findesk = ChildProcess(
        "findesk serve",
        serve_command(port),
        folder / "findesk.log",
        env=findesk_env(
            folder,
            database_url=url,
            public_base_url=helpdesk,
            chat_channel="fin_agent_api",
            fin_agent_api_token=token,
            fin_agent_api_webhook_secret=webhook_secret,
            intercom_api_url=intercom,
            chat_anonymous_per_hour="1000000",
        ),
        port=port,
    )
    (folder / "emulator").mkdir()
    emulator = ChildProcess(
        "findesk emulator",
        findesk_command(
            "emulator",
            "--helpdesk-url",
            helpdesk,
            "--fin-agent-id",
            fin_id,
            "--integration-id",
            "bench",
            "--port",
            str(emulator_port),
        ),
        folder / "emulator.log",
        env=findesk_env(
            folder / "emulator",
            emulator_client_id=client_id,
            emulator_client_secret=client_secret,
            emulator_webhook_key=secrets.token_urlsafe(16),
            emulator_content_token=content_token,
            emulator_fin_agent_token=token,
            emulator_fin_agent_webhook_url=f"{helpdesk}/chat/hooks/fin-agent-api",
            emulator_fin_agent_webhook_secret=webhook_secret,
        ),
        port=emulator_port,
    )
    findesk.start()
    emulator.start()
    findesk.wait_ready()
    emulator.wait_ready("/messenger")
    publish_page(intercom, content_token)
    return Stack(findesk, emulator)


def publish_page(intercom: str, token: str) -> None:
    """The page Fin answers from, in the emulator's content library (as findesk's knowledge
    base would publish it)."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=intercom, headers=headers, timeout=10) as http:
        source = http.post(
            "/ai/content_import_sources",
            json={"url": "https://help.example.com", "sync_behavior": "api"},
        )
        source.raise_for_status()
        http.post(
            "/ai/external_pages",
            json={
                "title": "Refunds", "html": PAGE_HTML,
                "url": "https://help.example.com/refunds", "locale": "en",
                "source_id": source.json()["id"], "external_id": "refunds",
                "ai_agent_availability": True, "ai_copilot_availability": True,
            },
        ).raise_for_status()  # fmt: skip


async def read_stream(
    http: httpx.AsyncClient, opened: asyncio.Event, answered: dict[str, float], news: asyncio.Event
) -> None:
    """The visitor's event stream: when Fin's answer to a conversation arrives."""
    async with http.stream("GET", "/events", timeout=httpx.Timeout(30, read=None)) as response:
        response.raise_for_status()
        name = ""
        async for line in response.aiter_lines():
            if line.startswith("retry:"):
                opened.set()
            elif line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name == "message":
                data = json.loads(line[6:])
                if (data.get("author") or {}).get("type") == "fin":
                    answered.setdefault(str(data["conversation_id"]), time.perf_counter())
                    news.set()


async def visitor(base_url: str, questions: int, samples: Samples) -> None:
    async with httpx.AsyncClient(base_url=f"{base_url}/chat/v1", timeout=30) as http:
        session = await http.post("/session", json={})
        session.raise_for_status()
        http.headers["Authorization"] = f"Bearer {session.json()['token']}"
        opened, news = asyncio.Event(), asyncio.Event()
        answered: dict[str, float] = {}
        reader = asyncio.create_task(read_stream(http, opened, answered, news))
        try:
            await asyncio.wait_for(opened.wait(), 30)
            for _ in range(questions):
                began = time.perf_counter()
                made = await http.post("/conversations", json={"body": QUESTION})
                made.raise_for_status()
                cid = str(made.json()["conversation"]["id"])
                deadline = began + ANSWER_TIMEOUT
                while cid not in answered and time.perf_counter() < deadline:
                    news.clear()
                    if cid in answered:
                        break
                    try:
                        await asyncio.wait_for(news.wait(), deadline - time.perf_counter())
                    except TimeoutError:
                        break
                if cid in answered:
                    samples.latencies.append(answered[cid] - began)
                else:
                    samples.unanswered += 1
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


def cpu(process: ChildProcess) -> float | None:
    return process.tree().cpu_seconds()


def measure(stack: Stack, options: Options) -> Result:
    samples = Samples()
    base_url = stack.findesk.base_url

    async def everyone() -> None:
        await asyncio.gather(
            *(visitor(base_url, options.questions, samples) for _ in range(options.visitors))
        )

    log("warm-up: 1 visitor, 5 questions")
    asyncio.run(visitor(base_url, 5, Samples()))
    log(f"{options.visitors} visitors x {options.questions} questions")
    before = (cpu(stack.findesk), cpu(stack.emulator), time.process_time(), time.perf_counter())
    asyncio.run(everyone())
    after = (cpu(stack.findesk), cpu(stack.emulator), time.process_time(), time.perf_counter())
    trips = max(1, len(samples.latencies))

    def per_trip(i: int) -> float | None:
        start, end = before[i], after[i]
        return None if start is None or end is None else (end - start) / trips * 1000

    errors = errors_logged(stack.findesk.log_text())
    for kind, count in errors_logged(stack.emulator.log_text()).items():
        errors[f"emulator: {kind}"] = count
    latencies = samples.latencies or [0.0]
    return Result(
        round_trips=len(samples.latencies),
        unanswered=samples.unanswered,
        seconds=after[3] - before[3],
        median_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        cpu_ms={"findesk": per_trip(0), "emulator": per_trip(1), "load generator": per_trip(2)},
        rate_limited=stack.emulator.log_text().count('" 429 '),
        errors=errors,
    )


def print_report(result: Result, options: Options) -> None:
    print(
        f"findesk's chat through the Fin Agent API (emulated), SQLite, {options.visitors} "
        f"visitors x {options.questions} questions ({platform.machine()}, Python "
        f"{platform.python_version()})"
    )
    rate = result.round_trips / result.seconds if result.seconds else 0.0
    print(f"  round trips   {result.round_trips} in {result.seconds:.1f} s ({rate:.1f}/s), "
          f"{result.unanswered} unanswered")  # fmt: skip
    print(f"  question → answer in the stream: median {result.median_ms:.1f} ms, "
          f"p99 {result.p99_ms:.1f} ms")  # fmt: skip
    for name, value in result.cpu_ms.items():
        shown = "n/a" if value is None else f"{value:.1f} ms"
        print(f"  CPU per round trip, {name:<14} {shown}")
    if result.rate_limited:
        print(f"  Intercom's rate limit answered {result.rate_limited} calls 429: fewer questions "
              "measure findesk rather than the limit")  # fmt: skip
    if result.errors:
        print(f"  errors logged: {result.errors}")


def to_json(result: Result, options: Options) -> dict[str, Any]:
    return {
        "visitors": options.visitors,
        "questions": options.questions,
        "round_trips": result.round_trips,
        "unanswered": result.unanswered,
        "seconds": round(result.seconds, 2),
        "median_ms": round(result.median_ms, 2),
        "p99_ms": round(result.p99_ms, 2),
        "cpu_ms_per_round_trip": {
            k: None if v is None else round(v, 2) for k, v in result.cpu_ms.items()
        },
        "rate_limited": result.rate_limited,
        "errors": result.errors,
        "ok": result.ok,
    }


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--visitors", type=int, default=8)
    parser.add_argument("--questions", type=int, default=15)
    parser.add_argument("--json", action="store_true", dest="as_json")
    parser.add_argument("--logs", type=Path, help="copy findesk's and the emulator's logs here")
    args = parser.parse_args(argv)
    if args.visitors < 1 or args.questions < 1:
        parser.error("--visitors and --questions must be positive")
    return Options(args.visitors, args.questions, args.as_json, args.logs)


def main(argv: Sequence[str]) -> int:
    options = parse_args(argv)
    with bench_folder() as folder:
        stack = start(folder)
        try:
            result = measure(stack, options)
        finally:
            stack.emulator.stop()
            stack.findesk.stop()
            if options.logs is not None:
                options.logs.mkdir(parents=True, exist_ok=True)
                for process in (stack.findesk, stack.emulator):
                    shutil.copy(process.log_path, options.logs / process.log_path.name)
    return finish(
        result.ok,
        options.as_json,
        lambda: to_json(result, options),
        lambda: print_report(result, options),
    )


if __name__ == "__main__":
    run_main(main)
