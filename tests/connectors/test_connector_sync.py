"""``findesk connectors sync`` against the emulated Data Connectors API on loopback, behind the
fault-injecting tap (``support.tap``): findesk's lookup definitions kept in step with Intercom's
connectors, and their execution results read back."""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from emulator.content_api_server import TOKEN, ServedApp
from fastapi import FastAPI
from sqlalchemy.orm import Session
from support.receiver import eventually
from support.server import database_url
from support.tap import Tap, Traffic
from typer.testing import CliRunner

from findesk.connectors.models import IntercomConnector, IntercomConnectorExecution
from findesk.connectors.schemas import ConnectorDefinition
from findesk.connectors.service import ConnectorSync, sync_connectors
from findesk.emulator.content_api import create_content_api
from findesk.emulator.data_connectors_api import connectors_store_of, execute
from findesk.emulator.data_connectors_store import Connector, DataConnectorStore
from findesk.kit.db import Database
from findesk.kit.settings import Settings
from findesk.migrations import upgrade

DC = "/data_connectors"


class Intercom:
    """The emulated Data Connectors API with its tap."""

    def __init__(self, db_path: Path, rate_limit: int = 100_000, window: float = 10.0) -> None:
        app = create_content_api(f"sqlite:///{db_path}", [TOKEN], rate_limit, window)
        self.traffic = Traffic(default_path=DC)
        app.add_middleware(Tap, traffic=self.traffic)
        self.served = ServedApp(app)
        self.base_url = self.served.base_url
        self.store: DataConnectorStore = connectors_store_of(app)

    def connectors(self) -> list[Connector]:
        return self.store.all()

    def named(self, name: str) -> list[Connector]:
        return [c for c in self.connectors() if c.draft["name"] == name]

    def stop(self) -> None:
        self.served.stop()


class Lookups:
    """Stands in for findesk's lookups: the definitions, and tokens minted per key."""

    def __init__(self, base: str = "https://desk.example.com") -> None:
        self.base = base
        self.definitions: dict[str, ConnectorDefinition] = {}
        self.minted: dict[str, list[str]] = {}
        self._serial = itertools.count(1)

    def add(self, key: str, **fields: Any) -> ConnectorDefinition:
        values: dict[str, Any] = {
            "key": key,
            "name": f"Lookup {key}",
            "description": f"Finds {key}",
            "http_method": "get",
            "url": f"{self.base}/api/lookups/{key}?order={{{{order_id}}}}",
            "data_inputs": [
                {"name": "order_id", "type": "string", "description": "Order", "required": True}
            ],
            "direct_fin_usage": True,
            "audiences": ["users"],
            "mock_response": {"status": "shipped"},
            **fields,
        }
        definition = ConnectorDefinition(**values)
        self.definitions[key] = definition
        return definition

    def change(self, key: str, **fields: Any) -> None:
        self.definitions[key] = replace(self.definitions[key], **fields)

    def definitions_for(self, session: Session) -> list[ConnectorDefinition]:
        assert isinstance(session, Session)
        return list(self.definitions.values())

    def mint_token(self, session: Session, key: str) -> str:
        assert isinstance(session, Session)
        token = f"tok-{key}-{next(self._serial)}-secret"
        self.minted.setdefault(key, []).append(token)
        return token


@pytest.fixture
def intercom(tmp_path: Path) -> Iterator[Intercom]:
    emulated = Intercom(tmp_path / "intercom.db")
    yield emulated
    emulated.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def dc_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = database_url(request.param, request, tmp_path)
    upgrade(url)
    db = Database(url)
    yield db
    db.dispose()


def dc_settings(db: Database, intercom: Intercom) -> Settings:
    return Settings(
        database_url=db.url, intercom_access_token=TOKEN, intercom_api_url=intercom.base_url
    )


