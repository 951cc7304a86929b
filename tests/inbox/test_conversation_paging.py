"""A long conversation in the inbox over plain HTTP (no JavaScript), on SQLite and PostgreSQL:
it opens on its newest 50 messages with the changes made among them, and "Show older
messages" (``?before=``) and "Show newer messages" (``?after=``) walk through every message and
every change once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from support.fin import World
from support.long_conversation import add_change, open_long
from support.server import LiveServer
from web_support import Node, Person, Web, unique

MESSAGES = 130  # three pages: 50, 50 and 30


@dataclass(frozen=True)
class Changed:
    id: str
    message_ids: list[str]  # in creation order
    changes: dict[str, int]  # name -> history event id


@pytest.fixture(scope="module")
def long(server: LiveServer, world: World, me: Person) -> Changed:
    made = open_long(world, server.db, MESSAGES, human_agent_id=me.id)
    cid, times = made.id, made.times
    half = timedelta(milliseconds=500)
    changes = {
        "oldest page": add_change(server.db, cid, times[11] + half, unique("a")),
        "middle page": add_change(server.db, cid, times[-60] + half, unique("b")),
        "newest page": add_change(server.db, cid, times[-20] + half, unique("c")),
        # With the first message of the newest page, to the instant: shown before it, there.
        "boundary": add_change(server.db, cid, times[-50], unique("d")),
    }
    return Changed(cid, made.message_ids, changes)


def thread(page: Node) -> list[str]:
    """The thread's items, top to bottom: message ids, and ``event-<id>`` for changes."""
    items = page.find("ol", "thread").find_all("li")
    return [li.attrs["id"] for li in items if li.classes & {"message", "event"}]


def shown_messages(page: Node) -> list[str]:
    return [li.attrs["id"] for li in page.find("ol", "thread").find_all("li", "message")]


def shown_changes(page: Node) -> list[int]:
    items = page.find("ol", "thread").find_all("li", "event")
    return [int(li.attrs["id"].removeprefix("event-")) for li in items]


def link(page: Node, cls: str) -> str | None:
    found = page.first("a", cls)
    return found.attrs["href"] if found else None


def params_of(href: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(href).query)


def test_a_long_conversation_opens_on_its_newest_50_and_pages_back_without_javascript(
    web: Web, long: Changed
) -> None:
    ids, changes = long.message_ids, long.changes
    newest = web.page(f"/inbox/conversations/{long.id}", queue="all")
    assert shown_messages(newest) == ids[-50:]
    assert set(shown_changes(newest)) == {changes["newest page"], changes["boundary"]}
    items = thread(newest)
    assert items.index(f"event-{changes['boundary']}") == items.index(ids[-50]) - 1
    older = link(newest, "show-older")
    assert older is not None and link(newest, "show-newer") is None
    assert newest.find("a", "show-older").text == "Show older messages"
    assert params_of(older) == {"queue": ["all"], "before": [ids[-50]]}

    middle = web.page(older)
    assert shown_messages(middle) == ids[-100:-50]
    assert shown_changes(middle) == [changes["middle page"]]
    assert params_of(link(middle, "show-newer") or "") == {"queue": ["all"], "after": [ids[-51]]}
    assert link(middle, "show-newest") == f"/inbox/conversations/{long.id}?queue=all"

    oldest = web.page(link(middle, "show-older") or "")
    assert shown_messages(oldest) == ids[:30]
    assert shown_changes(oldest) == [changes["oldest page"]]
    assert link(oldest, "show-older") is None

    # Together: every message and every change once, in order.
    pages = (oldest, middle, newest)
    assert [m for page in pages for m in shown_messages(page)] == ids
    assert sorted(c for page in pages for c in shown_changes(page)) == sorted(changes.values())

    # And forward again from the oldest page.
    forward = web.page(link(oldest, "show-newer") or "")
    assert shown_messages(forward) == ids[30:80]


def test_the_reply_form_and_the_fragment_of_an_older_page(web: Web, long: Changed) -> None:
    ids = long.message_ids
    older = web.page(f"/inbox/conversations/{long.id}", queue="all", before=ids[-50])
    assert shown_messages(older) == ids[-100:-50]
    # A reply from an older page lands on the newest one, where it is.
    form = older.find("form", "composer")
    assert "before" not in form.attrs["action"]
    assert "queue%3Dall" in form.attrs["action"]
    # The live-refresh fragment renders the window asked for; its links keep the queue only.
    fragment = web.page(f"/inbox/fragments/conversation/{long.id}", queue="all", before=ids[-50])
    assert shown_messages(fragment) == ids[-100:-50]
    assert fragment.find("ol", "thread").attrs["data-window"] == f"before={ids[-50]}"
    assert "before" not in fragment.find("form", "composer").attrs["action"]
    assert params_of(link(fragment, "show-older") or "") == {
        "queue": ["all"],
        "before": [ids[-100]],
    }
    newest = web.page(f"/inbox/fragments/conversation/{long.id}", queue="all")
    assert shown_messages(newest) == ids[-50:]
    assert newest.find("ol", "thread").attrs["data-window"] == ""


def test_a_stale_or_foreign_before_shows_the_newest(web: Web, long: Changed, world: World) -> None:
    _, elsewhere = world.conversation()
    for before in (elsewhere["id"], "msg_unknown", ""):
        page = web.page(f"/inbox/conversations/{long.id}", before=before)
        assert shown_messages(page) == long.message_ids[-50:], before


def test_a_short_conversation_shows_every_message_and_every_change(
    server: LiveServer, web: Web, world: World
) -> None:
    conversation, first = world.conversation(title=unique("Short"))
    cid = conversation["id"]
    world.fin_says(cid)
    world.hand_over(cid)
    first_at = datetime.fromisoformat(first["created_at"])
    before_everything = add_change(server.db, cid, first_at - timedelta(minutes=1), "x")
    page = web.page(f"/inbox/conversations/{cid}")
    assert len(shown_messages(page)) == 2
    assert before_everything in shown_changes(page)
    assert any(li.attrs.get("data-kind") == "handover" for li in page.find_all("li", "event"))
    assert link(page, "show-older") is None and link(page, "show-newer") is None
