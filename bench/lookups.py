"""Benchmark of a lookup Fin calls: an order by its external id, among 1,000,000 orders.

Run: ``.venv/bin/python bench/lookups.py [--backend sqlite|postgres] [--instances N]
[--users N] [--duration S] [--connections N] [--json]``

1. Migrates a database (a SQLite file in a temporary folder, or with ``--backend postgres`` a
   throwaway PostgreSQL cluster started as the tests start theirs), defines an ``Order`` type and
   a lookup (``object_by_external_id``, scoped to the end user, two fields, one redacted, the
   highest rate limit a form allows: 100,000 calls a minute) and a token through the domain
   services; then in bulk (multi-row INSERTs of 10,000 rows) ``--users`` end users (1,000) and
   ``--instances`` orders (1,000,000), each linked to one of the users; ``ANALYZE``.
2. Starts ``findesk serve`` as a child process on that database (default settings) and checks one
   call answers ``found``.
3. wrk (one thread, ``--connections`` connections: 16) calls ``GET /api/connectors/{id}`` for
   ``--duration`` s after a 2 s warm-up, each request an order picked at random with its own end
   user (so the answer is found, through the unique index and the link's key), with the token:
   requests/s, p50 and p99 from wrk's histogram, and answers other than 200. Every call writes
   its record (and checks the rate limit, a count bounded by the limit on an index), so this is
   a write per call: on SQLite, one writer at a time.

Exit status: 0 when every answer was 200, 1 otherwise, 2 when the set-up failed, 130 when
interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import insert, text

from findesk.agents.service import create_agent
from findesk.kit.db import Database
from findesk.lookups import service as lookups
from findesk.lookups.schemas import RATE_LIMIT_MAX, LookupIn
from findesk.migrations import upgrade
from findesk.objects import service as objects
from findesk.objects.models import ObjectInstance, ObjectUserLink
from findesk.objects.schemas import AttributeDef
from findesk.users.models import EndUser

from benchkit import (
    ChildProcess,
    SetupError,
    WrkResult,
    bench_folder,
    findesk_env,
    finish,
    free_port,
    log,
    require_wrk,
    run_main,
    run_wrk,
    serve_command,
    throwaway_postgres,
)

BATCH = 10_000
STATUSES = ("placed", "packed", "shipped", "delivered", "returned")
WARM_UP_S = 2


@dataclass(frozen=True)
class Options:
    backend: str
    instances: int
    users: int
    duration: int
    connections: int
    as_json: bool


@dataclass
class Report:
    options: Options
    seed_seconds: float
    result: WrkResult

    @property
    def ok(self) -> bool:
        return self.result.errors == 0 and self.result.counters.get("unexpected", 0) == 0


def seed(url: str, options: Options) -> tuple[str, str, list[str]]:
    """The lookup's id, its token, and the end users' ids (order n is user n % users')."""
    upgrade(url)
    db = Database(url)
    try:
        with db.transaction() as session:
            admin = create_agent(session, email="bench@example.com", name="Bench", role="admin")
            objects.create_type(
                session,
                admin,
                identifier="Order",
                name="Order",
                attributes=[
                    AttributeDef(name="status", type="string"),
                    AttributeDef(name="email", type="string"),
                    AttributeDef(name="total", type="decimal"),
                ],
                title_attribute=None,
            )
            lookup = lookups.create_lookup(
                session,
                admin,
                LookupIn.model_validate(
                    {
                        "name": "Order status",
                        "description": "The status of one of the end user's orders",
                        "kind": "object_by_external_id",
                        "object_type": "Order",
                        "inputs": [{"name": "order_id", "type": "string"}],
                        "fields": [{"name": "status"}, {"name": "email", "redacted": True}],
                        "rate_limit_per_minute": RATE_LIMIT_MAX,
                    }
                ),
            )
            _, token = lookups.issue_token(session, lookup.id, "bench")
            type_id = str(lookup.object_type_id)
            lookup_id = lookup.id
        now = datetime.now(UTC)
        user_ids = [f"usr_bench{n:06d}" for n in range(options.users)]
        with db.transaction() as session:
            session.execute(
                insert(EndUser),
                [{"id": u, "name": f"User {n}", "email": f"user{n}@example.com", "attributes": {},
                  "created_at": now, "updated_at": now} for n, u in enumerate(user_ids)],
            )  # fmt: skip
        rng = random.Random(7)
        for start in range(0, options.instances, BATCH):
            numbers = range(start, min(start + BATCH, options.instances))
            rows = [
                {"id": f"coi_bench{n:09d}", "type_id": type_id, "external_id": f"A-{n}",
                 "custom_attributes": {"status": rng.choice(STATUSES),
                                       "email": f"buyer{n}@example.com", "total": "19.90"},
                 "created_at": now, "updated_at": now}
                for n in numbers
            ]  # fmt: skip
            links = [
                {"user_id": user_ids[n % len(user_ids)], "instance_id": f"coi_bench{n:09d}",
                 "created_at": now}
                for n in numbers
            ]  # fmt: skip
            with db.transaction() as session:
                session.execute(insert(ObjectInstance), rows)
                session.execute(insert(ObjectUserLink), links)
            if start and start % 200_000 == 0:
                log(f"  {start:,} orders")
        with db.engine.connect() as connection:
            connection.execute(text("ANALYZE"))
            connection.commit()
        return lookup_id, token, user_ids
    finally:
        db.dispose()


def wrk_script(lookup_id: str, instances: int, user_ids: Sequence[str]) -> str:
    users = "{" + ",".join(json.dumps(u) for u in user_ids) + "}"
    return f"""
local users = {users}
local count = {instances}
local seeded = false
unexpected = 0
request = function()
  if not seeded then
    math.randomseed(os.time() + math.floor(os.clock() * 1000000))
    seeded = true
  end
  local n = math.random(0, count - 1)
  local user = users[(n % #users) + 1]
  return wrk.format("GET", "/api/connectors/{lookup_id}?order_id=A-" .. n .. "&user_id=" .. user)
end
response = function(status, headers, body)
  if status ~= 200 then unexpected = unexpected + 1 end
end
"""


def measure(options: Options) -> Report:
    require_wrk()
    with bench_folder() as folder, contextlib.ExitStack() as stack:
        if options.backend == "postgres":
            postgres = stack.enter_context(throwaway_postgres())
            url = postgres.create_database("findesk_lookups")
        else:
            url = f"sqlite:///{folder / 'findesk.db'}"
        log(f"seeding {options.instances:,} orders on {options.backend}…")
        started = time.perf_counter()
        lookup_id, token, user_ids = seed(url, options)
        seed_seconds = time.perf_counter() - started
        log(f"seeded in {seed_seconds:.1f} s")

        port = free_port()
        (folder / "data").mkdir()
        findesk = ChildProcess(
            "findesk serve",
            serve_command(port),
            folder / "findesk.log",
            env=findesk_env(folder / "data", database_url=url),
            port=port,
        )
        stack.callback(findesk.stop)
        findesk.start()
        findesk.wait_ready("/healthz", 120.0)
        probe = httpx.get(
            f"{findesk.base_url}/api/connectors/{lookup_id}",
            params={"order_id": "A-0", "user_id": user_ids[0]},
            headers={"Authorization": f"Bearer {token}"},
        )
        if probe.status_code != 200 or probe.json().get("found") is not True:
            raise SetupError(f"the probe call: HTTP {probe.status_code}: {probe.text[:300]}")
        script = wrk_script(lookup_id, options.instances, user_ids)
        headers = [f"Authorization: Bearer {token}"]
        run_wrk(folder, "warm-up", findesk.base_url, script, connections=options.connections,
                seconds=WARM_UP_S, headers=headers, counters=("unexpected",))  # fmt: skip
        result = run_wrk(
            folder, "lookups", findesk.base_url, script, connections=options.connections,
            seconds=options.duration, headers=headers, counters=("unexpected",),
        )  # fmt: skip
        return Report(options, seed_seconds, result)


def print_report(report: Report) -> None:
    o, r = report.options, report.result
    print(
        f"Lookup by external id, {o.instances:,} orders of {o.users:,} end users, on "
        f"{o.backend} ({platform.machine()}, Python {platform.python_version()})"
    )
    print(f"seeding: {report.seed_seconds:.1f} s")
    print(
        f"wrk, {o.connections} connections, {o.duration} s: {r.rate:,.0f} requests/s, "
        f"p50 {r.p50 * 1000:.1f} ms, p95 {r.p95 * 1000:.1f} ms, p99 {r.p99 * 1000:.1f} ms, "
        f"max {r.max * 1000:.1f} ms; {r.requests:,} calls, "
        f"{r.counters.get('unexpected', 0)} not 200, {r.socket_errors} socket errors"
    )


def to_json(report: Report) -> dict[str, Any]:
    o, r = report.options, report.result
    return {
        "backend": o.backend,
        "instances": o.instances,
        "users": o.users,
        "connections": o.connections,
        "duration_s": o.duration,
        "seed_s": round(report.seed_seconds, 1),
        "requests": r.requests,
        "requests_per_s": round(r.rate, 1),
        "p50_ms": round(r.p50 * 1000, 2),
        "p95_ms": round(r.p95 * 1000, 2),
        "p99_ms": round(r.p99 * 1000, 2),
        "max_ms": round(r.max * 1000, 2),
        "not_200": r.counters.get("unexpected", 0),
        "socket_errors": r.socket_errors,
    }


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--instances", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--json", action="store_true", dest="as_json")
    args = parser.parse_args(argv)
    if args.instances < 1 or args.users < 1 or args.duration < 1 or args.connections < 1:
        parser.error("--instances, --users, --duration and --connections must be positive")
    return Options(args.backend, args.instances, args.users, args.duration, args.connections,
                   args.as_json)  # fmt: skip


def main(argv: Sequence[str]) -> int:
    options = parse_args(argv)
    report = measure(options)
    return finish(report.ok, options.as_json, lambda: to_json(report),
                  lambda: print_report(report))  # fmt: skip


if __name__ == "__main__":
    run_main(main)
