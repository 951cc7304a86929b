"""What the benchmarks in this folder share: child processes, the environment they run in, CPU
meters, latency samples, table cells and the command-line frame (signals, exit status).

A benchmark script imports it as ``from benchkit import ...``: run as ``python bench/x.py``,
the script's folder is first on ``sys.path``.

The benchmark, the findesk processes it starts and whatever else runs on the machine share the
same cores, so the figures come with how much CPU each side used, read from /proc (Linux only;
elsewhere those figures are None).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

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


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, all threads (Linux only)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may contain spaces
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

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the process, all threads (Linux only)."""
        return None if self.process is None else process_cpu_seconds(self.process.pid)

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


# --- CPU ----------------------------------------------------------------------------------------


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
    def take(cls, target: ChildProcess, ours: Sequence[ChildProcess] = ()) -> CpuSnapshot:
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
def cpu_meter(target: ChildProcess, ours: Sequence[ChildProcess] = ()) -> Iterator[CpuUse]:
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
