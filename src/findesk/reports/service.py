"""Reports: the measures of ``schemas.Measures`` over the conversations a ``ReportQuery`` picks.

The measures are sums over precomputed per-conversation facts (``facts.py``), themselves summed
per day (``report_days``). ``refresh`` keeps both current: it recomputes the facts of every
conversation changed since the last refresh (every minute in ``findesk serve``, and before a
report whose facts are older than that), so a report is correct to the minute.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from findesk.kit.db import Database
from findesk.kit.exclusive import exclusive
from findesk.kit.settings import Settings
from findesk.kit.timeutil import utcnow
from findesk.reports import repository
from findesk.reports.facts import Waited, conversation_fact
from findesk.reports.models import ReportState
from findesk.reports.schemas import (
    DISTRIBUTION_LABELS,
    AgentRow,
    Count,
    Csat,
    Measures,
    Period,
    Report,
    ReportQuery,
)
from findesk.teams import hours
from findesk.teams import service as teams
from findesk.teams.hours import BusinessHours

ADVISORY_LOCK_KEY = 0x66696E7270  # b"finrp": one refresh per database at a time
# Changes are looked for from this long before the last refresh began: a transaction that
# changed a conversation before then but committed after it is still seen.
MARGIN = timedelta(minutes=2)
CHUNK = 500

Progress = Callable[[int, int], None]  # (done, total)


@dataclass
class RefreshResult:
    conversations: int  # facts recomputed
    days: int  # days summed again
    full: bool
    skipped: bool = False  # another refresh was running


def refresh(
    db: Database,
    settings: Settings,
    *,
    full: bool = False,
    wait: bool = True,
    progress: Progress | None = None,
) -> RefreshResult:
    """Bring the facts up to now: those of conversations changed since the last refresh, or all
    of them (``full``, or when the time zone or reopen window changed since)."""
    with exclusive(db, ADVISORY_LOCK_KEY, wait=wait, stop=threading.Event()) as held:
        if not held:
            return RefreshResult(0, 0, full, skipped=True)
        return _refresh(db, settings, full=full, progress=progress)


def _refresh(
    db: Database, settings: Settings, *, full: bool, progress: Progress | None
) -> RefreshResult:
    started = utcnow()
    timezone = ZoneInfo(settings.reports_timezone)
    window = timedelta(days=settings.reports_reopen_window_days)
    with db.transaction() as session:
        known = repository.state(session)
        full = (
            full
            or known is None
            or (
                known.timezone != settings.reports_timezone
                or known.reopen_window_days != settings.reports_reopen_window_days
            )
        )
        bots = repository.bot_ids(session)
        if full:
            ids: list[str] | None = None
            total = repository.count_all(session)
        else:
            assert known is not None
            ids = sorted(repository.changed_since(session, known.current_to - MARGIN))
            total = len(ids)

    def recompute(chunk: list[str]) -> set[date]:
        # Read and compute outside the write transaction (SQLite has one writer at a time); a
        # conversation that changes meanwhile is newer than ``started``: the next refresh has it.
        with db.read_session() as session:
            rows = _facts(session, chunk, bots, timezone, window)
            # A new conversation may be the reopen of the same user's recent Fin resolution (a
            # full refresh recomputes that one anyway).
            again = [] if full else sorted(repository.fin_resolved_of_users(
                session, {row["user_id"] for row in rows}, started - window - MARGIN, set(chunk)
            ))  # fmt: skip
            again_rows = _facts(session, again, bots, timezone, window) if again else []
        with db.transaction() as session:
            days = repository.days_of(session, chunk + again)
            repository.replace_facts(session, chunk, rows)
            if again:
                repository.replace_facts(session, again, again_rows)
            return days | {row["day"] for row in rows + again_rows}

    done = 0
    all_days: set[date] = set()
    if ids is None:  # full: page through every conversation
        after = ""
        while True:
            with db.transaction() as session:
                chunk = repository.conversation_ids(session, after=after, limit=CHUNK)
            if not chunk:
                break
            all_days |= recompute(chunk)
            after = chunk[-1]
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    else:
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            all_days |= recompute(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    # The daily sums last, in one go: a crash before here leaves the state as it was, and the
    # next refresh does it all again.
    with db.transaction() as session:
        if full:
            repository.rebuild_all_days(session)
        else:
            repository.rebuild_days(session, all_days)
        row = repository.state(session) or ReportState(id=1)
        row.timezone = settings.reports_timezone
        row.reopen_window_days = settings.reports_reopen_window_days
        row.current_to = started
        row.refreshed_at = utcnow()
        session.add(row)
    return RefreshResult(done, len(all_days), full)


def _facts(
    session: Session,
    ids: list[str],
    bots: frozenset[str],
    timezone: ZoneInfo,
    window: timedelta,
) -> list[dict[str, Any]]:
    conversations = repository.conversations(session, ids)
    events = repository.events(session, ids)
    messages = repository.messages(session, ids)
    ratings = repository.ratings(session, ids)
    opened = repository.conversations_of_users(session, {c.user_id for c in conversations})
    calendars: dict[str, BusinessHours] = {}
    rows = []
    for conversation in conversations:
        team_id = conversation.team_id
        if team_id is not None and team_id not in calendars:
            calendars[team_id] = teams.calendar_for(session, team_id)
        calendar = calendars.get(team_id) if team_id is not None else None
        fact = conversation_fact(
            conversation,
            events.get(conversation.id, []),
            messages.get(conversation.id, []),
            bots=bots,
            others_created=[
                t for t in opened.get(conversation.user_id, []) if t != conversation.created_at
            ],
            csat_score=ratings.get(conversation.id),
            timezone=timezone,
            reopen_window=window,
            waited=_in_business_hours(calendar),
        )
        rows.append(fact.row())
    return rows


def _in_business_hours(calendar: BusinessHours | None) -> Waited | None:
    """The wait for a person counted in the team's business hours (None: every second)."""
    if calendar is None or calendar == hours.ALWAYS:
        return None
    return lambda start, end: round(hours.elapsed(calendar, start, end), 3)


