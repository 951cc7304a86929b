"""``findesk objects import``: the domain's import on SQLite and on PostgreSQL (batched upserts,
a bad row reported and the rest imported), and the console script run for real against a SQLite
file (its report and exit codes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from support.cli import Cli
from support.server import database_url

from findesk.agents.service import create_agent
from findesk.kit.db import Database
from findesk.migrations import upgrade
from findesk.objects import service
from findesk.objects.importer import ImportRefused, import_file
from findesk.objects.models import ObjectInstance, ObjectUserLink
from findesk.objects.schemas import AttributeDef
from findesk.users.models import EndUser

ATTRIBUTES = [
    AttributeDef(name="order_number", type="string"),
    AttributeDef(name="total", type="decimal"),
    AttributeDef(name="items", type="integer"),
    AttributeDef(name="paid", type="boolean"),
]
GOOD_CSV = """external_id,external_created_at,order_number,total,items,paid
o-1,1734537745,ORDER-1,10.50,1,true
o-2,,ORDER-2,20,2,false
"o-3",1734537800,"ORDER-3, with a comma",30.25,3,
"""


def make_type(db: Database, identifier: str = "Order") -> None:
    with db.transaction() as session:
        admin = create_agent(session, email="admin@example.com", name="Ada", role="admin")
        service.create_type(
            session,
            admin,
            identifier=identifier,
            name=None,
            attributes=ATTRIBUTES,
            title_attribute="order_number",
        )


def instances(db: Database) -> dict[str, ObjectInstance]:
    with db.read_session() as session:
        return {i.external_id: i for i in session.scalars(select(ObjectInstance))}


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    url = database_url(request.param, request, tmp_path)
    upgrade(url)
    database = Database(url)
    request.addfinalizer(database.dispose)
    make_type(database)
    return database


def test_a_csv_file_is_imported_in_batches_and_again_updates(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(GOOD_CSV)
    seen: list[int] = []
    report = import_file(db, "Order", path, batch_rows=2, on_progress=seen.append)
    assert report.ok and report.imported == 3
    assert seen[-1] == path.stat().st_size
    found = instances(db)
    assert found["o-1"].custom_attributes == {
        "order_number": "ORDER-1",
        "total": "10.50",
        "items": 1,
        "paid": True,
    }
    assert int(found["o-1"].external_created_at.timestamp()) == 1734537745  # type: ignore[union-attr]
    assert found["o-2"].external_created_at is None
    assert found["o-3"].custom_attributes["order_number"] == "ORDER-3, with a comma"
    assert "paid" not in found["o-3"].custom_attributes  # an empty cell: left out
    # Linked meanwhile: importing again updates in place, the id and the link stay.
    with db.transaction() as session:
        user = EndUser(name="Jane")
        session.add(user)
        session.flush()
        session.add(ObjectUserLink(user_id=user.id, instance_id=found["o-1"].id))
    # The same external id twice in a batch: the later row wins (one statement may not update
    # a row twice on PostgreSQL).
    path.write_text("external_id,total\no-1,10\no-4,40\no-1,11\n")
    again = import_file(db, "Order", path)
    assert again.ok and again.imported == 3
    now = instances(db)
    assert set(now) == {"o-1", "o-2", "o-3", "o-4"}
    assert now["o-1"].id == found["o-1"].id
    assert now["o-1"].custom_attributes == {"total": "11"}  # a row is the whole record
    with db.read_session() as session:
        assert session.scalars(select(ObjectUserLink.instance_id)).all() == [found["o-1"].id]


def test_a_bad_row_is_reported_and_the_rest_imported(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "orders.jsonl"
    rows = [
        {"external_id": "j-1", "custom_attributes": {"items": 1}},
        {"external_id": "j-2", "custom_attributes": {"items": "many"}},
        "not an object",
        {"external_id": "j-3", "external_created_at": 1734537745},
        {"custom_attributes": {}},
        {"external_id": "j-4", "custom_attributes": {"colour": "red"}},
        {"external_id": "j-5", "custom_attributes": {"paid": "yes"}},
    ]
    text = "\n".join(json.dumps(r) for r in rows) + "\n{not json\n\n"
    path.write_text(text)
    report = import_file(db, "Order", path, batch_rows=1)
    assert report.imported == 2
    reasons = {e.line: e.reason for e in report.errors}
    assert sorted(reasons) == [2, 3, 5, 6, 7, 8]
    assert "items" in reasons[2] and "integer" in reasons[2]
    assert reasons[3] == "not a JSON object"
    assert "external_id" in reasons[5]
    assert "colour" in reasons[6]
    assert reasons[8] == "not valid JSON"
    assert set(instances(db)) == {"j-1", "j-3"}


def test_files_that_cannot_be_imported_at_all(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("external_id,colour\no-1,red\n")
    with pytest.raises(ImportRefused, match="colour"):
        import_file(db, "Order", path)
    path.write_text("order_number\nORDER-1\n")
    with pytest.raises(ImportRefused, match="external_id"):
        import_file(db, "Order", path)
    with pytest.raises(ImportRefused, match="Custom object type `Nope` not found"):
        import_file(db, "Nope", path)
    with pytest.raises(ImportRefused, match="format"):
        import_file(db, "Order", tmp_path / "orders.txt")
    assert instances(db) == {}


# --- the console script ----------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    runner = Cli(tmp_path / "data")
    assert runner.run("migrate").returncode == 0
    db = Database(runner.database_url)
    make_type(db)
    db.dispose()
    return runner


def test_the_command_reports_bad_rows_by_line_and_exits_1(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(GOOD_CSV + "o-5,soon,ORDER-5,1,1,true\no-6,,ORDER-6,1,1.5,true\n")
    result = cli.run("objects", "import", "Order", str(path))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "3 imported, 2 failed." in result.stdout
    errors = " ".join(result.stderr.split())
    assert "line 5: external_created_at: must be unix seconds" in errors
    assert "line 6: The attribute `items` must be an integer." in errors
    data = json.loads(cli.run("objects", "import", "Order", str(path), "--json").stdout)
    assert data["imported"] == 3 and data["failed"] == 2
    assert [e["line"] for e in data["errors"]] == [5, 6]


def test_the_command_exits_0_on_a_good_file_and_2_on_a_refused_one(
    cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(GOOD_CSV)
    result = cli.run("objects", "import", "Order", str(path))
    assert result.returncode == 0, result.stderr
    assert "3 imported, 0 failed." in result.stdout
    refused = cli.run("objects", "import", "Invoice", str(path))
    assert refused.returncode == 2
    assert "Custom object type `Invoice` not found" in refused.stderr
    assert cli.run("objects", "import", "Order", str(tmp_path / "none.csv")).returncode == 1