def sync(db: Database, intercom: Intercom, lookups: Lookups, **options: Any) -> Any:
    options.setdefault("retry_delays", (0.01, 0.02))
    return sync_connectors(
        db, dc_settings(db, intercom), lookups.definitions_for, lookups.mint_token, **options
    )


def rows(db: Database) -> dict[str, IntercomConnector]:
    with db.read_session() as session:
        return {r.key: r for r in session.query(IntercomConnector).all()}


def live_headers(connector: Connector) -> list[dict[str, str]]:
    assert connector.live is not None
    return list(connector.live["headers"])


def one_per_key(intercom: Intercom, lookups: Lookups) -> None:
    names = sorted(c.draft["name"] for c in intercom.connectors())
    assert names == sorted(d.name for d in lookups.definitions.values())


# --- the main flow (SQLite and PostgreSQL) ----------------------------------------------------


def test_sync_creates_live_connectors_patches_only_changes_and_deletes_removed_ones(
    dc_db: Database, intercom: Intercom
) -> None:
    db, traffic, lookups = dc_db, intercom.traffic, Lookups()
    for key in ("orders", "refunds", "plans"):
        lookups.add(key)
    progress: list[tuple[int, int]] = []

    first = sync(db, intercom, lookups, progress=lambda d, t: progress.append((d, t)))
    assert first.ok and first.created == 3, first
    assert progress[-1] == (3, 3)
    stored = rows(db)
    for key, definition in lookups.definitions.items():
        [connector] = intercom.named(definition.name)
        assert connector.state == "live" and stored[key].intercom_id == str(connector.id)
        assert stored[key].state == "live" and stored[key].last_error is None
        live = connector.live
        assert live is not None
        for name, value in definition.payload().items():
            if name == "data_inputs":  # Intercom fills in the default value
                value = [{"default_value": None, **item} for item in value]
            assert live[name] == value, name
        # The minted token went out once, in the headers, and is kept for calling.
        assert live_headers(connector) == [
            {"name": "Authorization", "value": f"Bearer {lookups.minted[key][0]}"}
        ]
    # Per connector: a create (draft) with the token, then a PATCH that only sets it live.
    creates = [h for h in traffic.since() if h.method == "POST"]
    lives = [h for h in traffic.since() if h.method == "PATCH"]
    assert len(creates) == len(lives) == 3
    assert all(h.json()["headers"][0]["value"].startswith("Bearer tok-") for h in creates)
    assert all(h.json() == {"state": "live"} for h in lives)
    # Tokens never come back in Intercom's answers.
    with ServedApp.client(intercom.served, **{"Intercom-Version": "Preview"}) as api:
        assert "tok-" not in api.get(f"{DC}/{stored['orders'].intercom_id}").text

    # Nothing changed: nothing sent.
    mark = traffic.mark()
    second = sync(db, intercom, lookups, read_results=False)
    assert second.ok and second.unchanged == 3 and second.requests == 0, second
    assert traffic.count(mark) == 0

    # One changed field: one PATCH with that field alone (and the publication).
    lookups.change("orders", description="Finds an order by its number")
    mark = traffic.mark()
    third = sync(db, intercom, lookups, read_results=False)
    assert (third.updated, third.unchanged, third.requests) == (1, 2, 1), third
    [patch] = traffic.since(mark)
    assert (patch.method, patch.path) == ("PATCH", f"{DC}/{stored['orders'].intercom_id}")
    assert patch.json() == {"description": "Finds an order by its number", "state": "live"}
    [orders] = intercom.named("Lookup orders")
    assert orders.live is not None and orders.live["description"] == "Finds an order by its number"
    assert live_headers(orders)[0]["value"] == f"Bearer {lookups.minted['orders'][0]}"

    # Inputs and mock: exactly those two fields.
    inputs = [{"name": "email", "type": "string", "description": "Email", "required": False}]
    lookups.change("refunds", data_inputs=inputs, mock_response={"refunded": True})
    mark = traffic.mark()
    assert sync(db, intercom, lookups, read_results=False).updated == 1
    [patch] = traffic.since(mark)
    assert patch.json() == {
        "data_inputs": inputs,
        "mock_response": {"refunded": True},
        "state": "live",
    }

    # A lookup deleted: its connector goes to draft, then is deleted; the row goes too.
    del lookups.definitions["plans"]
    plans_id = stored["plans"].intercom_id
    mark = traffic.mark()
    fourth = sync(db, intercom, lookups, read_results=False)
    assert fourth.ok and fourth.deleted == 1, fourth
    assert [(h.method, h.path, h.json()) for h in traffic.since(mark)] == [
        ("PATCH", f"{DC}/{plans_id}", {"state": "draft"}),
        ("DELETE", f"{DC}/{plans_id}", None),
    ]
    assert "plans" not in rows(db) and intercom.named("Lookup plans") == []
    one_per_key(intercom, lookups)


