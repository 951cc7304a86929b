"""Benchmark of the reports: the main report over 1,000,000 conversations with their history.

Run: ``.venv/bin/python bench/reports.py [--backend sqlite|postgres|both] [--conversations N]
[--samples N] [--json]``

1. Migrates a database (a SQLite file in a temporary folder, and/or a throwaway PostgreSQL
   cluster started as the tests start theirs), creates the Fin bot and 20 human agents through
   the domain services, then in bulk (multi-row INSERTs of 10,000 rows) one end user for every
   four conversations and ``--conversations`` conversations (1,000,000) spread over the last 365
   days, each with the history and messages of its story: 60% Fin answers and resolves (one in
   ten of those end users writes again within days), 30% Fin hands over with one of six reasons
   and a person takes over, replies once or twice and resolves, 10% Fin answers and it stays
   open; a quarter are tagged. About 2.5 messages and 2.5 history events a conversation.
2. The first refresh computes every conversation's facts and the daily sums (the one-off cost
   of a new database, or of changing the report time zone): its time.
3. The report a team lead opens (``service.build_report``: every measure, the series, the
   breakdowns, the agents, the distribution) over the whole year, ``--samples`` times: median
   and worst, by day, by week, filtered by an agent, and filtered by a tag (a tag filter sums
   the facts rather than the daily sums). Target: the main report under 1 s.
4. The minute's work: 1,000 conversations change (a new message and a status), then the
   refresh that brings the facts up to date: its time (what ``findesk serve`` does every minute).

Exit status: 0 when the main report (by day and by week) is under 1 s on every backend, 1
otherwise, 2 when the set-up failed, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, text, update

from findesk.agents.service import create_agent, ensure_fin_agent
from findesk.conversations.models import Conversation, ConversationEvent, ConversationTag, Message
from findesk.kit.db import Database
from findesk.kit.settings import Settings
from findesk.migrations import upgrade
from findesk.reports import service
from findesk.reports.schemas import ReportQuery
from findesk.users.models import EndUser

from benchkit import bench_folder, finish, log, run_main, throwaway_postgres

BATCH = 10_000
TARGET_S = 1.0
REASONS = ("billing", "human_requested", "bug_report", "refund", "account_access", "other")
TAGS = ("shipping", "billing", "vip", "bug")
CHANGED = 1_000


@dataclass(frozen=True)
class Options:
    backends: tuple[str, ...]
    conversations: int
    samples: int
    as_json: bool


@dataclass
class Timing:
    name: str
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def worst(self) -> float:
        return max(self.seconds)


@dataclass
class Result:
    backend: str
    seed_s: float
    messages: int
    events: int
    full_refresh_s: float
    timings: list[Timing]
    minute_refresh_s: float
    checked_conversations: int

    @property
    def ok(self) -> bool:
        main = [t for t in self.timings if t.name in ("main, by day", "main, by week")]
        return all(t.median < TARGET_S for t in main)


class Seeder:
    def __init__(self, db: Database, rng: random.Random) -> None:
        self.db = db
        self.rng = rng
        self.conversations: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.tags: list[dict[str, Any]] = []
        self.message_count = self.event_count = 0

    def flush(self) -> None:
        with self.db.transaction() as session:
            session.execute(insert(Conversation), self.conversations)
            session.execute(insert(Message), self.messages)
            session.execute(insert(ConversationEvent), self.events)
            if self.tags:
                session.execute(insert(ConversationTag), self.tags)
        self.message_count += len(self.messages)
        self.event_count += len(self.events)
        self.conversations, self.messages, self.events, self.tags = [], [], [], []

    def story(self, n: int, user: str, created: datetime, fin: str, humans: list[str]) -> None:
        rng = self.rng
        cid = f"cnv_bench{n:09d}"
        mid = 0

        def at(seconds: float) -> datetime:
            return created + timedelta(seconds=seconds)

        def message(seconds: float, agent: str | None) -> None:
            nonlocal mid
            mid += 1
            self.messages.append({
                "id": f"msg_bench{n:09d}_{mid}", "conversation_id": cid, "message_type": "comment",
                "body": "<p>Hello</p>", "plain_text": "Hello",
                "author_type": "agent" if agent else "end_user",
                "author_user_id": None if agent else user, "author_agent_id": agent,
                "visibility": "public", "attachments": [], "created_at": at(seconds),
            })  # fmt: skip

        def event(seconds: float, kind: str, actor: str, agent: str | None = None,
                  before: Any = None, after: Any = None, **detail: Any) -> None:  # fmt: skip
            self.events.append({
                "conversation_id": cid, "kind": kind, "actor": actor, "actor_agent_id": agent,
                "from_value": before, "to_value": after, "detail": detail, "at": at(seconds),
            })  # fmt: skip

        event(0, "created", "fin", after={"assignee_id": fin, "status": "open"})
        message(0, None)
        message(rng.uniform(5, 30), fin)
        roll = rng.random()
        status, assignee, last = "open", fin, 60.0
        attributes: dict[str, Any] = {}
        if roll < 0.6:
            event(120, "status", "fin", before="open", after="resolved")
            status, last = "resolved", 120.0
            if rng.random() < 0.1:
                last = rng.uniform(3600, 9 * 86400)
                message(last, None)
        elif roll < 0.9:
            reason = rng.choice(REASONS)
            attributes["fin_handover_reason"] = reason
            event(90, "handover", "fin", before=fin, after=None, reason=reason)
            human = rng.choice(humans)
            taken = 90 + rng.expovariate(1 / 600)
            event(taken, "take_over", "agent", human, before=None, after=human)
            reply = taken + rng.expovariate(1 / 300)
            message(reply, human)
            if rng.random() < 0.5:
                message(reply + rng.expovariate(1 / 900), human)
            last = reply + rng.expovariate(1 / 7200)
            event(last, "status", "agent", human, before="open", after="resolved")
            status, assignee = "resolved", human
        if rng.random() < 0.25:
            self.tags.append({"conversation_id": cid, "tag": rng.choice(TAGS), "position": 0})
        self.conversations.append({
            "id": cid, "user_id": user, "status": status, "title": None,
            "attributes": attributes, "assignee_id": assignee, "created_at": created,
            "updated_at": at(last), "last_activity_at": at(last),
        })  # fmt: skip


def seed(url: str, conversations: int) -> tuple[Database, str, int, int]:
    """The database, a human agent's id, the messages and events written."""
    upgrade(url)
    db = Database(url)
    with db.transaction() as session:
        fin = ensure_fin_agent(session, "fin@example.com").id
        humans = [
            create_agent(session, email=f"agent{i}@example.com", name=f"Agent {i}").id
            for i in range(20)
        ]
    now = datetime.now(UTC)
    users = [f"usr_bench{n:07d}" for n in range(max(conversations // 4, 1))]
    for start in range(0, len(users), BATCH):
        with db.transaction() as session:
            session.execute(insert(EndUser), [
                {"id": u, "name": "User", "email": f"{u}@example.com", "attributes": {},
                 "created_at": now, "updated_at": now}
                for u in users[start : start + BATCH]
            ])  # fmt: skip
    rng = random.Random(16)
    seeder = Seeder(db, rng)
    year = 365 * 86400
    for n in range(conversations):
        created = now - timedelta(seconds=year * (1 - n / conversations) + 600)
        seeder.story(n, users[rng.randrange(len(users))], created, fin, humans)
        if len(seeder.conversations) >= BATCH // 4:
            seeder.flush()
        if n and n % 200_000 == 0:
            log(f"  {n:,} conversations")
    if seeder.conversations:
        seeder.flush()
    with db.engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()
    return db, humans[0], seeder.message_count, seeder.event_count


def timed(name: str, samples: int, run: Callable[[], object]) -> Timing:
    timing = Timing(name)
    for _ in range(samples):
        started = time.perf_counter()
        run()
        timing.seconds.append(time.perf_counter() - started)
    return timing


def measure_backend(backend: str, url: str, options: Options) -> Result:
    log(f"seeding {options.conversations:,} conversations on {backend}…")
    started = time.perf_counter()
    db, agent_id, messages, events = seed(url, options.conversations)
    seed_s = time.perf_counter() - started
    log(f"seeded in {seed_s:.1f} s ({messages:,} messages, {events:,} history events)")
    settings = Settings(database_url=url)
    try:
        log("first refresh (every conversation's facts)…")
        started = time.perf_counter()
        last = [0.0]

        def progress(done: int, total: int) -> None:
            if time.perf_counter() - last[0] > 15:
                last[0] = time.perf_counter()
                log(f"  {done:,} / {total:,}")

        first = service.refresh(db, settings, full=True, progress=progress)
        full_refresh_s = time.perf_counter() - started
        log(f"first refresh: {full_refresh_s:.1f} s")
        today = datetime.now(UTC).date()
        year = {"start": today - timedelta(days=366), "end": today}

        def report(**fields: Any) -> Callable[[], object]:
            query = ReportQuery.model_validate({**year, **fields})

            def run() -> object:
                with db.read_session() as session:
                    return service.build_report(session, settings, query)

            return run

        with db.read_session() as session:
            checked = service.build_report(
                session, settings, ReportQuery.model_validate(year)
            ).totals.conversations
        timings = [
            timed("main, by day", options.samples, report()),
            timed("main, by week", options.samples, report(bucket="week")),
            timed("one agent, by day", options.samples, report(agent_id=agent_id)),
            timed("one tag, by day", options.samples, report(tag="vip")),
        ]
        changed = [f"cnv_bench{n:09d}" for n in random.Random(3).sample(
            range(options.conversations), min(CHANGED, options.conversations))]  # fmt: skip
        now = datetime.now(UTC)
        with db.transaction() as session:
            session.execute(
                update(Conversation).where(Conversation.id.in_(changed)).values(updated_at=now)
            )
            session.execute(insert(ConversationEvent), [
                {"conversation_id": cid, "kind": "status", "actor": "system", "from_value": "open",
                 "to_value": "closed", "detail": {}, "at": now}
                for cid in changed
            ])  # fmt: skip
        started = time.perf_counter()
        minute = service.refresh(db, settings)
        minute_refresh_s = time.perf_counter() - started
        log(f"the minute's refresh: {minute.conversations:,} conversations, {minute.days} days")
        assert first.conversations == options.conversations
        return Result(backend, seed_s, messages, events, full_refresh_s, timings,
                      minute_refresh_s, checked)  # fmt: skip
    finally:
        db.dispose()


def measure(options: Options) -> list[Result]:
    results = []
    with bench_folder() as folder, contextlib.ExitStack() as stack:
        for backend in options.backends:
            if backend == "postgres":
                postgres = stack.enter_context(throwaway_postgres())
                url = postgres.create_database("findesk_reports")
            else:
                url = f"sqlite:///{folder / 'findesk.db'}"
            results.append(measure_backend(backend, url, options))
    return results


def print_report(results: list[Result], options: Options) -> None:
    print(
        f"Reports over {options.conversations:,} conversations with their history "
        f"({platform.machine()}, Python {platform.python_version()}); "
        f"median and worst of {options.samples}"
    )
    for r in results:
        print(f"\n{r.backend}: seeded in {r.seed_s:.0f} s ({r.messages:,} messages, "
              f"{r.events:,} history events); the report counts "
              f"{r.checked_conversations:,}")  # fmt: skip
        print(f"  first refresh (all facts and daily sums): {r.full_refresh_s:.1f} s")
        for t in r.timings:
            mark = ""
            if t.name.startswith("main"):
                mark = "  ok" if t.median < TARGET_S else f"  OVER {TARGET_S:.0f} s"
            print(f"  {t.name:<20} median {t.median * 1000:8.1f} ms   worst "
                  f"{t.worst * 1000:8.1f} ms{mark}")  # fmt: skip
        print(f"  the minute's refresh ({CHANGED:,} changed conversations): "
              f"{r.minute_refresh_s * 1000:.0f} ms")  # fmt: skip


def to_json(results: list[Result], options: Options) -> dict[str, Any]:
    return {
        "conversations": options.conversations,
        "samples": options.samples,
        "backends": [
            {
                "backend": r.backend,
                "seed_s": round(r.seed_s, 1),
                "messages": r.messages,
                "history_events": r.events,
                "full_refresh_s": round(r.full_refresh_s, 1),
                "reports_ms": {
                    t.name: {"median": round(t.median * 1000, 1), "worst": round(t.worst * 1000, 1)}
                    for t in r.timings
                },
                "minute_refresh_ms": round(r.minute_refresh_s * 1000),
                "ok": r.ok,
            }
            for r in results
        ],
    }


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--conversations", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--json", action="store_true", dest="as_json")
    args = parser.parse_args(argv)
    if args.conversations < 1 or args.samples < 1:
        parser.error("--conversations and --samples must be positive")
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    return Options(backends, args.conversations, args.samples, args.as_json)


def main(argv: Sequence[str]) -> int:
    options = parse_args(argv)
    results = measure(options)
    return finish(
        all(r.ok for r in results),
        options.as_json,
        lambda: to_json(results, options),
        lambda: print_report(results, options),
    )


if __name__ == "__main__":
    run_main(main)
