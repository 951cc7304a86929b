"""Self-test for the throwaway PostgreSQL harness in tests/support/postgres.py."""

from __future__ import annotations

import os

import psycopg

from .postgres import PostgresServer, available, require_postgres


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _libpq_url(sqlalchemy_url: str) -> str:
    prefix = "postgresql+psycopg://"
    assert sqlalchemy_url.startswith(prefix), sqlalchemy_url
    return "postgresql://" + sqlalchemy_url[len(prefix) :]


def test_available_returns_flag_and_reason() -> None:
    ok, reason = available()
    assert isinstance(ok, bool)
    assert ok == (reason == "")


def test_server_lifecycle() -> None:
    server = require_postgres()
    try:
        assert isinstance(server, PostgresServer)
        assert server.running
        pid = server.pid
        assert pid is not None and _pid_alive(pid)
        tmpdir = server.tmpdir
        assert tmpdir is not None and tmpdir.is_dir()

        assert server.url() == f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/postgres"
        url_a = server.create_database("harness_a")
        url_b = server.create_database("harness_b")
        assert url_a.endswith("/harness_a") and url_b.endswith("/harness_b")
        # Re-creating an existing database drops and recreates it.
        assert server.create_database("harness_b") == url_b

        with psycopg.connect(_libpq_url(url_b)) as conn:
            assert conn.execute("select 1").fetchone() == (1,)

        with psycopg.connect(_libpq_url(url_a)) as conn:
            conn.execute("create table t (id serial primary key, name text not null)")
            conn.execute("insert into t (name) values (%s), (%s)", ("alice", "bob"))
            conn.commit()
            rows = conn.execute("select name from t order by id").fetchall()
            assert rows == [("alice",), ("bob",)]
            assert conn.execute("show max_connections").fetchone() == ("200",)
            assert conn.execute("show fsync").fetchone() == ("off",)
    finally:
        server.stop()

    assert not server.running
    assert not _pid_alive(pid)
    assert not tmpdir.exists()
    server.stop()  # idempotent


def test_context_manager() -> None:
    ok, _ = available()
    if not ok:
        require_postgres()  # skips (or fails under CI=true)
    with PostgresServer() as server:
        pid = server.pid
        with psycopg.connect(_libpq_url(server.url())) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    assert pid is not None and not _pid_alive(pid)
