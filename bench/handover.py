"""Benchmark of Fin's handover with everything issue 17 hangs on it, against the bare handover.

Run: ``.venv/bin/python bench/handover.py [--backend sqlite|postgres|both] [--handovers N]
[--json]``

A handover is one transaction: Fin lets the conversation go (``update_conversation`` with
``assignee_id: null``, as the Fin API's PUT does). With issue 17 the same transaction also runs
the routing rules, gives the conversation to a team and to an online member under capacity
(locking the team's and the members' rows), writes what Fin is told of the team's hours and
expected wait (a read of its last 14 days of take-overs), starts the SLA timers in the team's
business hours, and queues the alerts (a webhook, the assignee's email). This measures both, on
the same database, one after the other:

1. Migrates a database (a SQLite file in a temporary folder, or a throwaway PostgreSQL cluster
   started as the tests start theirs) and seeds, through the services: 50 agents, 5 teams of 10
   (all online, capacity 1,000, business hours Monday to Friday 08:00-20:00 in Europe/Paris),
   20 routing rules (the last ones match: every rule is evaluated), one SLA policy a team, a
   webhook endpoint, assignment emails on; then ``--handovers`` (1,000) warm-up handovers, so
   the expected-wait query reads a full history.
2. **bare**: ``--handovers`` conversations Fin opened, handed over with no rule, team, policy or
   alert enabled (rules and policies disabled, the webhook endpoint inactive, SMTP off).
3. **routed**: as many again, with everything on.

Each handover is timed alone (opened beforehand, outside the timing), sequentially; the figures
are the median and p99 milliseconds and the process's CPU per handover.

Exit status: 0, or 2 when the set-up failed, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import platform
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update

from findesk.agents.service import create_agent, ensure_fin_agent
from findesk.alerts.models import AlertPreference, WebhookEndpoint
from findesk.conversations import service as conversations
from findesk.conversations.models import Conversation
from findesk.conversations.service import Author, NewMessage
from findesk.kit.actor import FIN
from findesk.kit.db import Database
from findesk.kit.settings import Settings
from findesk.kit.settings_in_use import using_settings
from findesk.kit.timeutil import utcnow
from findesk.migrations import upgrade
from findesk.routing import service as routing
from findesk.routing.models import RoutingRule
from findesk.routing.schemas import RuleIn
from findesk.sla import service as sla
from findesk.sla.models import SlaTimer
from findesk.sla.schemas import PolicyIn
from findesk.teams import service as teams
from findesk.users.service import create_user

from benchkit import bench_folder, finish, log, percentile, run_main, throwaway_postgres

TEAMS, MEMBERS, RULES = 5, 10, 20
FIN_EMAIL = "fin@bench.invalid"
WEEKDAYS = {day: [["08:00", "20:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


@dataclass(frozen=True)
class Timing:
    name: str
    median_ms: float
    p99_ms: float
    cpu_ms: float


@dataclass(frozen=True)
class Result:
    backend: str
    timings: list[Timing]
    # The routed ones were each given to a team's member with two running timers (first
    # response and resolution; the next response starts only when the end user writes again).
    ok: bool


@dataclass(frozen=True)
class Options:
    backends: tuple[str, ...]
    handovers: int
    as_json: bool


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def seed(db: Database) -> str:
    """The teams, rules, policies and alerts; the Fin bot's id."""
    with db.transaction() as session:
        fin = ensure_fin_agent(session, FIN_EMAIL)
        now = utcnow()
        for t in range(TEAMS):
            members = []
            for m in range(MEMBERS):
                agent = create_agent(
                    session, email=f"agent-{t}-{m}@bench.invalid", name=f"Agent {t}.{m}"
                )
                agent.presence, agent.last_seen_at, agent.capacity = "online", now, 1_000
                session.add(AlertPreference(agent_id=agent.id, email_assigned=True))
                members.append(agent.id)
            team = teams.create_team(
                session,
                name=f"Team {t}",
                member_ids=members,
                timezone="Europe/Paris",
                business_hours=WEEKDAYS,
                assignment_method="least_busy" if t % 2 else "round_robin",
            )
            sla.create_policy(
                session,
                PolicyIn(
                    name=f"Team {t}",
                    team_id=team.id,
                    first_response_minutes=30,
                    next_response_minutes=60,
                    resolution_minutes=8 * 60,
                ),
            )
        team_ids = [t.id for t in teams.list_teams(session)]
        for r in range(RULES):
            # The first rules look for what no conversation has: every rule is tried.
            wanted = f"nothing-{r}" if r < RULES - TEAMS else f"topic-{r - (RULES - TEAMS)}"
            routing.create_rule(
                session,
                RuleIn.model_validate(
                    {
                        "name": f"Rule {r}",
                        "conditions": [
                            {"field": "tag", "op": "is", "value": wanted},
                            {"field": "conversation.issue_type", "op": "exists"},
                        ],
                        "actions": {"team_id": team_ids[r % TEAMS], "priority": "high"},
                    }
                ),
            )
        session.add(
            WebhookEndpoint(
                id="whe_bench",
                url="https://hooks.example.com/findesk",
                events=["conversation.handed_over", "conversation.assigned"],
                format="json",
                secret_nonce="0" * 32,
                active=True,
            )
        )
        return fin.id


