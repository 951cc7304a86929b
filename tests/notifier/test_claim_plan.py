"""The claim's question "is this conversation still waiting out a back-off?" is asked of every
due event: on SQLite it must be one probe of the conversation's own pending events. Answered off
the (state, next_attempt_at) index instead, it walked every event due later, for each due one: a
claim with 20,000 conversations backing off in a Fin outage (each changed since) took over a
minute, holding the write lock that every commit's wake-up takes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from support.sql import statements_sent

from findesk.kit.db import Database
from findesk.kit.timeutil import utcnow
from findesk.migrations import upgrade
from findesk.notifier import repository


def test_the_back_off_check_reads_the_conversations_own_events(tmp_path: Path) -> None:
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
            )
            repository.next_due_at(session, now)
        asking = [(s, p) for s, p in sent if "EXISTS" in s and "outbox_events" in s]
        assert len(asking) == 2, sent  # the claim's and next_due_at's
        with db.engine.connect() as connection:
            for statement, params in asking:
                plan = [
                    str(row[3])
                    for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)
                ]
                inner = plan[plan.index("CORRELATED SCALAR SUBQUERY 1") + 1 :]
                assert inner and all(
                    "USING INDEX ix_outbox_events_conversation_due (conversation_id=? AND state=?"
                    in step
                    for step in inner
                ), plan
    finally:
        db.dispose()


def test_without_fin_the_claim_never_reads_fins_waiting_events(tmp_path: Path) -> None:
    """Until Fin is configured its events wait, recorded, and a worker claims only the others:
    off their own partial index, however many of Fin's wait (it used to walk them all)."""
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
                fin=False,
            )
            repository.next_due_at(session, now, fin=False)
        asking = [(s, p) for s, p in sent if "EXISTS" in s and "outbox_events" in s]
        assert len(asking) == 2, sent
        with db.engine.connect() as connection:
            for statement, params in asking:
                plan = [
                    str(row[3])
                    for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)
                ]
                assert "USING INDEX ix_outbox_events_others_due" in plan[0], plan
    finally:
        db.dispose()
