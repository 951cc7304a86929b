"""The emulator's Fin calls a live Data Connector when a question carries what its inputs take,
and answers from the call (``emulator/actions.py``). The connector points at a real endpoint on
loopback that stands in for findesk's lookup and records what it was asked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from content_api_server import ServedApp
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import create_engine

from findesk.emulator.actions import ConnectorActions, question_values
from findesk.emulator.answerer import RetrievalAnswerer
from findesk.emulator.data_connectors_store import DataConnectorStore

ORDERS = {"A-1042": {"id": "A-1042", "status": "shipped", "carrier": "DHL"}}
USER = {"id": "usr_ana", "role": "user"}
CONVERSATION = {"id": "conv_1", "tags": [], "attributes": {}}


class Page:
    def __init__(self, title: str, html: str) -> None:
        self.id = 1
        self.title = title
        self.html = html
        self.url = "https://help.example.com/shipping"


PAGES = [Page("Shipping", "<p>Orders ship within two days of payment, by DHL or UPS.</p>")]


class Lookup:
    """The endpoint a connector calls: an order by id, with the caller's context recorded."""

    def __init__(self) -> None:
        self.calls: list[dict[str, str]] = []
        self.failing = False
        app = FastAPI()

        @app.get("/api/connectors/lkp_orders")
        def order(request: Request) -> JSONResponse:
            params = dict(request.query_params)
            params["authorization"] = request.headers.get("authorization", "")
            self.calls.append(params)
            if self.failing:
                return JSONResponse({"error": "down"}, status_code=503)
            found = ORDERS.get(params.get("order_id", ""))
            if found is None:
                return JSONResponse({"found": False})
            return JSONResponse({"found": True, "order": found})

        self.served = ServedApp(app)

    @property
    def url(self) -> str:
        return (
            f"{self.served.base_url}/api/connectors/lkp_orders?order_id={{{{order_id}}}}"
            "&user_id={{user_id}}&conversation_id={{conversation_id}}"
        )


@pytest.fixture
def lookup() -> Iterator[Lookup]:
    served = Lookup()
    yield served
    served.served.stop()


@pytest.fixture
def store(tmp_path) -> DataConnectorStore:
    return DataConnectorStore(create_engine(f"sqlite:///{tmp_path / 'connectors.db'}"))


def connector(store: DataConnectorStore, lookup: Lookup, **overrides: Any) -> int:
    config: dict[str, Any] = {
        "name": "Order status",
        "description": "Look up an order by its order number (Bestellung)",
        "http_method": "get",
        "url": lookup.url,
        "headers": [{"name": "Authorization", "value": "Bearer flk_secret-token-value"}],
        "data_inputs": [
            {"name": "order_id", "type": "string", "description": "Order number", "required": True}
        ],
        "direct_fin_usage": True,
        "audiences": ["users", "leads"],
        "body": None,
        "mock_response": {"found": True, "order": {"id": "A-1", "status": "shipped"}},
        **overrides,
    }
    state = config.pop("_state", "live")
    made = store.create(config, "1")
    store.update(made.id, {}, state, "1")
    return made.id


def answer(store: DataConnectorStore, text: str, user: dict[str, Any] = USER) -> Any:
    answerer = RetrievalAnswerer(PAGES, actions=ConnectorActions(store))
    message = {"body": f"<p>{text}</p>", "author": {"user_type": "end_user", "id": user["id"]}}
    return answerer.answer(CONVERSATION, [message], user)


def test_a_question_with_an_order_number_is_answered_from_the_connector(store, lookup) -> None:
    connector_id = connector(store, lookup)
    decision = answer(store, "Where is my order A-1042?")
    assert decision.reply_html.startswith("<p>Here is what I found for A-1042:</p>")
    assert "<li>Status: shipped</li>" in decision.reply_html
    assert "<li>Carrier: DHL</li>" in decision.reply_html
    assert decision.attributes["fin_resolution"] == "answered"
    assert "lookup-order-status" in decision.tags
    (call,) = lookup.calls
    # The value from the question; the context from the conversation; the connector's header.
    assert call["order_id"] == "A-1042"
    assert call["user_id"] == "usr_ana" and call["conversation_id"] == "conv_1"
    assert call["authorization"] == "Bearer flk_secret-token-value"
    (result,) = store.executions(
        connector_id, start_ms=0, end_ms=2**62, success=None, error_type=None, after=None, limit=10
    )
    assert result.success and result.http_status == 200 and result.conversation_id == "conv_1"
    assert result.source_type == "fin"


def test_nothing_found_is_said_and_nothing_else(store, lookup) -> None:
    connector(store, lookup)
    decision = answer(store, "Where is my order B-7?")
    assert decision.reply_html == "<p>I couldn't find anything for B-7.</p>"


def test_the_answer_is_in_the_users_language(store, lookup) -> None:
    connector(store, lookup)
    decision = answer(store, "Wo ist meine Bestellung A-1042?")
    assert decision.reply_html.startswith("<p>Das habe ich zu A-1042 gefunden:</p>")


@pytest.mark.parametrize(
    "overrides",
    [
        {"direct_fin_usage": False},  # for workflows only
        {"audiences": ["visitors"]},  # not for this user
        {"_state": "draft"},  # never published
    ],
)
def test_connectors_fin_may_not_use_are_not_called(store, lookup, overrides) -> None:
    connector(store, lookup, **overrides)
    decision = answer(store, "Where is my order A-1042?")
    assert lookup.calls == []
    assert "two days" in decision.reply_html  # the article answers instead


def test_questions_without_a_value_or_about_something_else_call_nothing(store, lookup) -> None:
    connector(store, lookup)
    assert "two days" in answer(store, "When will my order ship?").reply_html
    answer(store, "My invoice 2024-77 is wrong")  # a value, but the connector is about orders
    assert lookup.calls == []


def test_a_failed_call_is_recorded_and_the_articles_answer(store, lookup) -> None:
    connector_id = connector(store, lookup)
    lookup.failing = True
    decision = answer(store, "Where is my order A-1042? Does it ship by DHL?")
    assert "two days" in decision.reply_html
    (result,) = store.executions(
        connector_id, start_ms=0, end_ms=2**62, success=None, error_type=None, after=None, limit=10
    )
    assert not result.success and result.http_status == 503
    assert result.error_type == "3rd_party_error"
    assert "flk_secret" not in result.request_url


def test_values_are_the_words_with_digits() -> None:
    assert question_values("Order #1234 and A-1042, not B-, twice A-1042") == ["1234", "A-1042"]
    assert question_values("no numbers here") == []
