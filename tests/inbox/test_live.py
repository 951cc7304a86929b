"""The inbox's live stream (Server-Sent Events) shows every change, Fin's included, and a
dropped connection resumes where it stopped (``Last-Event-ID``), missing nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.server import LiveServer
from web_support import new_agent, sign_in, start_server


@pytest.fixture(scope="module")
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    server = start_server(request, "sqlite", tmp_path_factory.mktemp("live"))
    yield server
    server.stop()


def read_events(
    http: httpx.Client, count: int, headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Open the stream and read ``count`` change events (with their SSE ids)."""
    events: list[dict[str, Any]] = []
    with http.stream("GET", "/inbox/live", headers=headers or {}, timeout=20) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event_id = None
        for line in response.iter_lines():
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: "):
                events.append({"sse_id": event_id, **json.loads(line[6:])})
                if len(events) == count:
                    break
    return events


def test_a_dropped_stream_resumes_from_the_last_event_it_saw(live: LiveServer) -> None:
    agent = sign_in(live, new_agent(live))
    world = live.fin_world()
    first, _ = world.conversation()  # Fin's own change is shown too
    seen = read_events(agent.http, 1, {"Last-Event-ID": "0"})
    assert seen[0]["conversation_id"] == first["id"] and seen[0]["kind"] == "conversation"
    assert seen[0]["actor"] == "fin" and seen[0]["owner"] == "fin"

    # While the agent is disconnected, Fin hands a conversation over and it changes again.
    second, _ = world.conversation()
    world.hand_over(second["id"])
    world.fin_says(second["id"], "<p>A teammate will help.</p>")

    missed = read_events(agent.http, 3, {"Last-Event-ID": str(seen[0]["sse_id"])})
    assert [(e["conversation_id"], e["kind"]) for e in missed] == [
        (second["id"], "conversation"),
        (second["id"], "assignee"),
        (second["id"], "message"),
    ]
    assert missed[1]["owner"] == "waiting"  # what the handover notice keys on
    assert [e["sse_id"] for e in missed] == sorted({e["sse_id"] for e in missed})
    assert missed[0]["sse_id"] > seen[0]["sse_id"]


def test_the_stream_needs_a_session(live: LiveServer) -> None:
    with httpx.Client(base_url=live.base_url) as anonymous:
        assert anonymous.get("/inbox/live").status_code == 401


@pytest.mark.parametrize("resume", ["²", "٣", "9" * 40, "-1", "1e3", "0x10"])
def test_a_resume_point_that_is_not_an_event_id_starts_from_now(live: LiveServer, resume) -> None:
    """A bad resume point (``?after=`` or Last-Event-ID: a digit int() refuses, a number beyond
    64 bits) is ignored: the stream opens from now, never a 500."""
    agent = sign_in(live, new_agent(live))
    with agent.http.stream("GET", "/inbox/live", params={"after": resume}, timeout=20) as response:
        assert response.status_code == 200
        assert next(response.iter_lines()) == "retry: 2000"
