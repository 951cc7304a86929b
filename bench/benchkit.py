"""What the benchmarks in this folder share: child processes, the environment they run in, CPU
meters, latency samples, wrk (the load generator) and its report, a throwaway PostgreSQL server,
table cells and the command-line frame (signals, exit status).

A benchmark script imports it as ``from benchkit import ...``: run as ``python bench/x.py``,
the script's folder is first on ``sys.path``.

The benchmark, the findesk processes it starts and whatever else runs on the machine share the
same cores, so the figures come with how much CPU each side used, read from /proc (Linux only;
elsewhere those figures are None).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Protocol

import httpx

BUSY_MACHINE_PERCENT = 10.0  # above this, other processes skew the figures: say so


class SetupError(Exception):
    """The benchmark could not be set up: a process did not start or answered wrongly."""


def log(message: str) -> None:
    """Progress and errors go to stderr, so that stdout holds only the report (or its JSON)."""
    print(message, file=sys.stderr, flush=True)


# --- child processes ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def findesk_command(*args: str) -> list[str]:
    """``findesk <args>`` run by this interpreter, so that the venv's findesk is the one run."""
    return [sys.executable, "-m", "findesk", *args]


def serve_command(port: int) -> list[str]:
    """``findesk serve`` as a user runs it, on ``port`` of 127.0.0.1."""
    return findesk_command("serve", "--host", "127.0.0.1", "--port", str(port))


