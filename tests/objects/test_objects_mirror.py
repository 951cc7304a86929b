"""Custom objects of types marked "mirror to Intercom" kept in step with the emulated Custom
Object Instances API on loopback, behind the fault-injecting tap (``support.tap``)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator.content_api_server import TOKEN, ServedApp
from support.receiver import eventually
from support.server import LiveServer, database_url
from support.tap import Tap, Traffic

from findesk.agents.service import create_agent
from findesk.auth.service import create_agent_token
from findesk.emulator.content_api import create_content_api
from findesk.emulator.objects_api import Instance, ObjectStore, objects_store_of
from findesk.kit.db import Database
from findesk.kit.settings import Settings
from findesk.migrations import upgrade
from findesk.objects import service
from findesk.objects.mirror import Mirror
from findesk.objects.models import IntercomObjectDelete, ObjectInstance, ObjectType
from findesk.objects.schemas import InstanceIn

ORDERS = "/custom_object_instances/Order"


class Intercom:
    def __init__(self, db_path: Path, rate_limit: int = 100_000, window: float = 10.0) -> None:
        app = create_content_api(
            f"sqlite:///{db_path}", [TOKEN], rate_limit, window, object_types=["Order"]
        )
        self.traffic = Traffic(default_path=ORDERS)
        app.add_middleware(Tap, traffic=self.traffic)
        self.served = ServedApp(app)
        self.base_url = self.served.base_url
        self.store: ObjectStore = objects_store_of(app)

    def orders(self) -> dict[str, Instance]:
        found = self.store.instances("Order")
        assert len(found) == len({i.external_id for i in found})  # one per external id
        return {i.external_id: i for i in found}

    def stop(self) -> None:
        self.served.stop()


@pytest.fixture
def intercom(tmp_path: Path) -> Iterator[Intercom]:
    emulated = Intercom(tmp_path / "intercom.db")
    yield emulated
    emulated.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def mirror_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = database_url(request.param, request, tmp_path)
    upgrade(url)
    db = Database(url)
    yield db
    db.dispose()


def new_type(db: Database, identifier: str = "Order", *, mirror: bool = True) -> None:
    with db.transaction() as session:
        session.add(
            ObjectType(
                identifier=identifier,
                name=identifier,
                attributes=[
                    {"name": "status", "type": "string", "label": None},
                    {"name": "total", "type": "integer", "label": None},
                ],
                mirror_to_intercom=mirror,
            )
        )


def put(db: Database, external_id: str, identifier: str = "Order", **attributes: Any) -> None:
    body = InstanceIn(
        external_id=external_id,
        external_created_at=1_700_000_000,
        custom_attributes=attributes or {"status": "new", "total": 1},
    )
    with db.transaction() as session:
        service.upsert_instance(session, identifier, body)


def remove(db: Database, external_id: str, identifier: str = "Order") -> None:
    with db.transaction() as session:
        service.delete_by_external_id(session, identifier, external_id)


def instance(db: Database, external_id: str) -> ObjectInstance:
    with db.read_session() as session:
        found = session.query(ObjectInstance).filter_by(external_id=external_id).one()
        return found


def tombstones(db: Database) -> list[tuple[str, str]]:
    with db.read_session() as session:
        return [(t.type_identifier, t.external_id) for t in session.query(IntercomObjectDelete)]


def mirror_for(db: Database, intercom: Intercom, **options: Any) -> Mirror:
    settings = Settings(
        database_url=db.url,
        intercom_access_token=TOKEN,
        intercom_api_url=intercom.base_url,
        kb_retry_seconds=30,
    )
    options.setdefault("retry_delays", (0.01, 0.02))
    return Mirror(db, settings, **options)


# --- the main flow (SQLite and PostgreSQL) ----------------------------------------------------


def test_instances_are_upserted_updated_and_deleted_and_unchanged_ones_cost_nothing(
    mirror_db: Database, intercom: Intercom
) -> None:
    db, traffic = mirror_db, intercom.traffic
    new_type(db)
    new_type(db, "Note", mirror=False)
    for n in range(3):
        put(db, f"ord_{n}", status="new", total=n)
    put(db, "note_1", "Note", status="kept here")

    with mirror_for(db, intercom) as mirror:
        first = mirror.sync()
        assert first.ok and first.sent == 3 and first.requests == 3, first
        orders = intercom.orders()
        assert sorted(orders) == ["ord_0", "ord_1", "ord_2"]  # the Note type is not mirrored
        assert orders["ord_2"].custom_attributes == {"status": "new", "total": 2}
        assert orders["ord_2"].external_created_at == 1_700_000_000
        row = instance(db, "ord_2")
        assert row.intercom_id == str(orders["ord_2"].id) and not row.intercom_pending
        assert row.intercom_hash is not None and row.intercom_error is None

        mark = traffic.mark()
        assert mirror.sync().requests == 0 and traffic.count(mark) == 0

        put(db, "ord_1", status="paid")
        mark = traffic.mark()
        assert mirror.sync().sent == 1
        [hit] = traffic.since(mark)
        assert (hit.method, hit.path) == ("POST", ORDERS)
        assert hit.json() == {
            "external_id": "ord_1",
            "external_created_at": 1_700_000_000,
            "external_updated_at": None,
            "custom_attributes": {"status": "paid", "total": 1},
        }
        assert intercom.orders()["ord_1"].id == orders["ord_1"].id

        # A delete leaves a tombstone in its transaction; the pass deletes Intercom's copy.
        remove(db, "ord_0")
        assert tombstones(db) == [("Order", "ord_0")]
        mark = traffic.mark()
        assert mirror.sync().deleted == 1
        [hit] = traffic.since(mark)
        assert (hit.method, hit.path, hit.status) == ("DELETE", ORDERS, 200)
        assert "ord_0" not in intercom.orders() and tombstones(db) == []

        # Deleted and made again before a pass: updated in place, not deleted.
        remove(db, "ord_2")
        put(db, "ord_2", status="again", total=5)
        mark = traffic.mark()
        summary = mirror.sync()
        assert (summary.sent, summary.deleted) == (1, 0), summary
        assert traffic.count(mark, method="DELETE") == 0
        assert intercom.orders()["ord_2"].custom_attributes == {"status": "again", "total": 5}
        assert tombstones(db) == []


def test_turning_the_flag_on_sends_every_instance(mirror_db: Database, intercom: Intercom) -> None:
    new_type(mirror_db, mirror=False)
    for n in range(4):
        put(mirror_db, f"ord_{n}")
    with mirror_for(mirror_db, intercom) as mirror:
        assert mirror.sync().requests == 0
        with mirror_db.transaction() as session:
            service.set_mirror(session, "Order", True)
        assert mirror.sync().sent == 4
        assert sorted(intercom.orders()) == [f"ord_{n}" for n in range(4)]
        full = mirror.sync(full=True)
        assert full.sent == 4 and len(intercom.orders()) == 4, full


# --- faults -----------------------------------------------------------------------------------


def test_a_429_storm_loses_and_duplicates_nothing(mirror_db: Database, tmp_path: Path) -> None:
    intercom = Intercom(tmp_path / "limited.db", rate_limit=5, window=1.0)
    try:
        new_type(mirror_db)
        ids = [f"ord_{n}" for n in range(15)]
        for external_id in ids:
            put(mirror_db, external_id)
        with mirror_for(mirror_db, intercom, pace=False) as mirror:
            summary = mirror.sync()
        assert summary.ok and summary.sent == 15 and summary.rate_limited > 0, summary
        assert sorted(intercom.orders()) == sorted(ids)
        assert intercom.traffic.busiest_window() <= 5
    finally:
        intercom.stop()


def test_5xx_are_retried_later_and_every_change_and_delete_arrives(
    mirror_db: Database, intercom: Intercom
) -> None:
    new_type(mirror_db)
    put(mirror_db, "ord_1")
    put(mirror_db, "ord_2")
    traffic = intercom.traffic
    with mirror_for(mirror_db, intercom) as mirror:
        traffic.fail(503, method="POST", path=ORDERS, times=2)
        assert mirror.sync().sent == 2  # retried within the pass
        assert [h.status for h in traffic.since() if h.method == "POST"][:3] == [503, 503, 200]

        put(mirror_db, "ord_1", status="changed")
        remove(mirror_db, "ord_2")
        traffic.fail(503, method="POST", path=ORDERS)
        traffic.fail(500, method="DELETE", path=ORDERS)
        failed = mirror.sync()
        assert failed.failed == 2 and not failed.ok, failed
        row = instance(mirror_db, "ord_1")
        assert row.intercom_pending and row.intercom_attempts == 1
        assert row.intercom_error is not None and "503" in row.intercom_error
        assert row.intercom_next_attempt_at is not None
        assert tombstones(mirror_db) == [("Order", "ord_2")]
        # Not due yet: a background pass leaves them alone.
        mark = traffic.mark()
        assert mirror.sync(due_only=True).requests == 0 and traffic.count(mark) == 0

        traffic.clear_faults()
        summary = mirror.sync()
        assert summary.ok and (summary.sent, summary.deleted) == (1, 1), summary
        assert intercom.orders()["ord_1"].custom_attributes["status"] == "changed"
        assert "ord_2" not in intercom.orders() and tombstones(mirror_db) == []
        row = instance(mirror_db, "ord_1")
        assert not row.intercom_pending and row.intercom_error is None


def test_a_type_intercom_does_not_know_is_reported(mirror_db: Database, intercom: Intercom) -> None:
    new_type(mirror_db, "Subscription")
    put(mirror_db, "sub_1", "Subscription")
    with mirror_for(mirror_db, intercom) as mirror:
        summary = mirror.sync()
    assert summary.failed == 1, summary
    row = instance(mirror_db, "sub_1")
    assert row.intercom_error is not None and "TypeNotFound" in row.intercom_error
    assert not row.intercom_pending  # not retried until it changes or --full


# --- in the background, set through the API -------------------------------------------------


def test_serve_mirrors_in_the_background_once_the_api_turns_the_flag_on(
    tmp_path: Path, intercom: Intercom
) -> None:
    url = f"sqlite:///{tmp_path / 'served.db'}"
    overrides = {"intercom_access_token": TOKEN, "intercom_api_url": intercom.base_url}
    server = LiveServer(url, overrides).start()
    try:
        with server.db.transaction() as session:
            admin = create_agent(
                session, email=f"admin-{uuid.uuid4().hex[:6]}@example.com", name="A", role="admin"
            )
            token = create_agent_token(session, admin)
        with httpx.Client(
            base_url=f"{server.base_url}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ) as api:
            created = api.post(
                "/custom_object_types",
                json={"identifier": "Order", "attributes": [{"name": "status", "type": "string"}]},
            )
            assert created.status_code == 201 and created.json()["mirror_to_intercom"] is False
            body = {"external_id": "ord_9", "custom_attributes": {"status": "new"}}
            assert api.post("/custom_object_instances/Order", json=body).status_code == 200
            started = time.monotonic()
            patched = api.patch("/custom_object_types/Order", json={"mirror_to_intercom": True})
            assert patched.status_code == 200 and patched.json()["mirror_to_intercom"] is True
            assert eventually(lambda: "ord_9" in intercom.orders(), timeout=15)
            assert time.monotonic() - started < 5  # woken by the commit, not a poll

            assert api.delete("/custom_object_instances/Order/ord_9").status_code in (200, 404)
            api.delete("/custom_object_instances/Order", params={"external_id": "ord_9"})
            assert eventually(lambda: "ord_9" not in intercom.orders(), timeout=15)
    finally:
        server.stop()


# --- the command line -------------------------------------------------------------------------


def test_cli_set_mirror_and_mirror(
    tmp_path: Path, intercom: Intercom, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from findesk import cli
    from findesk.kit.settings import get_settings

    for name in list(os.environ):
        if name.startswith("FINDESK_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FINDESK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FINDESK_INTERCOM_API_URL", intercom.base_url)
    db_url = f"sqlite:///{tmp_path / 'findesk.db'}"
    upgrade(db_url)
    db = Database(db_url)
    runner = CliRunner()
    get_settings.cache_clear()
    try:
        new_type(db, mirror=False)
        put(db, "ord_1")
        unknown = runner.invoke(cli.app, ["objects", "set-mirror", "Nope"])
        assert unknown.exit_code == 1 and "Nope" in unknown.output
        on = runner.invoke(cli.app, ["objects", "set-mirror", "Order", "--json"])
        assert on.exit_code == 0, on.output
        assert json.loads(on.stdout.strip().splitlines()[-1])["mirror_to_intercom"] is True
        assert instance(db, "ord_1").intercom_pending

        no_token = runner.invoke(cli.app, ["objects", "mirror"])
        assert no_token.exit_code == 2 and "FINDESK_INTERCOM_ACCESS_TOKEN" in no_token.output
        monkeypatch.setenv("FINDESK_INTERCOM_ACCESS_TOKEN", TOKEN)
        get_settings.cache_clear()
        result = runner.invoke(cli.app, ["objects", "mirror", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout.strip().splitlines()[-1])["sent"] == 1
        assert "ord_1" in intercom.orders()
        full = runner.invoke(cli.app, ["objects", "mirror", "--full"])
        assert full.exit_code == 0 and "1 sent" in full.output

        off = runner.invoke(cli.app, ["objects", "set-mirror", "Order", "--off"])
        assert off.exit_code == 0 and "off" in off.output
    finally:
        get_settings.cache_clear()
        db.dispose()