# --- in use, execution results, deleted on Intercom's side ------------------------------------


class Target:
    """The lookup endpoint the connector calls (findesk's side, played here)."""

    def __init__(self) -> None:
        app = FastAPI()

        @app.get("/api/lookups/{key}")
        def lookup(key: str, order: str) -> Any:
            if order == "broken":
                from fastapi.responses import JSONResponse

                return JSONResponse({"error": "broken"}, status_code=500)
            return {"status": "shipped", "order": order}

        self.served = ServedApp(app)
        self.base_url = self.served.base_url

    def stop(self) -> None:
        self.served.stop()


def test_results_are_read_back_and_a_connector_in_use_is_kept_until_it_is_free(
    dc_db: Database, intercom: Intercom
) -> None:
    target = Target()
    try:
        lookups = Lookups(base=target.base_url)
        lookups.add("orders")
        lookups.add("spare")
        assert sync(dc_db, intercom, lookups).created == 2
        orders_id = rows(dc_db)["orders"].intercom_id
        assert orders_id is not None

        ok = execute(intercom.store, orders_id, {"order_id": "A1"}, conversation_id="conv_1")
        bad = execute(intercom.store, orders_id, {"order_id": "broken"}, conversation_id="conv_2")
        assert ok.success and not bad.success and bad.http_status == 500

        summary = sync(dc_db, intercom, lookups)
        assert summary.ok and summary.results_read == 2 and summary.unchanged == 2, summary
        row = rows(dc_db)["orders"]
        assert (row.executions_succeeded, row.executions_failed) == (1, 1)
        assert row.last_success_at is not None and row.last_failure_at is not None
        assert row.last_error_type == "3rd_party_error" and row.last_http_status == 500
        with dc_db.read_session() as session:
            history = session.query(IntercomConnectorExecution).filter_by(key="orders").all()
        assert sorted(h.conversation_id or "" for h in history) == ["conv_1", "conv_2"]
        assert {h.result_id for h in history} == {str(ok.id), str(bad.id)}
        # Read again: nothing new, nothing counted twice.
        assert sync(dc_db, intercom, lookups).results_read == 0
        assert rows(dc_db)["orders"].executions_succeeded == 1

        # The lookup is deleted while Fin relies on the connector: Intercom refuses, it stays.
        del lookups.definitions["orders"]
        refused = sync(dc_db, intercom, lookups)
        assert refused.ok and refused.delete_refused == 1 and refused.deleted == 0, refused
        row = rows(dc_db)["orders"]
        assert row.removed and row.delete_refused_at is not None
        assert row.last_error is not None and "data_connector_in_use" in row.last_error
        [kept] = intercom.named("Lookup orders")
        assert kept.state == "live"

        intercom.store.in_use_seconds = 0  # the conversations are over
        later = sync(dc_db, intercom, lookups)
        assert later.deleted == 1, later
        assert intercom.named("Lookup orders") == [] and "orders" not in rows(dc_db)
        one_per_key(intercom, lookups)
    finally:
        target.stop()


