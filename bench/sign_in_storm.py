"""What a burst of sign-ins does to Fin: the Fin API's latency while many agents sign in.

Run: ``.venv/bin/python bench/sign_in_storm.py [--duration S] [--sign-ins N] [--src DIR]
[--setting NAME=VALUE ...]``

1. Migrates a SQLite file in a temporary folder and seeds, through the domain services, 200
   agents with passwords and an OAuth client; starts ``findesk serve`` as a user runs it (a
   child process; ``--src DIR`` runs the findesk found in DIR's ``src`` instead, to compare
   with another version) and fetches a bearer token.
2. With wrk (Debian's package) as the load generator: ``GET /api/fin/agents`` at 4
   connections, first alone, then while a second wrk signs agents in through the sign-in form
   (right passwords, round robin over the agents, ``--sign-ins`` connections).
3. Prints, for each phase, Fin's requests per second and latency (p50, p95, p99, from wrk's
   own histogram), the sign-ins answered per second by status, and findesk's CPU per request.

Exit status: 0, or 2 when the set-up failed, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import httpx

from findesk.agents.service import create_agent, ensure_fin_agent
from findesk.auth.service import create_client
from findesk.kit.db import Database

from benchkit import (
    ChildProcess,
    WrkResult,
    bench_folder,
    cell,
    cpu_meter,
    findesk_command,
    findesk_env,
    free_port,
    log,
    print_busy_warning,
    require_wrk,
    run_main,
    serve_command,
    start_wrk,
    wrk_result,
)

PASSWORD = "correct horse battery staple"
AGENTS = 200
CSRF = "bench-csrf-token-0123456789abcdef"

# The sign-in script counts the answers by status, in globals that wrk's report totals.
STATUS_COUNTERS = {"303": "s303", "401": "s401", "429": "s429", "503": "s503", "other": "sother"}

SIGN_IN_LUA = (
    """
local n = 0
request = function()
  n = n + 1
  local email = string.format("agent%03d@bench.example", (n % AGENTS) + 1)
  local body = "email=" .. email .. "&password=PASSWORD&csrf_token=CSRF"
  return wrk.format("POST", "/login", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = "findesk_login_csrf=CSRF",
  }, body)
end
s303, s401, s429, s503, sother = 0, 0, 0, 0, 0
response = function(status, headers, body)
  if status == 303 then s303 = s303 + 1
  elseif status == 401 then s401 = s401 + 1
  elseif status == 429 then s429 = s429 + 1
  elseif status == 503 then s503 = s503 + 1
  else sother = sother + 1 end
end
""".replace("AGENTS", str(AGENTS))
    .replace("PASSWORD", PASSWORD.replace(" ", "+"))
    .replace("CSRF", CSRF)
)


def seed(url: str) -> tuple[str, str]:
    """The agents and the OAuth client, in a database the version under test has migrated."""
    db = Database(url)
    with db.transaction() as session:
        ensure_fin_agent(session, "fin@findesk.invalid")
        for i in range(1, AGENTS + 1):
            email = f"agent{i:03d}@bench.example"
            create_agent(session, email=email, name=f"Agent {i}", password=PASSWORD)
        client, secret = create_client(session, "bench")
        client_id = client.id
    db.dispose()
    return client_id, secret


def wrk(
    folder: Path,
    name: str,
    url: str,
    lua: str,
    connections: int,
    seconds: float,
    headers: Sequence[str] = (),
) -> subprocess.Popen[str]:
    counters = list(STATUS_COUNTERS.values()) if lua else []
    return start_wrk(
        folder,
        name,
        url,
        lua,
        connections=connections,
        seconds=seconds,
        headers=headers,
        counters=counters,
    )


def statuses(result: WrkResult) -> dict[str, int]:
    """The sign-ins answered, by status."""
    return {label: result.counters.get(name, 0) for label, name in STATUS_COUNTERS.items()}


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per phase")
    parser.add_argument("--sign-ins", type=int, default=40, help="sign-in connections")
    parser.add_argument("--src", type=Path, help="run the findesk in DIR/src (another version)")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a findesk setting for the server, e.g. password_check_workers=1 (repeatable)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    require_wrk()
    with bench_folder() as folder:
        url = f"sqlite:///{folder / 'findesk.db'}"
        chosen = dict(setting.split("=", 1) for setting in args.setting)
        env = findesk_env(folder, database_url=url, **chosen)
        if args.src is not None:
            env["PYTHONPATH"] = str((args.src / "src").resolve())
        subprocess.run(findesk_command("migrate"), env=env, check=True, capture_output=True)
        log("seeding 200 agents (argon2 hashes: a few seconds)")
        client_id, secret = seed(url)
        port = free_port()
        server = ChildProcess(
            "findesk", serve_command(port), folder / "serve.log", env=env, port=port
        )
        server.start()
        try:
            server.wait_ready()
            token = httpx.post(
                f"{server.base_url}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(client_id, secret),
            ).json()["access_token"]
            fin_headers = [f"Authorization: Bearer {token}"]
            fin_url = f"{server.base_url}/api/fin/agents"
            # Warm-up: the first requests load code and fill caches.
            wrk_result(wrk(folder, "warm", fin_url, "", 4, 3, fin_headers))
            report: dict[str, dict[str, float | int | dict[str, int]]] = {}
            with cpu_meter(server) as alone_cpu:
                alone = wrk_result(
                    wrk(folder, "fin-alone", fin_url, "", 4, args.duration, fin_headers)
                )
            with cpu_meter(server) as storm_cpu:
                fin_run = wrk(folder, "fin-storm", fin_url, "", 4, args.duration, fin_headers)
                storm_run = wrk(
                    folder,
                    "sign-in",
                    f"{server.base_url}/login",
                    SIGN_IN_LUA,
                    args.sign_ins,
                    args.duration,
                )
                during = wrk_result(fin_run)
                sign_ins = wrk_result(storm_run)
        finally:
            server.stop()
    for name, result, cpu, extra in (
        ("Fin alone", alone, alone_cpu, None),
        (f"Fin during {args.sign_ins} concurrent sign-ins", during, storm_cpu, sign_ins),
    ):
        entry: dict[str, float | int | dict[str, int]] = {
            "fin_requests_per_second": round(result.rate, 1),
            "fin_p50_ms": round(result.p50 * 1000, 1),
            "fin_p95_ms": round(result.p95 * 1000, 1),
            "fin_p99_ms": round(result.p99 * 1000, 1),
            "fin_errors": result.errors,
        }
        if extra is not None:
            entry["sign_ins_per_second"] = round(extra.rate, 1)
            entry["sign_in_p95_ms"] = round(extra.p95 * 1000, 1)
            entry["sign_in_statuses"] = {k: v for k, v in statuses(extra).items() if v}
        if cpu.target is not None:
            total = result.requests + (extra.requests if extra else 0)
            entry["server_cpu_ms_per_request"] = round(cpu.target / max(1, total) * 1000, 2)
        report[name] = entry
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    origin = f"from {args.src}" if args.src else "from this tree"
    print(f"findesk {origin}; {os.cpu_count()} cores")
    for name, entry in report.items():
        print(f"\n{name}")
        for key, value in entry.items():
            print(f"  {key:28} {cell(value, 'g') if isinstance(value, float) else value}")
    print_busy_warning(max(c.others_percent or 0 for c in (alone_cpu, storm_cpu)))
    return 0


if __name__ == "__main__":
    run_main(main)
