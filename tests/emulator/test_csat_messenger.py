"""CSAT through the whole loop: an agent resolves, findesk's notifier tells Fin, and Fin (the
emulator) shows the rating request in the Messenger, with a link the end user can follow to
findesk's rating page. Both backends."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from loop_support import Loop, start_loop
from support.receiver import eventually
from support.server import database_url

LINK = re.compile(r'href="([^"]+/rate/rate_[A-Za-z0-9_-]+)"')


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def csat_loop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Loop]:
    tmp = tmp_path_factory.mktemp("loop-csat")
    wired = start_loop(tmp, database_url(request.param, request, tmp))
    yield wired
    wired.stop()


def test_the_messenger_shows_the_rating_request_and_its_link_works(csat_loop: Loop) -> None:
    with httpx.Client(base_url=f"{csat_loop.emulator.base_url}/messenger", timeout=30) as ana:
        assert ana.post("/api/visitor", json={"name": "Ana", "email": "ana@example.com"}).is_success
        started = ana.post("/api/conversations", json={"text": "How long do refunds take?"})
        assert started.status_code == 201, started.text
        cid = started.json()["id"]
        asked = ana.post(f"/api/conversations/{cid}/messages", json={"ask_for_a_person": True})
        assert asked.status_code == 200

        with csat_loop.findesk.agent_http("rosa@example.com", "Rosa Agent") as agent:
            resolved = agent.patch(f"/conversations/{cid}", json={"status": "resolved"})
            assert resolved.is_success, resolved.text

        def requests_shown() -> list[dict[str, object]]:
            messages = ana.get(f"/api/conversations/{cid}").json()["messages"]
            return [m for m in messages if LINK.search(str(m["html"]))]

        assert eventually(lambda: len(requests_shown()) == 1, timeout=20)
        [shown] = requests_shown()
        assert shown["from"] == "agent" and shown["name"] == "Rosa Agent"
        assert "How did we do?" in str(shown["html"])
        match = LINK.search(str(shown["html"]))
        assert match is not None
        url = match.group(1)
        assert url.startswith(f"{csat_loop.findesk.base_url}/rate/")

    # The end user follows the link: findesk's page, then the rating.
    page = httpx.get(url)
    assert page.status_code == 200 and "How did we do?" in page.text
    rated = httpx.post(url, data={"score": "5", "comment": "Great"})
    assert rated.status_code == 200 and "Thank you" in rated.text
