"""Benchmark of custom objects: importing 100,000 orders, and the conversation page of an end
user with 1,000 of them.

Run: ``.venv/bin/python bench/objects_import.py [--rows N] [--linked N] [--samples N] [--json]``

What it does:

1. Migrates a SQLite file in a temporary folder and defines an ``Order`` type (order number,
   total, items, paid, placed on) through the domain service.
2. Writes a CSV file of ``--rows`` orders (default 100,000) and times ``findesk objects import
   Order FILE`` run as a child process, as a user runs it (start-up, checking every row, the
   batched upserts, the progress bar off with ``--json``). Target: under 60 s.
3. Links ``--linked`` of the orders (default 1,000) to one end user with a conversation, signs in
   through the sign-in form and times ``GET /inbox/conversations/{id}``, whose side panel shows
   that user's objects as cards (the newest 5, the count, "Show all"), in process through an
   ASGI client, after a warm-up; and, for information, the cards' query alone. Target: the
   page's median under 100 ms.

Exit status: 0 when both targets are met, 1 otherwise, 2 when the set-up failed, 130 when
interrupted.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import random
import statistics
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from findesk.agents.service import create_agent, set_password
from findesk.app import create_app
from findesk.conversations.models import Conversation
from findesk.kit.db import Database
from findesk.kit.settings import Settings
from findesk.objects import service as objects
from findesk.objects.models import ObjectInstance, ObjectUserLink
from findesk.objects.schemas import AttributeDef
from findesk.users.models import EndUser

from benchkit import (
    LOGIN_CSRF,
    SetupError,
    bench_folder,
    findesk_command,
    findesk_env,
    finish,
    log,
    run_main,
)

IMPORT_TARGET_S = 60.0
PAGE_TARGET_MS = 100.0
PASSWORD = "bench-password-0123456789"
EMAIL = "bench@example.com"


def write_orders(path: Path, rows: int) -> None:
    rng = random.Random(7)
    with path.open("w", newline="") as stream:
        out = csv.writer(stream)
        out.writerow(
            ["external_id", "external_created_at", "order_number", "total", "items", "paid",
             "placed_on"]
        )  # fmt: skip
        for n in range(rows):
            out.writerow(
                [
                    f"order-{n}",
                    1_700_000_000 + n * 60,
                    f"ORDER-{n:07d}",
                    f"{rng.randint(100, 99_999) / 100:.2f}",
                    rng.randint(1, 9),
                    "true" if rng.random() < 0.9 else "false",
                    f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                ]
            )


def set_up(db: Database) -> str:
    """The Order type, an agent who signs in, an end user with a conversation: its id."""
    with db.transaction() as session:
        admin = create_agent(session, email=EMAIL, name="Bench Admin", role="admin")
        set_password(session, admin, PASSWORD)
        objects.create_type(
            session,
            admin,
            identifier="Order",
            name="Order",
            attributes=[
                AttributeDef(name="order_number", type="string", label="Order number"),
                AttributeDef(name="total", type="decimal", label="Total"),
                AttributeDef(name="items", type="integer", label="Items"),
                AttributeDef(name="paid", type="boolean", label="Paid"),
                AttributeDef(name="placed_on", type="date", label="Placed on"),
            ],
            title_attribute="order_number",
        )
        user = EndUser(name="Jane Buyer", email="jane@example.com", attributes={})
        session.add(user)
        session.flush()
        conversation = Conversation(user_id=user.id, title="Where is my order?", attributes={})
        session.add(conversation)
        session.flush()
        return conversation.id


def link_orders(db: Database, conversation_id: str, count: int) -> None:
    with db.transaction() as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None
        instance_ids = session.scalars(select(ObjectInstance.id).limit(count)).all()
        session.execute(
            insert(ObjectUserLink),
            [{"user_id": conversation.user_id, "instance_id": i} for i in instance_ids],
        )


def time_page(
    settings: Settings, db: Database, conversation_id: str, linked: int, samples: int
) -> list[float]:
    app = create_app(settings, db)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        client.cookies.set("findesk_login_csrf", LOGIN_CSRF)
        signed_in = client.post(
            "/login",
            data={"email": EMAIL, "password": PASSWORD, "csrf_token": LOGIN_CSRF},
            follow_redirects=False,
        )
        if signed_in.status_code != 303:
            raise SetupError(f"POST /login: HTTP {signed_in.status_code}")
        url = f"/inbox/conversations/{conversation_id}"
        timings: list[float] = []
        for n in range(samples + 5):
            start = time.perf_counter()
            page = client.get(url)
            took = (time.perf_counter() - start) * 1000
            if page.status_code != 200 or f"Show all {linked} objects" not in page.text:
                raise SetupError(f"GET {url}: HTTP {page.status_code}, no cards of {linked}")
            if n >= 5:  # after the warm-up
                timings.append(took)
        return timings


def time_cards(db: Database, conversation_id: str, samples: int) -> list[float]:
    timings: list[float] = []
    with db.read_session() as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None
        for _ in range(samples):
            start = time.perf_counter()
            cards = objects.cards_for(
                session, user_id=conversation.user_id, conversation_id=conversation.id
            )
            timings.append((time.perf_counter() - start) * 1000)
    assert len(cards.cards) == 5
    return timings


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--linked", type=int, default=1_000)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--json", action="store_true", dest="as_json")
    args = parser.parse_args(argv)
    with bench_folder() as folder:
        data_dir = folder / "data"
        env = findesk_env(data_dir)
        migrated = subprocess.run(findesk_command("migrate"), env=env, capture_output=True)
        if migrated.returncode != 0:
            raise SetupError(f"findesk migrate: {migrated.stderr.decode()[-500:]}")
        settings = Settings(data_dir=data_dir)
        db = Database(settings.effective_database_url)
        try:
            conversation_id = set_up(db)
            orders = folder / "orders.csv"
            write_orders(orders, args.rows)
            log(f"importing {args.rows:,} orders ({orders.stat().st_size / 1e6:.1f} MB of CSV)")
            start = time.perf_counter()
            imported = subprocess.run(
                findesk_command("objects", "import", "Order", str(orders), "--json"),
                env=env,
                capture_output=True,
                text=True,
            )
            import_s = time.perf_counter() - start
            if imported.returncode != 0:
                raise SetupError(f"findesk objects import: {imported.stderr[-500:]}")
            report = json.loads(imported.stdout)
            if report["imported"] != args.rows:
                raise SetupError(f"imported {report['imported']} of {args.rows} rows")
            link_orders(db, conversation_id, args.linked)
            log(f"timing the conversation page with {args.linked:,} linked orders")
            page_ms = time_page(settings, db, conversation_id, args.linked, args.samples)
            cards_ms = time_cards(db, conversation_id, args.samples)
        finally:
            db.dispose()
    result: dict[str, Any] = {
        "machine": platform.platform(),
        "rows": args.rows,
        "import_seconds": round(import_s, 2),
        "rows_per_second": round(args.rows / import_s),
        "linked": args.linked,
        "page_median_ms": round(statistics.median(page_ms), 1),
        "page_max_ms": round(max(page_ms), 1),
        "cards_query_median_ms": round(statistics.median(cards_ms), 2),
        "import_target_seconds": IMPORT_TARGET_S,
        "page_target_ms": PAGE_TARGET_MS,
    }
    ok = import_s < IMPORT_TARGET_S and result["page_median_ms"] < PAGE_TARGET_MS

    def print_report() -> None:
        print(
            f"import of {args.rows:,} orders (SQLite, findesk objects import): "
            f"{result['import_seconds']} s, {result['rows_per_second']:,} rows/s "
            f"(target < {IMPORT_TARGET_S:.0f} s)"
        )
        print(
            f"conversation page, end user with {args.linked:,} orders: median "
            f"{result['page_median_ms']} ms, max {result['page_max_ms']} ms "
            f"(target < {PAGE_TARGET_MS:.0f} ms); the cards' query alone: median "
            f"{result['cards_query_median_ms']} ms"
        )

    return finish(ok, args.as_json, lambda: result, print_report)


if __name__ == "__main__":
    run_main(main)