def test_a_connector_deleted_in_intercom_is_made_again_with_a_new_token(
    dc_db: Database, intercom: Intercom
) -> None:
    lookups = Lookups()
    lookups.add("orders")
    lookups.add("refunds")
    assert sync(dc_db, intercom, lookups).created == 2
    store = intercom.store

    def delete_in_intercom(key: str) -> None:
        intercom_id = rows(dc_db)[key].intercom_id
        assert intercom_id is not None
        store.update(int(intercom_id), {}, "draft", "1")
        assert store.delete(int(intercom_id))

    # Unchanged definition: found gone when its results are read.
    delete_in_intercom("orders")
    summary = sync(dc_db, intercom, lookups)
    assert summary.ok and summary.recreated == 1, summary
    [orders] = intercom.named("Lookup orders")
    assert orders.state == "live" and rows(dc_db)["orders"].intercom_id == str(orders.id)
    assert len(lookups.minted["orders"]) == 2
    assert live_headers(orders)[0]["value"] == f"Bearer {lookups.minted['orders'][1]}"

    # Changed definition: its PATCH answers 404.
    delete_in_intercom("refunds")
    lookups.change("refunds", name="Refund status")
    summary = sync(dc_db, intercom, lookups, read_results=False)
    assert summary.ok and summary.recreated == 1, summary
    [refunds] = intercom.named("Refund status")
    assert refunds.state == "live" and refunds.live is not None
    assert refunds.live["name"] == "Refund status"
    one_per_key(intercom, lookups)
    assert sync(dc_db, intercom, lookups, read_results=False).unchanged == 2


# --- faults -----------------------------------------------------------------------------------


def test_a_429_storm_is_ridden_out_with_nothing_duplicated_or_lost(
    dc_db: Database, tmp_path: Path
) -> None:
    intercom = Intercom(tmp_path / "limited.db", rate_limit=5, window=1.0)
    try:
        lookups = Lookups()
        for n in range(12):
            lookups.add(f"lookup{n}")
        summary = sync(dc_db, intercom, lookups, pace=False)
        assert summary.ok and summary.created == 12, summary
        assert summary.rate_limited > 0
        assert intercom.traffic.count(status=429) == summary.rate_limited
        one_per_key(intercom, lookups)
        assert all(c.state == "live" for c in intercom.connectors())
        assert intercom.traffic.busiest_window() <= 5

        # Paced, the next round of changes earns no 429 at all (once the window the storm used
        # up is over: a new client cannot know about it).
        for n in range(12):
            lookups.change(f"lookup{n}", description=f"Changed {n}")
        used_up = max(int(h.window) for h in intercom.traffic.since() if h.window)
        assert eventually(lambda: time.time() >= used_up, timeout=5)
        mark = intercom.traffic.mark()
        paced = sync(dc_db, intercom, lookups, read_results=False)
        assert paced.ok and paced.updated == 12 and paced.rate_limited == 0, paced
        assert intercom.traffic.count(mark, status=429) == 0
        assert all(
            c.live is not None and c.live["description"].startswith("Changed")
            for c in intercom.connectors()
        )
    finally:
        intercom.stop()


