"""Issue 15 end to end, with real processes (`findesk demo`: findesk and the Fin emulator) and
Chromium: an admin defines an order lookup in the inbox and syncs it to Intercom (the emulator's
Data Connectors API); an end user asks the Messenger "Where is my order A-1042?"; Fin (the
emulator) calls findesk's lookup through the connector and answers with the order's status; the
call shows in the inbox conversation and, read back from the connector's execution results, on
the lookup's page. A second end user asking for the first one's order gets no data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select
from support.demo import running_demo, sign_in

from findesk.kit.db import Database
from findesk.users.models import EndUser

ORDER_TYPE = {
    "identifier": "Order",
    "name": "Order",
    "attributes": [
        {"name": "status", "type": "string", "label": "Status"},
        {"name": "carrier", "type": "string", "label": "Carrier"},
        {"name": "card", "type": "string", "label": "Card"},
    ],
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with running_demo(tmp_path_factory.mktemp("lookups-demo")) as info:
        yield info


def _user_id(demo: dict[str, Any], email: str) -> str:
    db = Database(f"sqlite:///{Path(demo['data_dir']) / 'findesk.db'}")
    try:
        with db.read_session() as session:
            user = session.scalars(select(EndUser).where(EndUser.email == email)).one()
            return user.id
    finally:
        db.dispose()


def _start_chat(context: BrowserContext, demo: dict[str, Any], name: str, email: str) -> Page:
    page = context.new_page()
    page.goto(demo["messenger_url"])
    page.get_by_label("Name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Start chatting").click()
    return page


def _ask(page: Page, text: str, answers_before: int) -> Any:
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")
    answers = page.locator(".message.from-fin")
    expect(answers).to_have_count(answers_before + 1, timeout=20_000)
    return answers.last


def test_fin_looks_up_an_order_for_its_owner_and_nobody_else(demo, browser: Browser) -> None:
    api = httpx.Client(
        base_url=f"{demo['helpdesk_url']}/api/v1",
        headers={"Authorization": f"Bearer {demo['agent_token']}"},
        timeout=30,
    )
    assert api.post("/custom_object_types", json=ORDER_TYPE).status_code == 201
    order = api.post(
        "/custom_object_instances/Order",
        json={
            "external_id": "A-1042",
            "custom_attributes": {
                "status": "shipped",
                "carrier": "DHL",
                "card": "4242424242424242",
            },
        },
    )
    assert order.status_code == 200, order.text

    admin = browser.new_context(viewport={"width": 1280, "height": 900})
    ana = browser.new_context(viewport={"width": 480, "height": 860})
    bo = browser.new_context(viewport={"width": 480, "height": 860})
    try:
        inbox = admin.new_page()
        sign_in(inbox, demo)
        inbox.goto(f"{demo['inbox_url']}/admin/lookups/new")
        inbox.get_by_label("Name (the Data Connector's name)").fill("Order status")
        inbox.get_by_label("Description: what Fin reads").fill(
            "Look up an order by its order number, to tell where the order is."
        )
        inbox.get_by_label("What it reads").select_option("object_by_external_id")
        inbox.get_by_label("Object type").select_option(label="Order")
        inbox.get_by_label("Inputs, one a line").fill(
            "order_id string required The order number, like A-1042"
        )
        inbox.get_by_label("Fields returned").fill("status\ncarrier\ncard redacted")
        inbox.get_by_label("Only the end user's own data").check()
        inbox.get_by_label("Fin may call it itself").check()
        inbox.get_by_role("button", name="Create lookup").click()
        expect(inbox.get_by_role("heading", name="Order status")).to_be_visible()
        inbox.get_by_role("button", name="Sync to Intercom").click()
        expect(inbox.get_by_role("status")).to_contain_text("1 created")

        # Ana writes first (Fin's sync makes her a user of findesk); the order is hers.
        chat = _start_chat(ana, demo, "Ana Lima", "ana@example.com")
        _ask(chat, "How long do refunds take?", 0)
        user_id = _user_id(demo, "ana@example.com")
        linked = api.put(f"/custom_object_instances/Order/{order.json()['id']}/contacts/{user_id}")
        assert linked.status_code == 200, linked.text

        answer = _ask(chat, "Where is my order A-1042?", 1)
        expect(answer).to_contain_text("Status: shipped")
        expect(answer).to_contain_text("Carrier: DHL")
        expect(answer).not_to_contain_text("4242424242424242")  # redacted

        # The agent sees Fin's lookup in the conversation.
        inbox.goto(f"{demo['inbox_url']}?queue=all")
        inbox.get_by_role("link", name="How long do refunds take?").first.click()
        expect(inbox.get_by_text("Fin looked up order A-1042: shipped")).to_be_visible()

        # Bo asks for Ana's order: no data.
        other = _start_chat(bo, demo, "Bo Berg", "bo@example.com")
        refused = _ask(other, "Where is my order A-1042?", 0)
        expect(refused).to_contain_text("couldn't find anything for A-1042")
        expect(refused).not_to_contain_text("shipped")
        expect(refused).not_to_contain_text("DHL")

        # The connector's execution results, read back into findesk by the next sync.
        inbox.goto(f"{demo['inbox_url']}/admin/lookups")
        inbox.get_by_role("link", name="Order status").click()
        inbox.get_by_role("button", name="Sync to Intercom").click()
        results = inbox.get_by_role("region", name="Calls Fin made through Intercom")
        expect(results.get_by_role("row")).to_have_count(3)  # header, Ana's call, Bo's call
        expect(results).to_contain_text("200")
    finally:
        admin.close()
        ana.close()
        bo.close()
        api.close()
