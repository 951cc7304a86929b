"""The Messenger's live streams are bounded as the inbox's are: per visitor (a new stream ends the
visitor's oldest, told to come back later) and per process (503 beyond)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from content_api_server import ServedApp
from loop_support import Loop, emulator_config
from support.receiver import eventually

from findesk.emulator.server import create_emulator
from findesk.kit.streams import EVICTED_RETRY_MS

PER_VISITOR = 2
MAX = 3


@pytest.fixture
def messenger(loop: Loop, tmp_path: Path) -> Iterator[ServedApp]:
    config = replace(
        emulator_config(loop.findesk, tmp_path / "limited"),
        live_streams_per_session=PER_VISITOR,
        live_streams_max=MAX,
    )
    served = ServedApp(create_emulator(config))
    yield served
    served.stop()


def open_streams(served: ServedApp) -> int:
    return int(served.app.state.messenger_streams.open_count)


def visitor(served: ServedApp, name: str, stack: ExitStack) -> tuple[httpx.Client, str]:
    """A visitor with one conversation started."""
    http = stack.enter_context(httpx.Client(base_url=f"{served.base_url}/messenger", timeout=30))
    email = f"{name.lower()}@example.com"
    assert http.post("/api/visitor", json={"name": name, "email": email}).status_code == 201
    started = http.post("/api/conversations", json={"text": "Do you ship to Portugal?"})
    assert started.status_code == 201, started.text
    return http, started.json()["id"]


class Stream:
    """A conversation's stream, open until the test ends (keep a reference: a dropped one
    closes its connection)."""

    def __init__(self, http: httpx.Client, conversation_id: str, stack: ExitStack) -> None:
        timeout = httpx.Timeout(10, read=5.0)
        path = f"/api/conversations/{conversation_id}/stream"
        self.response = stack.enter_context(http.stream("GET", path, timeout=timeout))
        self.status = self.response.status_code
        self._lines = self.response.iter_lines()
        if self.status == 200:  # the conversation as it is now comes first
            first = [self.line(), self.line(), self.line()]
            assert first[0] == "event: conversation" and first[2] == "", first

    def line(self) -> str | None:
        return next(self._lines, None)

    def next_view(self) -> str:
        while (line := self.line()) is not None:
            if line.startswith("data: "):
                return line
        raise AssertionError("the stream ended")

    def rest(self) -> list[str]:
        return [line for line in iter(self.line, None) if not line.startswith("data: ")]


def test_a_visitors_oldest_stream_makes_way_and_a_full_process_refuses(
    messenger: ServedApp,
) -> None:
    with ExitStack() as stack:
        ana, ana_conversation = visitor(messenger, "Ana", stack)
        eve, eve_conversation = visitor(messenger, "Eve", stack)
        rui, rui_conversation = visitor(messenger, "Rui", stack)
        oldest = Stream(ana, ana_conversation, stack)
        second = Stream(ana, ana_conversation, stack)
        eves = Stream(eve, eve_conversation, stack)
        newest = Stream(ana, ana_conversation, stack)
        assert newest.status == 200
        assert f"retry: {EVICTED_RETRY_MS}" in oldest.rest()
        assert open_streams(messenger) == MAX

        refused = Stream(rui, rui_conversation, stack)
        assert refused.status == 503 and int(refused.response.headers["retry-after"]) > 0

        # The others are untouched: each still shows its conversation as it changes.
        said = ana.post(f"/api/conversations/{ana_conversation}/messages", json={"text": "Hi"})
        assert said.status_code == 200
        for stream in (second, newest):
            assert "<p>Hi</p>" in stream.next_view()
        said = eve.post(f"/api/conversations/{eve_conversation}/messages", json={"text": "Hey"})
        assert said.status_code == 200 and "<p>Hey</p>" in eves.next_view()

        eves.response.close()  # the tab closed: its slot is free at once
        assert eventually(lambda: open_streams(messenger) == MAX - 1, timeout=10)
        ruis = Stream(rui, rui_conversation, stack)
        assert ruis.status == 200