def test_5xx_are_retried_and_a_lost_create_is_adopted_not_duplicated(
    dc_db: Database, intercom: Intercom
) -> None:
    lookups = Lookups()
    lookups.add("orders")
    traffic = intercom.traffic

    # Transient errors on the PATCH are retried within the sync.
    traffic.fail(503, method="PATCH", path=f"{DC}/", times=2)
    summary = sync(dc_db, intercom, lookups)
    assert summary.ok and summary.created == 1, summary
    assert [h.status for h in traffic.since() if h.method == "PATCH"] == [503, 503, 200]

    # A create done by Intercom whose answer was lost (502): not retried blindly...
    lookups.add("refunds")
    traffic.fail(502, method="POST", path=DC, times=1, after=True)
    lost = sync(dc_db, intercom, lookups)
    assert lost.failed == 1 and not lost.ok, lost
    assert "502" in lost.failures["refunds"]
    assert len(intercom.named("Lookup refunds")) == 1  # made once, still a draft
    assert rows(dc_db)["refunds"].state == "creating"
    assert rows(dc_db)["refunds"].last_error is not None

    # ...and adopted by the next sync, with a new token: still one connector for the key.
    mark = traffic.mark()
    again = sync(dc_db, intercom, lookups)
    assert again.ok and again.adopted == 1, again
    assert traffic.count(mark, method="POST") == 0
    [refunds] = intercom.named("Lookup refunds")
    assert refunds.state == "live"
    assert live_headers(refunds)[0]["value"] == f"Bearer {lookups.minted['refunds'][-1]}"
    row = rows(dc_db)["refunds"]
    assert row.intercom_id == str(refunds.id) and row.last_error is None
    one_per_key(intercom, lookups)

    # A failure that lasts is recorded, and the change arrives on a later sync.
    lookups.change("orders", description="Later")
    traffic.fail(500, method="PATCH", path=f"{DC}/")
    failed = sync(dc_db, intercom, lookups, read_results=False)
    assert failed.failed == 1 and "500" in (rows(dc_db)["orders"].last_error or "")
    traffic.clear_faults()
    assert sync(dc_db, intercom, lookups, read_results=False).updated == 1
    [orders] = intercom.named("Lookup orders")
    assert orders.live is not None and orders.live["description"] == "Later"
    assert rows(dc_db)["orders"].last_error is None


def test_a_refused_token_stops_the_sync(dc_db: Database, intercom: Intercom) -> None:
    lookups = Lookups()
    lookups.add("orders")
    lookups.add("refunds")
    settings = Settings(
        database_url=dc_db.url, intercom_access_token="wrong", intercom_api_url=intercom.base_url
    )
    with ConnectorSync(dc_db, settings) as syncer:
        summary = syncer.sync(lookups.definitions_for, lookups.mint_token)
    assert summary.error is not None and "Access Token Invalid" in summary.error
    assert summary.requests == 1 and intercom.connectors() == []


# --- the command line -------------------------------------------------------------------------


def test_cli_connectors_sync(
    tmp_path: Path, intercom: Intercom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process, with the lookups' definitions and tokens replaced by this test's."""
    from findesk import cli
    from findesk.kit.settings import get_settings
    from findesk.lookups import intercom as lookups_intercom
    from findesk.lookups import service as lookups_service

    for name in list(os.environ):
        if name.startswith("FINDESK_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FINDESK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FINDESK_INTERCOM_API_URL", intercom.base_url)
    lookups = Lookups()
    lookups.add("orders")
    monkeypatch.setattr(
        lookups_service,
        "connector_definitions",
        lambda session, _base: lookups.definitions_for(session),
    )
    monkeypatch.setattr(lookups_intercom, "mint_token", lookups.mint_token)
    runner = CliRunner()
    get_settings.cache_clear()
    try:
        no_token = runner.invoke(cli.app, ["connectors", "sync"])
        assert no_token.exit_code == 2 and "FINDESK_INTERCOM_ACCESS_TOKEN" in no_token.output

        monkeypatch.setenv("FINDESK_INTERCOM_ACCESS_TOKEN", TOKEN)
        get_settings.cache_clear()
        result = runner.invoke(cli.app, ["connectors", "sync", "--json"])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        assert (summary["created"], summary["ok"]) == (1, True)
        assert len(intercom.named("Lookup orders")) == 1

        intercom.traffic.fail(400, method="PATCH", path=f"{DC}/")
        lookups.change("orders", description="Refused")
        failed = runner.invoke(cli.app, ["connectors", "sync"])
        assert failed.exit_code == 1
        assert "1 failed" in failed.output and "orders" in failed.output
    finally:
        get_settings.cache_clear()