def refresh_if_stale(db: Database, settings: Settings) -> None:
    """Refresh unless the facts are younger than the refresh period (or another process is
    refreshing them right now)."""
    with db.read_session() as session:
        known = repository.state(session)
        fresh = known is not None and utcnow() - known.refreshed_at < timedelta(
            seconds=settings.reports_refresh_seconds
        )
    if not fresh:
        refresh(db, settings, wait=known is None)


# --- reading a report -------------------------------------------------------------------------


def _measures(sums: dict[str, Any] | None, pending: int = 0) -> Measures:
    if not sums:
        return Measures()

    def ratio(part: float, whole: float) -> float | None:
        return round(part / whole, 4) if whole else None

    def mean(total: float, count: int) -> float | None:
        return round(total / count, 1) if count else None

    conversations = int(sums["conversations"])
    fin_resolved = int(sums["fin_resolved"])
    fin_reopened = int(sums["fin_reopened"])
    ratings = [int(sums[f"csat_{who}{score}"]) for who in "fh" for score in range(1, 6)]
    rated = sum(ratings)
    return Measures(
        conversations=conversations,
        fin_resolved=fin_resolved,
        fin_resolution_rate=ratio(fin_resolved, conversations),
        durable_fin_resolutions=max(fin_resolved - fin_reopened - pending, 0),
        fin_reopened=fin_reopened,
        fin_reopen_rate=ratio(fin_reopened, fin_resolved),
        handed_over=int(sums["handed_over"]),
        handover_rate=ratio(int(sums["handed_over"]), conversations),
        taken_over=int(sums["taken_over"]),
        avg_seconds_to_take_over=mean(sums["take_over_seconds"], int(sums["taken_over"])),
        first_human_replies=int(sums["first_human_replies"]),
        avg_seconds_to_first_human_reply=mean(
            sums["first_human_reply_seconds"], int(sums["first_human_replies"])
        ),
        resolved=int(sums["resolved"]),
        avg_seconds_to_resolve=mean(sums["resolve_seconds"], int(sums["resolved"])),
        replies=int(sums["replies"]),
        human_replies=int(sums["human_replies"]),
        replies_per_conversation=ratio(int(sums["replies"]), conversations),
        csat_ratings=rated,
        csat_average=mean(sum((i % 5 + 1) * n for i, n in enumerate(ratings)), rated),
    )


