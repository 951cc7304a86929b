"""Throwaway PostgreSQL cluster for tests.

Dependency-free apart from psycopg 3 (a project dependency).  Typical use in a
``conftest.py``::

    import pytest
    from tests.support.postgres import require_postgres

    @pytest.fixture(scope="session")
    def pg_server():
        server = require_postgres()
        yield server
        server.stop()

``require_postgres()`` skips the test when no PostgreSQL server binaries are
installed, except under CI (``CI=true``) where it fails instead: in CI such a
test must never be skipped silently.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["PostgresServer", "available", "find_bindir", "require_postgres"]

_REQUIRED_BINARIES = ("initdb", "postgres", "pg_ctl")
_SYSTEM_USER = "postgres"  # unprivileged account used when running as root
_DB_SUPERUSER = "postgres"
_HOST = "127.0.0.1"
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 30.0
_POLL_INTERVAL = 0.1
_SERVER_SETTINGS = {
    "listen_addresses": _HOST,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "128MB",
    "logging_collector": "off",
}


def _has_binaries(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in _REQUIRED_BINARIES)


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name  # /usr/lib/postgresql/<version>/bin
    return tuple(int(part) for part in re.findall(r"\d+", version)) or (-1,)


def find_bindir() -> tuple[Path | None, str]:
    """Locate the PostgreSQL server binaries.

    Returns ``(bindir, "")`` on success or ``(None, reason)`` otherwise.
    """
    tried: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            tried.append(f"pg_config --bindir failed ({exc})")
        else:
            if out and _has_binaries(Path(out)):
                return Path(out), ""
            tried.append(f"pg_config --bindir -> {out or '<empty>'} (no initdb/postgres/pg_ctl)")
    else:
        tried.append("pg_config not on PATH")

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for candidate in candidates:
        if _has_binaries(Path(candidate)):
            return Path(candidate), ""
    tried.append(
        "no /usr/lib/postgresql/*/bin with initdb/postgres/pg_ctl"
        + (f" (looked at {', '.join(candidates)})" if candidates else "")
    )
    return None, "PostgreSQL server binaries not found: " + "; ".join(tried)


def available() -> tuple[bool, str]:
    """Whether PostgreSQL server binaries were found, with the reason if not."""
    bindir, reason = find_bindir()
    return bindir is not None, reason


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<could not read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:]) or "<empty log>"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PostgresServer:
    """A temporary PostgreSQL cluster listening on 127.0.0.1:<free port>."""

    def __init__(self) -> None:
        self.bindir: Path | None = None
        self.port: int | None = None
        self.tmpdir: Path | None = None
        self.datadir: Path | None = None
        self.sockdir: Path | None = None
        self.logfile: Path | None = None
        self.pid: int | None = None  # postmaster pid once started
        self._proc: subprocess.Popen[bytes] | None = None
        self._as_user: pwd.struct_passwd | None = None

    # -- context manager ---------------------------------------------------
    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- helpers -------------------------------------------------------------
    def _wrap(self, cmd: list[str]) -> list[str]:
        """Prefix *cmd* so it runs as the unprivileged user when we are root."""
        if self._as_user is None:
            return cmd
        runuser = shutil.which("runuser") or (
            "/usr/sbin/runuser" if os.path.exists("/usr/sbin/runuser") else None
        )
        if runuser:
            return [runuser, "-u", self._as_user.pw_name, "--", *cmd]
        su = shutil.which("su") or "/bin/su"
        return [su, self._as_user.pw_name, "-s", "/bin/sh", "-c", shlex.join(cmd)]

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        env["LANG"] = "C"
        if self._as_user is not None:
            env["HOME"] = str(self.tmpdir) if self.tmpdir is not None else "/tmp"
            env["USER"] = env["LOGNAME"] = self._as_user.pw_name
        return env

    def _run(self, cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._wrap(cmd),
            cwd=self.tmpdir,
            env=self._env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def _connect_kwargs(self, dbname: str) -> dict[str, object]:
        return {
            "host": _HOST,
            "port": self.port,
            "user": _DB_SUPERUSER,
            "dbname": dbname,
            "connect_timeout": 2,
        }

    # -- public API ----------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL for *dbname* on this server."""
        if self.port is None:
            raise RuntimeError("PostgresServer is not started")
        return f"postgresql+psycopg://{_DB_SUPERUSER}@{_HOST}:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres", **kwargs: object):
        """Open a psycopg connection to *dbname* (caller closes it)."""
        import psycopg

        params = self._connect_kwargs(dbname)
        params.update(kwargs)
        return psycopg.connect(**params)

    def create_database(self, name: str) -> str:
        """(Re)create database *name* and return its SQLAlchemy URL."""
        from psycopg import sql

        with self.connect("postgres", autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def start(self) -> PostgresServer:
        if self._proc is not None:
            raise RuntimeError("PostgresServer already started")
        bindir, reason = find_bindir()
        if bindir is None:
            raise RuntimeError(reason)
        self.bindir = bindir

        if os.geteuid() == 0:
            try:
                self._as_user = pwd.getpwnam(_SYSTEM_USER)
            except KeyError:
                raise RuntimeError(
                    f"running as root but the {_SYSTEM_USER!r} system user does not exist; "
                    "PostgreSQL refuses to run as root (install the 'postgresql' package, "
                    f"or create it with: useradd --system --no-create-home {_SYSTEM_USER})"
                ) from None

        self.tmpdir = Path(
            tempfile.mkdtemp(prefix="findesk-pg-", dir="/tmp" if os.path.isdir("/tmp") else None)
        )
        atexit.register(self.stop)
        try:
            os.chmod(self.tmpdir, 0o755)
            if self._as_user is not None:
                os.chown(self.tmpdir, self._as_user.pw_uid, self._as_user.pw_gid)
            self.datadir = self.tmpdir / "data"
            self.sockdir = self.tmpdir / "sock"
            self.logfile = self.tmpdir / "postgres.log"
            self._run_initdb()
            self.sockdir.mkdir(mode=0o755)
            if self._as_user is not None:
                os.chown(self.sockdir, self._as_user.pw_uid, self._as_user.pw_gid)
            self._start_server()
        except BaseException:
            self.stop()
            raise
        return self

    def _run_initdb(self) -> None:
        assert self.bindir is not None and self.datadir is not None
        cmd = [
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "-A",
            "trust",
            "-U",
            _DB_SUPERUSER,
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ]
        result = self._run(cmd)
        if result.returncode != 0:
            raise RuntimeError(
                f"initdb failed (exit {result.returncode}): {shlex.join(cmd)}\n"
                f"{result.stdout}\n{result.stderr}".rstrip()
            )

    def _start_server(self) -> None:
        assert self.bindir is not None and self.logfile is not None
        last_error = ""
        for _attempt in range(3):  # retry if another process grabbed the port
            self.port = _free_port()
            settings = dict(
                _SERVER_SETTINGS, port=str(self.port), unix_socket_directories=str(self.sockdir)
            )
            cmd = [str(self.bindir / "postgres"), "-D", str(self.datadir)]
            for key, value in settings.items():
                cmd += ["-c", f"{key}={value}"]
            with open(self.logfile, "ab") as log:
                self._proc = subprocess.Popen(
                    self._wrap(cmd),
                    cwd=self.tmpdir,
                    env=self._env(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            try:
                self._wait_ready()
                return
            except RuntimeError as exc:
                last_error = str(exc)
                log_text = _tail(self.logfile, 200)
                self._shutdown()
                if "could not bind" in log_text or "Address already in use" in log_text:
                    continue
                raise
        raise RuntimeError(last_error)

    def _wait_ready(self) -> None:
        import psycopg

        assert self._proc is not None and self.logfile is not None
        deadline = time.monotonic() + _START_TIMEOUT
        last_exc: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"postgres exited with code {self._proc.returncode} during startup; "
                    f"log tail ({self.logfile}):\n{_tail(self.logfile)}"
                )
            try:
                with psycopg.connect(**self._connect_kwargs("postgres")) as conn:
                    conn.execute("select 1")
            except psycopg.OperationalError as exc:
                last_exc = exc
                time.sleep(_POLL_INTERVAL)
                continue
            self.pid = self._read_postmaster_pid()
            return
        raise RuntimeError(
            f"postgres did not accept connections on {_HOST}:{self.port} within "
            f"{_START_TIMEOUT:.0f}s (last error: {last_exc}); "
            f"log tail ({self.logfile}):\n{_tail(self.logfile)}"
        )

    def _read_postmaster_pid(self) -> int | None:
        if self.datadir is None:
            return None
        try:
            first = (self.datadir / "postmaster.pid").read_text().splitlines()[0]
            return int(first.strip())
        except (OSError, IndexError, ValueError):
            return None

    def _shutdown(self) -> None:
        """Stop the server process (if any) without removing the temp dir."""
        proc, self._proc = self._proc, None
        if proc is None and self._read_postmaster_pid() is None:
            return
        if (
            self.bindir is not None
            and self.datadir is not None
            and (self.datadir / "postmaster.pid").exists()
        ):
            try:
                self._run(
                    [
                        str(self.bindir / "pg_ctl"),
                        "stop",
                        "-D",
                        str(self.datadir),
                        "-m",
                        "immediate",
                        "-w",
                        "-t",
                        str(int(_STOP_TIMEOUT)),
                    ],
                    timeout=_STOP_TIMEOUT + 10,
                )
            except (OSError, subprocess.SubprocessError):
                pass
        if proc is not None:
            try:
                proc.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        # Last resort: if the postmaster still holds its pid file, kill it directly.
        leftover = self._read_postmaster_pid()
        if leftover is not None and _pid_alive(leftover):
            try:
                os.kill(leftover, signal.SIGKILL)
            except OSError:
                pass
            deadline = time.monotonic() + 10
            while _pid_alive(leftover) and time.monotonic() < deadline:
                time.sleep(_POLL_INTERVAL)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    def stop(self) -> None:
        """Stop the server (``pg_ctl stop -m immediate``) and remove the temp dir. Idempotent."""
        try:
            self._shutdown()
        finally:
            if self.tmpdir is not None:
                shutil.rmtree(self.tmpdir, ignore_errors=True)
                self.tmpdir = None
            atexit.unregister(self.stop)


def require_postgres() -> PostgresServer:
    """Start and return a PostgresServer, for a session-scoped pytest fixture.

    Skips the calling test when the server binaries are missing, except when
    ``CI=true``: there it fails, because under CI such a test never skips.
    The caller is responsible for calling ``stop()``.
    """
    import pytest

    ok, reason = available()
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but PostgreSQL is not available: {reason}", pytrace=False)
        pytest.skip(reason)
    return PostgresServer().start()