def switch(db: Database, on: bool) -> None:
    """Routing and the webhook on or off (the SLA policies are per team: with no rule to give
    a conversation a team, none applies; SMTP is off with them, see ``measure_backend``)."""
    with db.transaction() as session:
        session.execute(update(RoutingRule).values(enabled=on))
        session.execute(update(WebhookEndpoint).values(active=on))


def opened(db: Database, fin_id: str, count: int, start: int) -> list[str]:
    """Conversations Fin opened, answering them, each with a topic a rule routes on."""
    ids = []
    with db.transaction() as session:
        for i in range(start, start + count):
            user, _ = create_user(session, object_id=f"u-{i}", name=f"User {i}")
            conversation, _, _ = conversations.open_conversation(
                session,
                user_id=user.id,
                first=NewMessage(author=Author("end_user", user.id), body="<p>Help</p>"),
                actor=FIN,
                assignee_id=fin_id,
                attributes={"issue_type": "Billing"},
            )
            conversations.set_tags(session, conversation, [f"topic-{i % TEAMS}"], FIN)
            ids.append(conversation.id)
    return ids


def hand_over_each(db: Database, ids: list[str]) -> tuple[list[float], float]:
    latencies = []
    cpu_before = cpu_seconds()
    for conversation_id in ids:
        began = time.perf_counter()
        with db.transaction() as session:
            conversations.update_conversation(session, conversation_id, {"assignee_id": None}, FIN)
        latencies.append(time.perf_counter() - began)
    return latencies, cpu_seconds() - cpu_before


def outcome(db: Database, ids: list[str]) -> tuple[int, int]:
    """How many of them are in a team's queue and given to someone, and how many SLA timers
    they have."""
    with db.read_session() as session:
        given = session.scalar(
            select(func.count())
            .select_from(Conversation)
            .where(
                Conversation.id.in_(ids),
                Conversation.team_id.is_not(None),
                Conversation.assignee_id.is_not(None),
            )
        )
        timers = session.scalar(
            select(func.count()).select_from(SlaTimer).where(SlaTimer.conversation_id.in_(ids))
        )
    return given or 0, timers or 0


def timing(name: str, latencies: list[float], cpu: float) -> Timing:
    return Timing(
        name,
        percentile(latencies, 50) * 1000,
        percentile(latencies, 99) * 1000,
        cpu / len(latencies) * 1000,
    )


def measure_backend(backend: str, url: str, options: Options) -> Result:
    upgrade(url)
    db = Database(url)
    try:
        fin_id = seed(db)
        n = options.handovers
        smtp_on = Settings(smtp_host="smtp.bench.invalid", database_url=url)
        smtp_off = Settings(smtp_host=None, database_url=url)
        with using_settings(smtp_on):
            log(f"{backend}: {n} warm-up handovers")
            hand_over_each(db, opened(db, fin_id, n, 0))
        switch(db, on=False)
        with using_settings(smtp_off):
            log(f"{backend}: {n} bare handovers")
            bare_ids = opened(db, fin_id, n, n)
            bare = hand_over_each(db, bare_ids)
        switch(db, on=True)
        with using_settings(smtp_on):
            log(f"{backend}: {n} routed handovers")
            routed_ids = opened(db, fin_id, n, 2 * n)
            routed = hand_over_each(db, routed_ids)
        ok = outcome(db, bare_ids) == (0, 0) and outcome(db, routed_ids) == (n, 2 * n)
        if not ok:
            log(f"{backend}: (given, timers): bare {outcome(db, bare_ids)}, "
                f"routed {outcome(db, routed_ids)}")  # fmt: skip
        return Result(backend, [timing("bare", *bare), timing("routed", *routed)], ok)
    finally:
        db.dispose()


def measure(options: Options) -> list[Result]:
    results = []
    with bench_folder() as folder:
        for backend in options.backends:
            if backend == "postgres":
                with throwaway_postgres() as pg:
                    results.append(
                        measure_backend(backend, pg.create_database("handover"), options)
                    )
            else:
                url = f"sqlite:///{folder / 'findesk.db'}"
                results.append(measure_backend(backend, url, options))
    return results


def print_report(results: list[Result], options: Options) -> None:
    print(
        f"Fin's handover, one transaction, {options.handovers:,} of each, sequential "
        f"({platform.machine()}, Python {platform.python_version()})"
    )
    for r in results:
        print(f"\n{r.backend}:")
        for t in r.timings:
            print(f"  {t.name:<7} median {t.median_ms:6.1f} ms   p99 {t.p99_ms:6.1f} ms   "
                  f"CPU {t.cpu_ms:6.1f} ms a handover")  # fmt: skip


def to_json(results: list[Result], options: Options) -> dict[str, Any]:
    return {
        "handovers": options.handovers,
        "backends": [
            {
                "backend": r.backend,
                "ok": r.ok,
                "timings": {
                    t.name: {
                        "median_ms": round(t.median_ms, 2),
                        "p99_ms": round(t.p99_ms, 2),
                        "cpu_ms": round(t.cpu_ms, 2),
                    }
                    for t in r.timings
                },
            }
            for r in results
        ],
    }


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--handovers", type=int, default=1_000)
    parser.add_argument("--json", action="store_true", dest="as_json")
    args = parser.parse_args(argv)
    if args.handovers < 1:
        parser.error("--handovers must be positive")
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    return Options(backends, args.handovers, args.as_json)


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
