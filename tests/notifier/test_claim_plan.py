"""How a worker's claim reads the outbox on SQLite, where it holds the one write lock (every
commit that records an event wakes it).

The claim's question "is this conversation still waiting out a back-off?" is asked of every due
event: it must be one probe of the conversation's own pending events. Answered off the
(state, next_attempt_at) index instead, it walked every event due later, for each due one: a
claim with 10,000 conversations backing off in a Fin outage (each changed since) took 7 s.
Without Fin configured, only the other kinds are claimed: off their own index, never walking
Fin's events that wait for it (bench/outbox_claim.py has the figures)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from support.sql import statements_sent

from findesk.kit.db import Database
from findesk.kit.timeutil import utcnow
from findesk.migrations import upgrade
from findesk.notifier import repository


def claim_plans(tmp_path: Path, *, fin: bool) -> list[list[str]]:
    """The query plan of each of a claim's statements that asks about back-offs (the claim's
    own and the next-due query's), step by step."""
    url = f"sqlite:///{tmp_path / 'claim.db'}"
    upgrade(url)
    db = Database(url)
    try:
        now = utcnow()
        with statements_sent(db.engine) as sent, db.transaction() as session:
            repository.claim(
                session,
                owner="w",
                now=now,
                lease_until=now + timedelta(seconds=60),
                conversations=8,
                skip_locked=False,
                fin=fin,
            )
            repository.next_due_at(session, now, fin=fin)
        asking = [(s, p) for s, p in sent if "EXISTS" in s and "outbox_events" in s]
        assert len(asking) == 2, sent
        with db.engine.connect() as connection:
            return [
                [str(row[3]) for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {s}", p)]
                for s, p in asking
            ]
    finally:
        db.dispose()


def test_the_back_off_check_reads_the_conversations_own_events(tmp_path: Path) -> None:
    for plan in claim_plans(tmp_path, fin=True):
        inner = plan[plan.index("CORRELATED SCALAR SUBQUERY 1") + 1 :]
        assert inner and all(
            "USING INDEX ix_outbox_events_conversation_due (conversation_id=? AND state=?" in step
            for step in inner
        ), plan


def test_without_fin_the_claim_never_reads_fins_waiting_events(tmp_path: Path) -> None:
    for plan in claim_plans(tmp_path, fin=False):
        assert "USING INDEX ix_outbox_events_others_due" in plan[0], plan
