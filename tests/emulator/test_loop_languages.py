"""The whole loop in German: an article translated through the emulator's Articles API, an end
user writing German in findesk's conversation, Fin's German answer citing the German page."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from loop_support import Loop, start_loop
from sqlalchemy import select
from support.receiver import eventually
from support.server import database_url

from findesk.conversations.models import Message

GERMAN_BODY = (
    "<p>Rückerstattungen werden innerhalb von 5 Werktagen auf die ursprüngliche Karte "
    "zurückgezahlt.</p>"
)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def german_loop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Loop]:
    tmp = tmp_path_factory.mktemp("loop-de")
    wired = start_loop(tmp, database_url(request.param, request, tmp))
    yield wired
    wired.stop()


@pytest.fixture(scope="module")
def german_url(german_loop: Loop) -> str:
    """The refunds article, published in German through the Articles API (English: the
    content library's external page that ``start_loop`` puts there)."""
    with german_loop.admin() as admin:
        response = admin.post(
            "/articles",
            json={
                "title": "Refunds",
                "author_id": 1,
                "state": "draft",
                "translated_content": {
                    "de": {"title": "Rückerstattungen", "body": GERMAN_BODY, "state": "published"}
                },
            },
        )
        assert response.status_code == 200, response.text
    url = str(response.json()["translated_content"]["de"]["url"])
    assert url.startswith(f"{german_loop.emulator.base_url}/help/de/articles/")
    return url


def fin_bodies(loop: Loop, conversation_id: str) -> list[str]:
    with loop.findesk.db.read_session() as session:
        return [
            m.body or ""
            for m in session.scalars(
                select(Message).where(
                    Message.conversation_id == conversation_id,
                    Message.author_agent_id == loop.findesk.fin_agent_id,
                )
            )
        ]


def test_an_end_user_writing_german_gets_the_german_answer(
    german_loop: Loop, german_url: str
) -> None:
    # As in the English loop: the end user writes in findesk, an agent's change makes findesk's
    # notifier call Fin's webhook, and Fin (the emulator) syncs and answers.
    world = german_loop.findesk.fin_world()
    conversation, _ = world.conversation(body="<p>Hallo!</p>")
    cid = conversation["id"]
    world.user_says(cid, conversation["user"]["id"], "<p>Wie lange dauert eine Rückerstattung?</p>")
    with german_loop.findesk.agent_http("de-ops@example.com", "Ops") as agent:
        assert agent.patch(f"/conversations/{cid}", json={"tags": ["de"]}).is_success
    assert eventually(
        lambda: any("Werktagen" in b for b in fin_bodies(german_loop, cid)), timeout=20
    )
    [answer] = [b for b in fin_bodies(german_loop, cid) if "Werktagen" in b]
    assert "Quelle:" in answer and f'href="{german_url}"' in answer
    assert "Rückerstattungen</a>" in answer
    with german_loop.admin() as admin:
        assert admin.get("/emulator/errors").json() == []
    # The citation opens: the emulator's help centre serves the German page.
    with httpx.Client(timeout=10) as browser:
        page = browser.get(german_url)
    assert page.status_code == 200 and "5 Werktagen" in page.text


def test_the_messenger_in_german_and_in_english(german_loop: Loop, german_url: str) -> None:
    engine = german_loop.emulator.app.state.engine
    run = engine.start_conversation(
        {"object_id": "messenger-de-1", "name": "Jonas"},
        "<p>Wann bekomme ich meine Rückerstattung?</p>",
    )
    assert run.error is None and run.reply is not None, run.error
    assert "5 Werktagen" in run.reply["body"] and "Quelle:" in run.reply["body"]
    assert f'href="{german_url}"' in run.reply["body"]
    english = engine.start_conversation(
        {"object_id": "messenger-en-1", "name": "Ana"}, "<p>How long do refunds take?</p>"
    )
    assert english.reply is not None and "5 business days" in english.reply["body"]
    assert "Source:" in english.reply["body"]
