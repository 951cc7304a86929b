"""Live streams are bounded: a web session holds at most FINDESK_LIVE_STREAMS_PER_SESSION (a new
one closes the session's oldest, which is told to come back later), and a process at most
FINDESK_LIVE_STREAMS_MAX (503 beyond). Other sessions' streams are never touched."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
from support.receiver import eventually
from support.server import LiveServer
from web_support import Web, new_agent, sign_in, start_server

from findesk.kit.streams import EVICTED_RETRY_MS

PER_SESSION = 2
MAX = 4
READ_TIMEOUT = 5.0  # a stream with nothing to say sends a heartbeat every 15 s only


@pytest.fixture(scope="module")
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    server = start_server(
        request,
        "sqlite",
        tmp_path_factory.mktemp("live-limits"),
        live_streams_per_session=PER_SESSION,
        live_streams_max=MAX,
    )
    yield server
    server.stop()


def open_streams(live: LiveServer) -> int:
    return int(live.app.state.live_streams.open_count)


@pytest.fixture(autouse=True)
def no_stream_left(live: LiveServer) -> None:
    """Each test starts with no stream open (those of the test before are closed by now)."""
    assert eventually(lambda: open_streams(live) == 0, timeout=10)


class Stream:
    """One open ``/inbox/live`` stream, read line by line."""

    def __init__(self, http: httpx.Client, stack: ExitStack) -> None:
        timeout = httpx.Timeout(10, read=READ_TIMEOUT)
        self.response = stack.enter_context(http.stream("GET", "/inbox/live", timeout=timeout))
        self.status = self.response.status_code
        self._lines = self.response.iter_lines()
        if self.status == 200:
            assert [self.line(), self.line()] == ["retry: 2000", ""]

    def line(self) -> str | None:
        """The next line; None once the server has ended the stream."""
        return next(self._lines, None)

    def rest(self) -> list[str]:
        """Every line up to the stream's end."""
        return [line for line in iter(self.line, None)]

    def next_change(self) -> str:
        while (line := self.line()) is not None:
            if line.startswith("data: "):
                return line
        raise AssertionError("the stream ended")

    def close(self) -> None:
        self.response.close()


def test_a_sessions_oldest_stream_makes_way_and_others_are_untouched(live: LiveServer) -> None:
    ada = sign_in(live, new_agent(live, "Ada Agent"))
    bob = sign_in(live, new_agent(live, "Bob Agent"))
    with ExitStack() as stack:
        oldest, second = Stream(ada.http, stack), Stream(ada.http, stack)
        bobs = Stream(bob.http, stack)
        newest = Stream(ada.http, stack)  # one more than a session may hold
        assert newest.status == 200
        # The oldest is ended, told to come back later (not at once, where it would push out
        # another of the session's tabs in turn); it resumes from Last-Event-ID then.
        assert oldest.rest() == [f"retry: {EVICTED_RETRY_MS}", ""]
        world = live.fin_world()
        conversation, _ = world.conversation()
        for stream in (second, newest, bobs):
            assert conversation["id"] in stream.next_change()


def test_a_full_process_refuses_new_streams_until_one_closes(live: LiveServer) -> None:
    ada, bob, cy, dee = (sign_in(live, new_agent(live, f"{n} Agent")) for n in "ABCD")
    with ExitStack() as stack:
        held = [Stream(web.http, stack) for web in (ada, ada, bob, cy)]
        assert [s.status for s in held] == [200] * MAX
        refused = Stream(dee.http, stack)
        assert refused.status == 503
        assert int(refused.response.headers["retry-after"]) > 0
        # A session at its own limit still gets its new stream, in place of its oldest.
        newest = Stream(ada.http, stack)  # (kept: a dropped Stream closes its connection)
        assert newest.status == 200
        assert held[0].rest() == [f"retry: {EVICTED_RETRY_MS}", ""]
        assert open_streams(live) == MAX
        held[-1].close()  # a tab closed: its slot is free at once
        assert eventually(lambda: open_streams(live) == MAX - 1, timeout=10)
        assert Stream(dee.http, stack).status == 200


def test_a_closed_stream_frees_its_sessions_slot(live: LiveServer) -> None:
    web: Web = sign_in(live, new_agent(live, "Cy Agent"))
    with ExitStack() as stack:
        first, second = Stream(web.http, stack), Stream(web.http, stack)
        first.close()
        assert eventually(lambda: open_streams(live) == 1, timeout=10)
        third = Stream(web.http, stack)
        assert third.status == 200 and open_streams(live) == 2
        world = live.fin_world()
        conversation, _ = world.conversation()
        for stream in (second, third):  # the second was not pushed out
            assert conversation["id"] in stream.next_change()