def _period_start(day: date, bucket: str) -> date:
    return day - timedelta(days=day.weekday()) if bucket == "week" else day


def _added(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {k: a.get(k, 0) + b[k] for k in repository.MEASURE_COLUMNS}


def build_report(
    session: Session, settings: Settings, query: ReportQuery, now: datetime | None = None
) -> Report:
    """The report for ``query``, from the facts as of the last refresh."""
    now = now or utcnow()
    window = timedelta(days=settings.reports_reopen_window_days)
    pending = repository.pending_fin_resolutions_by_day(session, query, now - window)
    by_period: dict[date, dict[str, Any]] = {}
    pending_by_period: dict[date, int] = {}
    for row in repository.sums_by(session, query, "day"):
        day = row["key"] if isinstance(row["key"], date) else date.fromisoformat(row["key"])
        start = _period_start(day, query.bucket)
        by_period[start] = _added(by_period.get(start, {}), row)
        pending_by_period[start] = pending_by_period.get(start, 0) + pending.get(day, 0)
    totals: dict[str, Any] = {}
    for sums in by_period.values():
        totals = _added(totals, sums)
    series = [
        Period(start=start, measures=_measures(by_period[start], pending_by_period[start]))
        for start in sorted(by_period)
    ]

    def counts(group: str) -> list[Count]:
        rows = repository.sums_by(session, query, group)
        found = [
            Count(key=r["key"], label=r["key"], count=n)
            for r in rows
            if r["key"] and (n := int(r["handed_over" if group == "reason" else "conversations"]))
        ]
        return sorted(found, key=lambda c: (-c.count, c.label))

    agent_sums = [r for r in repository.sums_by(session, query, "agent_id") if r["key"]]
    names = repository.agent_names(session, [r["key"] for r in agent_sums])
    agents = []
    for row in agent_sums:
        m = _measures(row)
        agents.append(AgentRow(
            agent_id=row["key"], name=names.get(row["key"], row["key"]),
            conversations=m.conversations, human_replies=m.human_replies,
            first_human_replies=m.first_human_replies,
            avg_seconds_to_first_human_reply=m.avg_seconds_to_first_human_reply,
            resolved=m.resolved, csat_ratings=m.csat_ratings, csat_average=m.csat_average,
        ))  # fmt: skip
    agents.sort(key=lambda a: (-a.conversations, a.name))

    def csat(label: str, who: str) -> Csat:
        by_score = [int(totals.get(f"csat_{who}{score}", 0)) for score in range(1, 6)]
        rated = sum(by_score)
        average = sum((i + 1) * n for i, n in enumerate(by_score)) / rated if rated else None
        return Csat(label=label, ratings=rated, average=average and round(average, 2),
                    by_score=by_score)  # fmt: skip

    with_state = repository.state(session)
    return Report(
        query=query,
        timezone=settings.reports_timezone,
        reopen_window_days=settings.reports_reopen_window_days,
        computed_at=with_state.refreshed_at if with_state is not None else now,
        totals=_measures(totals, sum(pending_by_period.values())),
        series=series,
        handover_reasons=counts("reason"),
        channels=counts("channel"),
        response_times=[
            Count(key=f"rt{i}", label=label, count=int(totals.get(f"rt{i}", 0)))
            for i, label in enumerate(DISTRIBUTION_LABELS)
        ],
        agents=agents,
        csat=[csat("Fin only", "f"), csat("Human-handled", "h")],
    )


def conversation_rows(
    session: Session, settings: Settings, query: ReportQuery
) -> Iterator[dict[str, Any]]:
    """One row per conversation the query picks, oldest first (the per-conversation export):
    its fact (``facts.Fact``'s fields). Streams: memory stays flat for a million rows."""
    return repository.fact_rows(session, query)


def count_conversations(session: Session, settings: Settings, query: ReportQuery) -> int:
    """How many rows ``conversation_rows`` will give (for a progress bar)."""
    return repository.count_facts(session, query)
