"""What one claim of the notifier costs while Fin is down: N conversations waiting out their
back-off, each changed again since (so each has an event due now that must wait), on SQLite and
PostgreSQL; and while Fin is not configured yet, with as many of its events waiting for it.

Run: ``.venv/bin/python bench/outbox_claim.py [--conversations 1000,10000,50000] [--repeat 5]
[--backend sqlite|postgres|both] [--json]``

A worker claims on every commit that records an event (and at least every poll), in a write
transaction: on SQLite that holds the database's one write lock, so every agent's write waits for
it. For each N: a fresh database (a SQLite file in a temporary folder, or a database on a
throwaway PostgreSQL cluster) gets, per conversation, an event that failed and waits out a
back-off of five minutes and a newer one due now; then ``--repeat`` times, one claim (as the
worker makes it: 8 conversations) and the "when is the next one due" query the worker sleeps on,
each in its own transaction, rolled back (on PostgreSQL after ANALYZE, as autovacuum would have
run it); then the same as a worker makes them without Fin configured (alerts and the chat's calls
only, none here). Prints the median milliseconds of each. Nothing may be claimed (every
conversation is backing off): the bench fails if something is.

Exit status: 0, 1 when a claim took something it must not, 2 when the set-up failed, 130 when
interrupted.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert

from findesk.kit.db import Database
from findesk.kit.timeutil import utcnow
from findesk.migrations import upgrade
from findesk.notifier import repository
from findesk.notifier.models import OutboxEvent

from benchkit import bench_folder, finish, log, run_main, throwaway_postgres

BACKOFF = timedelta(minutes=5)
CLAIMED_AT_ONCE = 8  # FINDESK_NOTIFIER_CONCURRENCY's default


@dataclass(frozen=True)
class Row:
    backend: str
    conversations: int
    claim_ms: float
    next_due_ms: float
    unconfigured_claim_ms: float
    unconfigured_next_due_ms: float
    claimed: int


def seed(db: Database, conversations: int) -> None:
    now = utcnow()
    waiting = {"reason": "r", "state": "pending", "attempts": 1, "kind": "fin", "created_at": now}
    with db.transaction() as session:
        for start in range(0, conversations, 10_000):
            ids = [f"conv_{i}" for i in range(start, min(start + 10_000, conversations))]
            session.execute(
                insert(OutboxEvent),
                [{**waiting, "conversation_id": c, "next_attempt_at": now + BACKOFF} for c in ids]
                + [
                    {**waiting, "conversation_id": c, "attempts": 0, "next_attempt_at": now}
                    for c in ids
                ],
            )
    if not db.is_sqlite:  # the statistics autovacuum would have gathered by then
        with db.engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE outbox_events")


def measure(db: Database, repeat: int, *, fin: bool) -> tuple[float, float, int]:
    claims, dues, claimed = [], [], 0
    for _ in range(repeat):
        now = utcnow()
        with db.transaction() as session:
            started = time.perf_counter()
            rows = repository.claim(
                session,
                owner="bench",
                now=now,
                lease_until=now + timedelta(seconds=60),
                conversations=CLAIMED_AT_ONCE,
                skip_locked=not db.is_sqlite,
                fin=fin,
            )
            claims.append(time.perf_counter() - started)
            claimed = max(claimed, len(rows))
            started = time.perf_counter()
            repository.next_due_at(session, now, fin=fin)
            dues.append(time.perf_counter() - started)
            session.rollback()
    return statistics.median(claims) * 1000, statistics.median(dues) * 1000, claimed


def run(backend: str, url: str, conversations: int, repeat: int) -> Row:
    upgrade(url)
    db = Database(url)
    try:
        seed(db, conversations)
        claim_ms, next_due_ms, claimed = measure(db, repeat, fin=True)
        bare_claim_ms, bare_next_due_ms, bare_claimed = measure(db, repeat, fin=False)
    finally:
        db.dispose()
    log(f"{backend}, {conversations:,} conversations: claim {claim_ms:.1f} ms")
    return Row(
        backend,
        conversations,
        claim_ms,
        next_due_ms,
        bare_claim_ms,
        bare_next_due_ms,
        max(claimed, bare_claimed),
    )


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--conversations",
        default="1000,10000,50000",
        help="comma-separated counts of conversations backing off (1000,10000,50000)",
    )
    parser.add_argument("--repeat", type=int, default=5, help="claims measured per count (5)")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    options = parse_args(argv)
    counts = [int(c) for c in options.conversations.split(",") if c.strip()]
    rows: list[Row] = []
    with bench_folder() as folder:
        if options.backend in ("sqlite", "both"):
            for n in counts:
                url = f"sqlite:///{Path(folder) / f'claim-{n}.db'}"
                rows.append(run("sqlite", url, n, options.repeat))
        if options.backend in ("postgres", "both"):
            with throwaway_postgres() as pg:
                for n in counts:
                    url = pg.create_database(f"claim_{n}")
                    rows.append(run("postgres", url, n, options.repeat))

    def print_report() -> None:
        print(
            "One claim while every conversation waits out its back-off, and without Fin (median ms)"
        )
        print(
            f"{'backend':<10} {'conversations':>13} {'claim':>9} {'next due':>9} "
            f"{'no Fin: claim':>14} {'next due':>9} {'claimed':>8}"
        )
        for r in rows:
            print(
                f"{r.backend:<10} {r.conversations:>13,} {r.claim_ms:>9.1f} "
                f"{r.next_due_ms:>9.1f} {r.unconfigured_claim_ms:>14.1f} "
                f"{r.unconfigured_next_due_ms:>9.1f} {r.claimed:>8}"
            )

    ok = all(r.claimed == 0 for r in rows)
    return finish(ok, options.json, lambda: [asdict(r) for r in rows], print_report)


if __name__ == "__main__":
    run_main(main)