def findesk_env(data_dir: Path, **settings: str | None) -> dict[str, str]:
    """The environment of a user who chose only a data folder and ``settings`` (each one as
    ``FINDESK_<NAME>``; None leaves it unset): the FINDESK_ variables this process inherited
    are dropped, so that the developer's own settings do not change what is measured."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FINDESK_")}
    env["FINDESK_DATA_DIR"] = str(data_dir)
    env.update(
        {f"FINDESK_{key.upper()}": value for key, value in settings.items() if value is not None}
    )
    return env


def _stat_fields(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which may contain spaces)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, all threads (Linux only)."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class ChildProcess:
    """A server or worker in a child process, its output in a log file; stopped by ``stop()``
    (or ``stop_async()``)."""

    name: str  # as error messages name it
    command: list[str]
    log_path: Path
    env: dict[str, str] | None = None  # None: this process's environment
    cwd: Path | None = None  # None: this process's working folder
    port: int | None = None  # where it serves HTTP on 127.0.0.1, if it does
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise ValueError(f"{self.name} serves no HTTP")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log_path.open("wb") as log_file:
            # Own session: Ctrl-C reaches only us, and our clean-up stops the children in order.
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, probe_path: str = "/healthz", timeout: float = 60.0) -> None:
        """Poll ``probe_path`` until it answers 200, failing fast if the process dies. Blocks:
        for a process that needs nothing from this one to start."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(self.base_url + probe_path, timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise SetupError(f"{self.name} did not start; its log ends with:\n{self.log_tail()}")

    async def wait_for(
        self, condition: Callable[[], Awaitable[bool]], what: str, timeout: float
    ) -> None:
        """Poll ``condition()`` until true, failing fast if the process dies; ``what`` says what
        did not happen in time. The event loop goes on running meanwhile (a stand-in server on
        it may have to answer the process)."""
        deadline = time.perf_counter() + timeout
        while not await condition():
            if not self.alive():
                raise SetupError(f"{self.name} exited; its log ends with:\n{self.log_tail()}")
            if time.perf_counter() > deadline:
                raise SetupError(f"{what} within {timeout:g} s; log:\n{self.log_tail()}")
            await asyncio.sleep(0.05)

    def log_size(self) -> int:
        """How many bytes the log has: ``log_text(since=...)`` reads what follows."""
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_text(self, since: int = 0) -> str:
        """The log from byte ``since`` on."""
        try:
            with self.log_path.open("rb") as log_file:
                log_file.seek(since)
                return log_file.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the process, all threads (Linux only)."""
        return None if self.process is None else process_cpu_seconds(self.process.pid)

    def tree(self) -> ProcessTree:
        """The process with whatever processes it starts (worker processes, a pool)."""
        assert self.process is not None
        return ProcessTree(self.process.pid)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (uvicorn and the findesk worker shut down gracefully on it), SIGKILL after
        ``timeout`` seconds; the exit code. Blocks, so only for a process that needs nothing
        from this one to finish."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    async def stop_async(self, timeout: float) -> tuple[int | None, float]:
        """``stop()`` without blocking the event loop: the deliveries in flight are finished
        first, so a stand-in for Fin on this loop must go on answering. The exit code and how
        long the process took to exit."""
        process = self.process
        if process is None:
            return None, 0.0
        started = time.perf_counter()
        if process.poll() is None:
            process.terminate()
            try:
                while process.poll() is None:
                    if time.perf_counter() - started > timeout:
                        process.kill()
                        break
                    await asyncio.sleep(0.02)
            finally:  # also when cancelled (Ctrl-C): never leave the child behind
                if process.poll() is None:
                    process.kill()
                process.wait()
        return process.returncode, time.perf_counter() - started


def errors_logged(text: str) -> dict[str, int]:
    """The errors in a server's log, counted by kind: each traceback by its exception's type,
    each JSON log line of level error or critical by its message."""
    counts: dict[str, int] = {}
    lines = text.splitlines()
    for n, line in enumerate(lines):
        kind = None
        if line.startswith("Traceback (most recent call last):"):
            # The exception is the first line after the frames (which are indented).
            following = (later for later in lines[n + 1 :] if not later.startswith(" "))
            kind = next(following, "?").split(":", 1)[0]
        elif line.startswith("{"):
            with contextlib.suppress(ValueError, AttributeError):
                entry = json.loads(line)
                if entry.get("level") in ("error", "critical"):
                    kind = str(entry.get("msg"))
        if kind is not None:
            counts[kind] = counts.get(kind, 0) + 1
    return counts


# --- CPU ----------------------------------------------------------------------------------------


class CpuSource(Protocol):
    """Whatever CPU time is read from: a ``ChildProcess``, a ``ProcessTree``, ``ReapedChildren``."""

    def cpu_seconds(self) -> float | None: ...


@dataclass(frozen=True)
class ProcessTree:
    """A process and all its descendants: a server with worker processes, or PostgreSQL's
    postmaster and its backends. Their CPU time counts the descendants that have exited too
    (each process's reaped children are in its own stat), so nothing is lost between two
    readings (Linux only)."""

    pid: int

    def cpu_seconds(self) -> float | None:
        parents: dict[int, int] = {}
        ticks: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            fields = _stat_fields(entry)
            if fields is None:
                continue  # exited meanwhile
            # ppid; utime, stime, and the waited-for children's cutime, cstime
            parents[int(entry)] = int(fields[1])
            ticks[int(entry)] = sum(int(value) for value in fields[11:15])
        if self.pid not in ticks:
            return None
        children: dict[int, list[int]] = {}
        for pid, ppid in parents.items():
            children.setdefault(ppid, []).append(pid)
        total, todo = 0, [self.pid]
        while todo:
            pid = todo.pop()
            total += ticks[pid]
            todo.extend(children.get(pid, ()))
        return total / os.sysconf("SC_CLK_TCK")


class ReapedChildren:
    """The CPU time of this process's child processes that have exited and been waited for: a
    load generator (wrk) run to its end within a measurement."""

    def cpu_seconds(self) -> float | None:
        times = os.times()
        return times.children_user + times.children_system


def machine_busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot, all cores (Linux only)."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def percent_of_machine(cpu_seconds: float | None, seconds: float) -> float | None:
    """``cpu_seconds`` spent over ``seconds`` of wall-clock time, in percent of all the cores."""
    if cpu_seconds is None or not seconds:
        return None
    return 100 * cpu_seconds / seconds / (os.cpu_count() or 1)


@dataclass
class CpuUse:
    """CPU seconds spent over a measurement by the process under test, by this process (the
    load generator, the stand-in for Fin) and by every process outside the benchmark (a
    PostgreSQL server among them); None where /proc cannot tell."""

    target: float | None = None
    here: float = 0.0
    others: float | None = None
    elapsed: float = 0.0  # wall-clock seconds the measurement took

    @property
    def others_percent(self) -> float | None:
        """The other processes' CPU, in percent of the whole machine."""
        return percent_of_machine(self.others, self.elapsed)

    def share(self, fraction: float) -> CpuUse:
        """The part of this use that falls on ``fraction`` of the measurement."""
        return CpuUse(
            target=None if self.target is None else self.target * fraction,
            here=self.here * fraction,
            others=None if self.others is None else self.others * fraction,
            elapsed=self.elapsed * fraction,
        )


def _total(values: Iterable[float | None]) -> float | None:
    total = 0.0
    for value in values:
        if value is None:
            return None
        total += value
    return total


@dataclass(frozen=True)
class CpuSnapshot:
    """The CPU seconds spent so far; two of them give a ``CpuUse`` (``before.until(after)``)."""

    wall: float
    here: float
    machine: float | None
    target: float | None
    ours: float | None  # every child process of the benchmark, the target among them

    @classmethod
    def take(cls, target: CpuSource, ours: Sequence[CpuSource] = ()) -> CpuSnapshot:
        """``ours``: all the child processes the benchmark runs (default: ``target`` alone),
        so that "others" means processes that are not part of the benchmark at all."""
        wall, here, machine = time.perf_counter(), time.process_time(), machine_busy_seconds()
        target_seconds = target.cpu_seconds()
        return cls(
            wall=wall,
            here=here,
            machine=machine,
            target=target_seconds,
            ours=_total(p.cpu_seconds() for p in ours) if ours else target_seconds,
        )

    def until(self, after: CpuSnapshot) -> CpuUse:
        use = CpuUse(here=after.here - self.here, elapsed=after.wall - self.wall)
        if self.target is not None and after.target is not None:
            use.target = after.target - self.target
        if (
            self.machine is not None
            and after.machine is not None
            and self.ours is not None
            and after.ours is not None
        ):
            busy = after.machine - self.machine - (after.ours - self.ours) - use.here
            use.others = max(0.0, busy)
        return use


@contextlib.contextmanager
def cpu_meter(target: CpuSource, ours: Sequence[CpuSource] = ()) -> Iterator[CpuUse]:
    """Measure ``CpuUse`` over the ``with`` block (filled in at its end); ``ours`` as for
    ``CpuSnapshot.take``."""
    use = CpuUse()
    before = CpuSnapshot.take(target, ours)
    yield use
    measured = before.until(CpuSnapshot.take(target, ours))
    use.target, use.here, use.others, use.elapsed = (
        measured.target,
        measured.here,
        measured.others,
        measured.elapsed,
    )


# --- latencies ----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q from 0 to 100); sorts ``values`` in place."""
    if not values:
        return math.nan
    values.sort()
    return values[max(1, math.ceil(q / 100 * len(values))) - 1]


@dataclass(kw_only=True)
class Samples:
    """One measured series of requests: the latencies of those that succeeded, in seconds, the
    failures, how long the series took and the CPU used meanwhile. Keyword-only, so that a
    subclass puts its own fields first."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    elapsed: float = 0.0
    cpu: CpuUse | None = None

    @property
    def requests(self) -> int:
        return len(self.latencies) + self.errors

    def record(self, latency: float, error: str | None) -> None:
        if error is None:
            self.latencies.append(latency)
        else:
            self.errors += 1
            self.first_error = self.first_error or error

    def percentile_ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000

    @property
    def server_cpu_ms(self) -> float | None:
        """CPU time of the process under test per request, in milliseconds."""
        if self.cpu is None or self.cpu.target is None or not self.requests:
            return None
        return self.cpu.target / self.requests * 1000

    @property
    def others_percent(self) -> float | None:
        """CPU used by processes outside the benchmark, in percent of the whole machine."""
        return None if self.cpu is None else percent_of_machine(self.cpu.others, self.elapsed)


# --- wrk: the load generator --------------------------------------------------------------------

# Appended to every wrk script: numbers the threads (``thread_no``, a global of each thread's
# script, so that a request can be made unique with it) and, at the end, writes one line of JSON
# after wrk's own text: the counts, wrk's latency percentiles, and the totals over the threads of
# the script globals named in COUNTERS. A script that uses it must not define setup() or done().
_WRK_REPORT_LUA = """
local threads = {}
setup = function(thread)
  table.insert(threads, thread)
  thread:set("thread_no", #threads)
end
done = function(summary, latency, requests)
  local counters = {}
  for _, name in ipairs({COUNTERS}) do
    local total = 0
    for _, thread in ipairs(threads) do total = total + (thread:get(name) or 0) end
    table.insert(counters, string.format('"%s": %d', name, total))
  end
  local e = summary.errors
  io.write("JSON " .. string.format(
    '{"requests": %d, "seconds": %f, "socket_errors": %d, "status_errors": %d, '
      .. '"p50": %f, "p95": %f, "p99": %f, "max": %f, "counters": {%s}}',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50) / 1e6, latency:percentile(95) / 1e6, latency:percentile(99) / 1e6,
    latency.max / 1e6, table.concat(counters, ", ")
  ) .. "\\n")
end
"""


@dataclass
class WrkResult:
    """One wrk run, from its report line: latencies in seconds, from wrk's own histogram."""

    requests: int
    seconds: float
    socket_errors: int  # connect, read, write errors and timeouts
    status_errors: int  # answers with a status of 400 or more
    p50: float
    p95: float
    p99: float
    max: float
    counters: dict[str, int]  # the script's counters named when wrk was started

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.socket_errors + self.status_errors


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        raise SetupError("wrk is not installed (apt-get install wrk)")


def start_wrk(
    folder: Path,
    name: str,
    url: str,
    lua: str,
    *,
    connections: int,
    seconds: float,
    headers: Sequence[str] = (),
    counters: Sequence[str] = (),
    threads: int = 1,
) -> subprocess.Popen[str]:
    """Start wrk on ``url`` with the script ``lua`` (written to ``folder``/``name``.lua; empty:
    wrk's own request, a GET of ``url``), each of ``headers`` ("Name: value") sent with every
    request; ``counters``: the script's global counters to total in the report. Collect the
    result with ``wrk_result``."""
    if seconds < 1 or seconds != int(seconds):
        raise ValueError(f"wrk runs for whole seconds, not {seconds:g}")
    names = ", ".join(json.dumps(counter) for counter in counters)
    script = folder / f"{name}.lua"
    script.write_text(lua + _WRK_REPORT_LUA.replace("{COUNTERS}", "{" + names + "}"))
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{int(seconds)}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
    ]
    for header in headers:
        command += ["-H", header]
    return subprocess.Popen(
        [*command, url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def wrk_result(process: subprocess.Popen[str]) -> WrkResult:
    """Wait for a wrk started by ``start_wrk`` to end; its report."""
    output, _ = process.communicate()
    for line in output.splitlines():
        if line.startswith("JSON "):
            return WrkResult(**json.loads(line[5:]))
    raise SetupError(f"wrk gave no report (exit status {process.returncode}):\n{output}")


def run_wrk(folder: Path, name: str, url: str, lua: str, **options: Any) -> WrkResult:
    """``start_wrk`` and ``wrk_result`` in one: a run on its own."""
    return wrk_result(start_wrk(folder, name, url, lua, **options))


# --- PostgreSQL ---------------------------------------------------------------------------------


class Postgres(Protocol):
    """What a benchmark uses of the tests' throwaway server (tests/support/postgres.py)."""

    pid: int | None  # the postmaster's

    def create_database(self, name: str) -> str: ...


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[Postgres]:
    """A PostgreSQL cluster of its own, started by the tests' harness: initdb in a temporary
    folder, as the unprivileged ``postgres`` user when run as root, on a free port of 127.0.0.1,
    durability off (the same for every process measured); stopped and removed at the end."""
    path = Path(__file__).resolve().parent.parent / "tests" / "support" / "postgres.py"
    spec = importlib.util.spec_from_file_location("findesk_tests_postgres", path)
    if spec is None or spec.loader is None or not path.exists():
        raise SetupError(f"the PostgreSQL harness {path} is missing")
    harness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(harness)
    available, reason = harness.available()
    if not available:
        raise SetupError(reason)
    server = harness.PostgresServer()
    try:
        server.start()
    except RuntimeError as exc:
        raise SetupError(f"PostgreSQL did not start: {exc}") from None
    try:
        yield server  # the harness is loaded from its file: Any to mypy
    finally:
        server.stop()


# --- the report ---------------------------------------------------------------------------------


def rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def cell(value: float | None, spec: str, suffix: str = "") -> str:
    """A table cell: ``value`` formatted by ``spec``, or n/a."""
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def busiest(shares: Iterable[float | None]) -> float | None:
    """The most CPU other processes used during any one measurement (None: never known)."""
    return max((share for share in shares if share is not None), default=None)


def print_busy_warning(others_percent: float | None, prefix: str = "") -> None:
    """Say so when other processes were busy enough to skew the figures."""
    if others_percent is not None and others_percent > BUSY_MACHINE_PERCENT:
        print(
            f"{prefix}WARNING: other processes used up to {others_percent:.0f}% of the machine "
            f"during the run; the figures are skewed by them."
        )


# --- the command line ---------------------------------------------------------------------------


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Let SIGTERM stop the run as Ctrl-C does: KeyboardInterrupt unwinds the stack, so that the
    child processes and temporary files go away; under asyncio.run, which turns SIGINT into
    cancelling the benchmark first, it does so too.

    SIGINT itself gets Python's usual handler even where the shell ignores it (a background
    job), since that handler, unlike one that raises, is one asyncio.run knows how to handle;
    SIGTERM raises SIGINT rather than KeyboardInterrupt for the same reason.
    """

    def handler(_signum: int, _frame: object) -> None:
        signal.raise_signal(signal.SIGINT)

    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_term = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)


@contextlib.contextmanager
def bench_folder() -> Iterator[Path]:
    """A run's temporary folder (its resolved path), removed at the end, with SIGTERM taken as
    Ctrl-C for as long, so that the folder goes away on either."""
    with (
        sigterm_as_interrupt(),
        tempfile.TemporaryDirectory(prefix="findesk-bench-") as tmp,
    ):
        yield Path(tmp).resolve()


def finish(
    ok: bool, as_json: bool, to_json: Callable[[], Any], print_report: Callable[[], None]
) -> int:
    """A bench's end: its report (one JSON object, or its tables) and its exit status, 0, or 1
    when a check failed."""
    if as_json:
        print(json.dumps(to_json(), indent=2))
    else:
        print_report()
    if not ok:
        log("FAIL: see the report")
    return 0 if ok else 1


def run_main(main: Callable[[Sequence[str]], int]) -> NoReturn:
    """Exit with ``main``'s status for the command line's arguments: 2 when the set-up failed,
    130 when interrupted (Ctrl-C or SIGTERM)."""
    try:
        status = main(sys.argv[1:])
    # By the time these are caught, the child processes and the temporary files are gone.
    except SetupError as exc:
        log(f"error: {exc}")
        sys.exit(2)
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
    sys.exit(status)


# --- bare ASGI baselines ------------------------------------------------------------------------


async def send_json(
    send: Callable[[dict[str, Any]], Awaitable[None]], status: int, payload: Any
) -> None:
    """Answer an ASGI HTTP request with ``payload`` as JSON: what a bare baseline does."""
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def run_lifespan(
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
    on_shutdown: Callable[[], None],
) -> None:
    """An ASGI lifespan that starts at once and calls ``on_shutdown`` when the server stops."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            on_shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


# --- signing in ------------------------------------------------------------------------------

LOGIN_CSRF = "bench-csrf-token-0123456789abcdef"  # the sign-in form's double-submit token


def fin_token(base_url: str, client_id: str, client_secret: str) -> str:
    """A bearer token for Fin's OAuth client, from ``POST /oauth/token``."""
    response = httpx.post(
        f"{base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, client_secret),
    )
    if response.status_code != 200:
        raise SetupError(f"POST /oauth/token: HTTP {response.status_code}: {response.text[:300]}")
    return str(response.json()["access_token"])


def sign_in(base_url: str, email: str, password: str) -> str:
    """Sign an agent in through the sign-in form; the session cookie."""
    response = httpx.post(
        f"{base_url}/login",
        data={"email": email, "password": password, "csrf_token": LOGIN_CSRF},
        headers={"Cookie": f"findesk_login_csrf={LOGIN_CSRF}"},
    )
    session = response.cookies.get("findesk_session")
    if response.status_code != 303 or not session:
        raise SetupError(f"POST /login: HTTP {response.status_code}: {response.text[:300]}")
    return session
