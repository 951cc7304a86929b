"""The take-over race end to end: the Fin emulator's sync run reads a conversation Fin owns,
an agent takes it over in Chromium while Fin is still composing its answer, and Fin's closing
update (carrying Fin as assignee, from the state it read) arrives after the take-over.

The conversation stays with the agent; Fin's answer is kept (the end user saw it) and marked
"After take-over"; the timeline shows the ignored assignment. Writes docs/inbox-timeline.png.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from loop_support import Loop
from playwright.sync_api import Browser, expect
from support.screenshots import save

from findesk.agents.service import create_agent
from findesk.conversations import service as conversations
from findesk.emulator.answerer import Decision
from findesk.emulator.sync import RunResult, SyncEngine

PASSWORD = "correct horse battery staple"
WAIT_S = 15


class GatedAnswerer:
    """Fin's answerer, held between reading the conversation and writing its answer."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.reading_done = threading.Event()
        self.go = threading.Event()

    def answer(self, *args: Any, **kwargs: Any) -> Decision:
        self.reading_done.set()
        assert self.go.wait(WAIT_S), "the test never released Fin's sync run"
        decision: Decision = self.inner.answer(*args, **kwargs)
        return decision


@pytest.fixture
def gated(loop: Loop) -> Iterator[tuple[SyncEngine, GatedAnswerer]]:
    engine: SyncEngine = loop.emulator.app.state.engine
    original = engine.answerer
    gate = GatedAnswerer(original)
    yield engine, gate
    gate.go.set()
    engine.answerer = original


def test_a_late_fin_sync_run_leaves_the_conversation_with_the_agent_who_took_it_over(
    loop: Loop, browser: Browser, gated: tuple[SyncEngine, GatedAnswerer]
) -> None:
    engine, gate = gated
    findesk = loop.findesk
    email = f"alex-{uuid.uuid4().hex[:6]}@example.com"
    with findesk.db.transaction() as session:
        alex = create_agent(session, email=email, name="Alex Rivera", password=PASSWORD).id

    # The end user starts in the Messenger; Fin answers and keeps the conversation.
    started = engine.start_conversation(
        {"object_id": f"u-{uuid.uuid4().hex[:8]}", "name": "Sam Customer"},
        "<p>How are refunds paid back?</p>",
    )
    assert started.error is None
    assert started.decision is not None and not started.decision.hand_over
    cid = started.conversation_id
    assert cid is not None

    # The end user writes again; Fin's sync run reads (Fin owns it) and is held before answering.
    engine.answerer = gate  # type: ignore[assignment]
    results: list[RunResult] = []
    run = threading.Thread(
        target=lambda: results.append(
            engine.user_says(
                cid, "<p>How many business days until the refund is paid back to my card?</p>"
            )
        )
    )
    run.start()
    assert gate.reading_done.wait(WAIT_S)

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{findesk.base_url}/login?next=/inbox/conversations/{cid}")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(rf"/inbox/conversations/{cid}"))
        page.get_by_role("button", name="Take over").click()
        expect(page.locator(".owner-line")).to_contain_text("You own this conversation.")
        expect(page.locator("body")).to_have_attribute("data-live", "open")

        # Fin's run goes on with the state it read: its answer, then assignee = Fin.
        gate.go.set()
        run.join(WAIT_S)
        assert not run.is_alive() and results and results[0].error is None
        assert results[0].reply is not None

        with findesk.db.read_session() as session:
            assert conversations.get_conversation(session, cid).assignee_id == alex

        # The inbox, live: still the agent's; Fin's late answer marked; the ignored assignment
        # told in the timeline.
        expect(page.locator(".owner-line")).to_contain_text("You own this conversation.")
        late = page.locator(f"li.message#{results[0].reply['id']}")
        expect(late.locator(".badge.late")).to_have_text("After take-over")
        ignored = page.locator("li.event.ignored")
        expect(ignored).to_contain_text("Fin tried to take it back · ignored:")
        expect(ignored).to_contain_text("Alex Rivera had taken over")
        expect(page.locator("li.event[data-kind=take_over]")).to_contain_text(
            "Alex Rivera took over from Fin"
        )
        ignored.scroll_into_view_if_needed()
        save(page, "inbox-timeline.png")
    finally:
        context.close()
