"""The inbox's pages and forms over plain HTTP, on SQLite and on PostgreSQL: what an agent sees
in each queue, filters, search, paging, the conversation view, the forms and the admin page.

Data is made through the Fin API, as Fin makes it; pages are read as HTML, the way a person
(or a browser without JavaScript) reads them. Each test makes its own conversations, with
unique titles or tags, so tests do not see each other's data in the shared module database.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
from sqlalchemy import select, update
from support.fin import World
from support.server import LiveServer
from web_support import (
    FILE_URL,
    PASSWORD,
    Node,
    Person,
    Web,
    attachment_links,
    client,
    files_on_disk,
    listed_ids,
    new_agent,
    parse_html,
    sign_in,
    snapshot,
    start_server,
    submit_login,
    unique,
)

from findesk.attachments.models import StoredFile
from findesk.conversations.models import Conversation
from findesk.kit.timeutil import utcnow
from findesk.notifier.models import OutboxEvent

MAX_ATTACHMENT = 64 * 1024


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live = start_server(
        request,
        request.param,
        tmp_path_factory.mktemp("pages"),
        max_attachment_bytes=MAX_ATTACHMENT,
    )
    yield live
    live.stop()


@pytest.fixture(scope="module")
def world(server: LiveServer) -> World:
    return server.fin_world()


@pytest.fixture(scope="module")
def me(server: LiveServer) -> Person:
    return new_agent(server, "Ada Agent")


@pytest.fixture(scope="module")
def colleague(server: LiveServer) -> Person:
    return new_agent(server, "Bea Colleague")


@pytest.fixture(scope="module")
def web(server: LiveServer, me: Person) -> Iterator[Web]:
    signed_in = sign_in(server, me)
    yield signed_in
    signed_in.close()


@pytest.fixture(scope="module")
def admin_web(server: LiveServer) -> Iterator[Web]:
    signed_in = sign_in(server, new_agent(server, "Root Admin", role="admin"))
    yield signed_in
    signed_in.close()


# --- helpers ---------------------------------------------------------------------------------


def conversation(world: World, title: str | None = None, **fields: object) -> str:
    created, _ = world.conversation(title=title or unique("Order"), **fields)
    return str(created["id"])


def queue(web: Web, **params: str) -> list[str]:
    return listed_ids(web.page("/inbox", **params))


def counts(page: Node) -> dict[str, int]:
    return {s.attrs["data-count"]: int(s.text) for s in page.find_all("span", "count")}


def owner_line(page: Node) -> str:
    return page.find("p", "owner-line").text


def messages(page: Node) -> list[Node]:
    return page.find("ol", "thread").find_all("li", "message")


def follow(web: Web, response: httpx.Response) -> Node:
    """Follow the post/redirect/get redirect, as the browser does."""
    assert response.status_code == 303, (response.status_code, response.text[:300])
    return web.page(response.headers["location"])


def stored(server: LiveServer, conversation_id: str) -> dict[str, object]:
    with server.db.read_session() as session:
        row = session.get(Conversation, conversation_id)
        assert row is not None
        return {"assignee_id": row.assignee_id, "status": row.status, "tags": row.tags}


def outbox_events(server: LiveServer, conversation_id: str) -> int:
    """How many changes of the conversation Fin has been (or will be) told of."""
    with server.db.read_session() as session:
        found = session.scalars(
            select(OutboxEvent.id).where(OutboxEvent.conversation_id == conversation_id)
        )
        return len(found.all())


# --- queues ----------------------------------------------------------------------------------


def test_each_queue_lists_the_conversations_it_is_for(
    server: LiveServer, world: World, colleague: Person
) -> None:
    me = new_agent(server, "Max Mine")  # "Mine" is exactly what this test gives them
    web = sign_in(server, me)
    before = counts(web.page("/inbox"))
    # An empty queue says what would fill it, and an empty search what to try.
    empty = web.page("/inbox", queue="mine").find("li", "empty").text
    assert "Nothing is assigned to you. Take one over from Waiting for a human." in empty
    nothing = web.page("/inbox", q=unique("nowhere"), within="waiting").find("li", "empty").text
    assert "No conversation matches" in nothing and "untick" in nothing
    with_fin = conversation(world)
    waiting = conversation(world)
    world.hand_over(waiting)
    mine = conversation(world)
    world.update(mine, assignee_id=me.id)
    theirs = conversation(world)
    world.update(theirs, assignee_id=colleague.id)
    closed = conversation(world)
    world.hand_over(closed)
    world.update(closed, status="closed")
    ours = {with_fin, waiting, mine, theirs, closed}

    def shown(**params: str) -> set[str]:
        return set(queue(web, **params)) & ours

    assert shown() == {waiting}  # the inbox opens on "Waiting for a human"
    assert shown(queue="waiting") == {waiting}
    assert shown(queue="mine") == {mine}
    assert shown(queue="fin") == {with_fin}
    assert shown(queue="all") == {with_fin, waiting, mine, theirs}
    assert shown(queue="all", status="closed") == {closed}
    assert shown(queue="waiting", status="any") == {waiting, closed}

    page = web.page("/inbox", queue="all")
    assert page.find("a", "current").attrs["data-queue"] == "all"
    badges = {
        li.attrs["data-conversation-id"]: li.find("span", "owner").text
        for li in page.find_all("li", "conversation-item")
    }
    assert badges[with_fin] == "Fin"
    assert badges[waiting] == "waiting <1m"  # since Fin handed it over
    assert badges[mine] == me.name
    assert badges[theirs] == colleague.name

    after = counts(page)  # open conversations only
    assert after["mine"] == 1
    assert after["waiting"] - before["waiting"] == 1
    assert after["fin"] - before["fin"] == 1
    assert after["all"] - before["all"] == 4
    web.close()


def test_queues_filter_by_status_and_tag(world: World, web: Web) -> None:
    tag = unique("tag")
    open_tagged = conversation(world)
    world.update(open_tagged, tags=[tag, "other"])
    resolved = conversation(world)
    world.update(resolved, tags=[tag], status="resolved")
    closed = conversation(world)
    world.update(closed, tags=[tag], status="closed")
    untagged = conversation(world)

    assert queue(web, queue="all", tag=tag) == [open_tagged]  # open ones unless asked
    assert queue(web, queue="all", tag=tag, status="open") == [open_tagged]
    assert queue(web, queue="all", tag=tag, status="resolved") == [resolved]
    assert queue(web, queue="all", tag=tag, status="closed") == [closed]
    assert set(queue(web, queue="all", tag=tag, status="any")) == {open_tagged, resolved, closed}
    assert untagged in queue(web, queue="all")

    page = web.page("/inbox", queue="fin", tag=tag, status="resolved")
    assert listed_ids(page) == [resolved]  # Fin still owns it
    form = page.find("form", "filters")  # the form shows the filter in force
    assert form.find("input", name="tag").attrs["value"] == tag
    assert form.find("option", selected="").attrs["value"] == "resolved"
    assert form.find("input", name="queue").attrs["value"] == "fin"
    assert tag in page.find("li", "conversation-item").text  # the tag is shown on the item


def test_search_finds_titles_people_and_message_text(world: World, web: Web) -> None:
    # Letters only: PostgreSQL's parser cuts a run of hex digits such as 12e4c7fe into a number
    # and a word, and then the wildcard check below finds a word it was not looking for.
    word = "zebra" + "".join(random.choices(string.ascii_lowercase, k=12))
    by_title = conversation(world, title=f"Refund for {word}")
    person = world.user(email=f"{word}@example.com")
    by_email, _ = world.conversation(person)
    by_text, _ = world.conversation()
    world.user_says(by_text["id"], by_text["user"]["id"], f"<p>My order <b>{word}</b> is late</p>")
    unrelated = conversation(world, title="Nothing to see")
    expected = {by_title, by_email["id"], by_text["id"]}

    # The search box searches every queue and every status.
    page = web.page("/inbox", queue="all", status="any", q=word)
    assert set(listed_ids(page)) == expected
    assert word in page.find("p", "searching").text
    assert set(queue(web, queue="all", status="any", q=word.upper())) == expected
    world.update(by_title, status="closed")
    assert by_title in queue(web, queue="all", status="any", q=word)
    # Text is searched as the agent reads it, whatever HTML spells it with.
    by_symbols, _ = world.conversation()
    world.user_says(
        by_symbols["id"], by_symbols["user"]["id"], f"<p>Invoice: {word}&amp;Sons &lt;Ltd&gt;</p>"
    )
    assert queue(web, queue="all", status="any", q=f"{word}&Sons <Ltd>") == [by_symbols["id"]]
    # Wildcards are searched for as text, not as patterns.
    for pattern in ("%", "_", f"{word[:5]}%{word[-4:]}"):
        assert not set(queue(web, queue="all", status="any", q=pattern)) & (
            expected | {unrelated}
        ), pattern


def test_older_conversations_pages_through_every_conversation_once(
    server: LiveServer, world: World, web: Web
) -> None:
    tag = unique("page")
    made = []
    for _ in range(30):
        cid = conversation(world)
        world.update(cid, tags=[tag])
        made.append(cid)
    # Half of them with the very same last activity, across the page boundary (25).
    same_moment = utcnow() - timedelta(hours=1)
    with server.db.transaction() as session:
        session.execute(
            update(Conversation)
            .where(Conversation.id.in_(made[:15]))
            .values(last_activity_at=same_moment)
        )
    with server.db.read_session() as session:
        newest_first = [
            row.id
            for row in session.scalars(
                select(Conversation)
                .where(Conversation.id.in_(made))
                .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
            ).unique()
        ]

    seen: list[str] = []
    pages = 0
    url: str | None = f"/inbox?queue=all&tag={tag}"
    while url is not None:
        page = web.page(url)
        seen += listed_ids(page)
        pages += 1
        older = page.first("a", "older")
        url = older.attrs["href"] if older else None
        assert pages <= 3, "the pages never end"
    assert pages == 2
    assert len(seen) == len(set(seen)) == 30
    assert seen == newest_first


# --- the conversation ------------------------------------------------------------------------


def test_the_conversation_says_who_owns_it_and_marks_fin_and_private_notes(
    server: LiveServer, world: World, me: Person, colleague: Person, web: Web
) -> None:
    cid = conversation(world, title="Where is my parcel?")
    world.fin_says(cid, "<p>It left the warehouse today.</p>")
    path = f"/inbox/conversations/{cid}"
    page = web.page(path)
    assert owner_line(page).startswith("Fin is handling this conversation.")
    assert page.find("h2", id="conversation-title").text == "Where is my parcel?"
    user_said, fin_said = messages(page)
    assert "from-user" in user_said.classes
    assert user_said.first("span", "bot") is None
    assert "from-fin" in fin_said.classes
    assert fin_said.find("span", "bot").text == "Bot"
    assert "Fin" in fin_said.find("div", "message-head").text
    assert "It left the warehouse today." in fin_said.find("div", "body").text

    # A private note is marked, and does not take the conversation from Fin.
    note = web.post(f"{path}/reply", {"body": "<p>Check the courier</p>", "visibility": "private"})
    page = follow(web, note)
    last = messages(page)[-1]
    assert "private" in last.classes
    assert last.find("span", "note").text == "Private note"
    assert "from-agent" in last.classes
    assert owner_line(page).startswith("Fin is handling")
    assert all(m.first("span", "note") is None for m in messages(page)[:-1])

    world.hand_over(cid)
    assert owner_line(web.page(path)).startswith("Waiting for a human")
    world.update(cid, assignee_id=colleague.id)
    assert owner_line(web.page(path)).startswith(f"{colleague.name} owns this conversation.")
    # Fin may not take it from a human (the take-over rule); an agent may reassign it.
    world.update(cid, assignee_id=me.id)
    assert owner_line(web.page(path)).startswith(f"{colleague.name} owns this conversation.")
    web.post(f"{path}/assign", {"agent_id": me.id})
    assert owner_line(web.page(path)).startswith("You own this conversation.")

    missing = web.get("/inbox/conversations/conv_doesnotexist")
    assert missing.status_code == 404
    assert "Not found" in parse_html(missing.text).find("h1").text


def test_the_forms_change_the_conversation_and_come_back_to_it(
    server: LiveServer, world: World, me: Person, colleague: Person, web: Web
) -> None:
    cid = conversation(world)
    world.hand_over(cid)
    base = f"/inbox/conversations/{cid}"
    came_from = "?from=queue%3Dwaiting%26status%3Dany"

    taken = web.post(f"{base}/take-over{came_from}")
    assert taken.status_code == 303
    location = urlsplit(taken.headers["location"])
    assert location.path == base
    assert parse_qs(location.query) == {"queue": ["waiting"], "status": ["any"]}
    page = follow(web, taken)
    assert owner_line(page).startswith("You own this conversation.")
    assert page.find("a", "current").attrs["data-queue"] == "waiting"  # back where they were
    assert stored(server, cid)["assignee_id"] == me.id

    page = follow(web, web.post(f"{base}/assign", {"agent_id": colleague.id}))
    assert owner_line(page).startswith(f"{colleague.name} owns")
    selected = page.find("select", id="assign-to").find("option", selected="")
    assert selected.attrs["value"] == colleague.id

    page = follow(web, web.post(f"{base}/assign", {"agent_id": ""}))
    assert owner_line(page).startswith("Waiting for a human")

    page = follow(web, web.post(f"{base}/hand-back"))
    assert owner_line(page).startswith("Fin is handling")
    assert stored(server, cid)["assignee_id"] == server.fin_agent_id

    # Resolving moves on to the next conversation of the queue the agent came from, and says so.
    moved_on = web.post(f"{base}/status{came_from}", {"status": "resolved"})
    location = urlsplit(moved_on.headers["location"])
    assert location.path.startswith("/inbox") and location.path != base
    assert parse_qs(location.query) == {"queue": ["waiting"], "status": ["any"]}
    told = [n.text for n in follow(web, moved_on).find_all(role="status")]
    assert any(text.startswith("Resolved.") for text in told), told
    page = web.page(base)
    assert page.find("p", "owner-line").find("span", "status").text == "resolved"
    assert page.find("button", value="open").text == "Reopen"
    assert cid not in queue(web, queue="all")  # resolved: out of the open queue
    page = follow(web, web.post(f"{base}/status", {"status": "open"}))
    assert page.find("p", "owner-line").find("span", "status").text == "open"

    page = follow(web, web.post(f"{base}/tags", {"tags": " billing, vip ,billing,, "}))
    assert page.find("input", id="tags-input").attrs["value"] == "billing, vip"
    assert stored(server, cid)["tags"] == ["billing", "vip"]
    assert cid in queue(web, queue="all", tag="vip")
    page = follow(web, web.post(f"{base}/tags", {"tags": ""}))
    assert stored(server, cid)["tags"] == []

    # A refused change says why, on the page, and changes nothing.
    before = stored(server, cid)
    refused = web.post(f"{base}/status", {"status": "exploded"})
    page = follow(web, refused)
    assert "Status must be one of" in page.find("p", "error").text
    assert stored(server, cid) == before

    gone = web.post("/inbox/conversations/conv_doesnotexist/take-over")
    assert gone.status_code == 404


def test_the_side_panel_reads_as_a_profile_and_sets_attributes(
    server: LiveServer, world: World, web: Web
) -> None:
    user = world.user(name="Rosa Diaz", attributes={"plan": "pro", "signed_up_at": 1700000000})
    earlier = unique("Earlier")
    older, _ = world.conversation(user, title=earlier)
    world.update(older["id"], status="resolved")
    now, _ = world.conversation(user, title=unique("Now"))
    cid = str(now["id"])
    world.update(cid, attributes={"fin_handover_reason": "human_requested"})
    world.hand_over(cid)

    panel = web.page(f"/inbox/conversations/{cid}").find("aside", "details")
    shown = {
        dt.text: dd.text for dt, dd in zip(panel.find_all("dt"), panel.find_all("dd"), strict=True)
    }
    assert shown["Why Fin handed over"] == "The customer asked for a person"
    assert shown["Signed up at"] == "14 Nov 2023, 22:13 UTC"
    assert shown["Plan"] == "pro"
    others = panel.find("ul", "other-conversations").find_all("li")
    assert [(earlier in o.text, o.find("span", "status").text) for o in others] == [
        (True, "resolved")
    ]

    # An agent sets an attribute (typed as it looks) and removes it; Fin reads the same.
    page = follow(
        web, web.post(f"/inbox/conversations/{cid}/attributes", {"key": "orders", "value": "3"})
    )
    assert "Orders saved." in page.find(role="status", cls="notice").text
    assert world.api.get_conversation(cid).data["attributes"]["orders"] == 3
    follow(
        web, web.post(f"/inbox/conversations/{cid}/attributes", {"key": "orders", "remove": "1"})
    )
    assert "orders" not in world.api.get_conversation(cid).data["attributes"]
    refused = follow(web, web.post(f"/inbox/conversations/{cid}/attributes", {"key": " "}))
    assert refused.find("p", "error").text == "Name the attribute."


def test_bulk_actions_change_every_ticked_conversation_or_none(
    server: LiveServer, world: World, me: Person, colleague: Person, web: Web
) -> None:
    first, second = conversation(world), conversation(world)
    world.hand_over(first)
    world.hand_over(second)
    came_from = "?from=queue%3Dall"

    assigned = web.post(
        f"/inbox/bulk{came_from}",
        {"ids": [first, second], "action": "assign", "agent_id": colleague.id},
    )
    assert urlsplit(assigned.headers["location"]).query == "queue=all"
    told = [n.text for n in follow(web, assigned).find_all(role="status")]
    assert f"2 conversations assigned to {colleague.name}." in told
    assert {stored(server, c)["assignee_id"] for c in (first, second)} == {colleague.id}

    follow(web, web.post("/inbox/bulk", {"ids": [first, second], "action": "tag", "tag": "vip"}))
    follow(web, web.post("/inbox/bulk", {"ids": [first], "action": "tag", "tag": "late"}))
    assert stored(server, first)["tags"] == ["vip", "late"]
    assert stored(server, second)["tags"] == ["vip"]

    # Refused: nothing ticked, no tag, an unknown action, or one conversation that is not
    # there (the others are left as they were: all or nothing).
    before = {c: stored(server, c) for c in (first, second)}
    for form, error in (
        ({"action": "resolved"}, "Tick the conversations to change first."),
        ({"ids": [first], "action": "tag", "tag": " "}, "Name the tag to add."),
        ({"ids": [first], "action": "explode"}, "Pick what to do"),
        ({"ids": [first, second, "conv_gone"], "action": "resolved"}, "conv_gone"),
    ):
        page = follow(web, web.post("/inbox/bulk", form))
        assert error in page.find("p", "error").text, form
    assert {c: stored(server, c) for c in (first, second)} == before


def test_snooze_sets_a_conversation_aside_until_it_is_woken(
    server: LiveServer, world: World, web: Web
) -> None:
    first, second = conversation(world, title=unique("Snooze me")), conversation(world)
    world.hand_over(first)
    world.hand_over(second)
    came_from = "?from=queue%3Dwaiting"
    before = counts(web.page("/inbox", queue="waiting"))
    told_fin = outbox_events(server, first)

    # Snoozed for 4 hours: on to the next waiting conversation, with the time it comes back.
    snoozed = web.post(f"/inbox/conversations/{first}/snooze{came_from}", {"for": "240"})
    page = follow(web, snoozed)
    assert urlsplit(snoozed.headers["location"]).path != f"/inbox/conversations/{first}"
    told = [n.text for n in page.find_all(role="status")]
    assert "Snoozed: it comes back in 4h. Here is the next one." in told
    assert first not in queue(web, queue="waiting")
    assert queue(web, queue="snoozed")[0] == first
    assert first in queue(web, queue="all")
    after = counts(web.page("/inbox", queue="waiting"))
    assert (after["waiting"], after["snoozed"]) == (before["waiting"] - 1, before["snoozed"] + 1)
    row = web.page("/inbox", queue="snoozed").find("li", "conversation-item")
    assert "snoozed · back in 4h" in row.text
    # Fin is not told of a snooze: nothing it reads has changed.
    assert outbox_events(server, first) == told_fin

    # The conversation says so, with the way back; the timeline tells who snoozed it.
    opened = web.page(f"/inbox/conversations/{first}")
    assert "Snoozed · back in 4h" in opened.find("span", "snoozed").text
    assert "snoozed it for 4 h" in opened.find("ol", "thread").text
    woken = follow(web, web.post(f"/inbox/conversations/{first}/snooze", {"wake": "1"}))
    assert "Woken: back in its queue." in [n.text for n in woken.find_all(role="status")]
    assert first in queue(web, queue="waiting")
    assert counts(web.page("/inbox", queue="waiting")) == before
    assert outbox_events(server, first) == told_fin

    # Refused with the reason, changing nothing.
    for form, error in (
        ({"until": "2099-01-31T10:30"}, "a year at most"),
        ({"until": "yesterday"}, "as a date and a time"),
        ({"until": "2020-01-31T10:30"}, "must end in the future"),
        ({"for": "7"}, "Choose how long"),
        ({"for": "until", "until": ""}, "Pick the date and time"),
    ):
        page = follow(web, web.post(f"/inbox/conversations/{first}/snooze", form))
        assert error in page.find("p", "error").text, form
    # Until a time, in the agent's own time zone (inbox.js sends its offset): UTC+5:30 here.
    soon = (utcnow() + timedelta(days=2)).replace(second=0, microsecond=0)
    local = (soon + timedelta(hours=5, minutes=30)).strftime("%Y-%m-%dT%H:%M")
    follow(
        web,
        web.post(f"/inbox/conversations/{first}/snooze", {"until": local, "utc_offset": "330"}),
    )
    with server.db.read_session() as session:
        row_at = session.get(Conversation, first)
        assert row_at is not None and row_at.snoozed_until == soon

    # A conversation Fin is handling is not snoozed: the form is not offered, and a post is
    # refused with the reason.
    fins = conversation(world)
    assert not web.page(f"/inbox/conversations/{fins}").find_all("form", "snooze-form")
    page = follow(web, web.post(f"/inbox/conversations/{fins}/snooze", {"for": "60"}))
    assert "Fin is handling this conversation" in page.find("p", "error").text


# --- replies and attachments -----------------------------------------------------------------

PDF = b"%PDF-1.4\n% a tiny test document\n"
PIXEL = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
    b"\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)


def test_a_reply_with_attachments_reaches_the_thread_and_fin(
    server: LiveServer, world: World, me: Person, web: Web
) -> None:
    cid = conversation(world)
    base = f"/inbox/conversations/{cid}"
    response = web.post(
        f"{base}/reply",
        {"body": "<p>See the <b>invoice</b> attached</p>", "visibility": "public"},
        files=[
            ("files", ("invoice.pdf", PDF, "application/pdf")),
            ("files", ("screen shot.png", PIXEL, "image/png")),
            ("files", ("résumé.txt", "Curriculum vitæ".encode(), "text/plain")),
        ],
    )
    page = follow(web, response)
    assert owner_line(page).startswith("You own this conversation.")  # a public reply takes over
    reply = messages(page)[-1]
    assert "from-agent" in reply.classes
    assert reply.find("b").text == "invoice"
    links = attachment_links(page)
    names = {unquote(FILE_URL.search(link)["name"]): link for link in links}  # type: ignore[index]
    assert set(names) == {"invoice.pdf", "screen shot.png", "résumé.txt"}
    assert reply.find("img").attrs["src"] == names["screen shot.png"]  # images show inline
    assert "résumé.txt" in reply.find("ul", "attachments").text
    with client(server) as anyone:  # the links work for anyone who has them, Fin included
        assert anyone.get(names["invoice.pdf"]).content == PDF
        assert anyone.get(names["screen shot.png"]).content == PIXEL
        assert anyone.get(names["résumé.txt"]).text == "Curriculum vitæ"

    # Fin reads the same message, with links it can fetch.
    fin_view = world.api.get_messages(cid)
    assert fin_view.status == 200
    attachments = fin_view.data[-1]["attachments"]
    assert [(a["filename"], a["filetype"]) for a in attachments] == [
        ("invoice.pdf", "pdf"),
        ("screen shot.png", "png"),
        ("résumé.txt", "txt"),
    ]
    assert {a["url"] for a in attachments} == set(links)

    # A file alone is a message too; nothing at all is not.
    page = follow(
        web,
        web.post(f"{base}/reply", {"body": ""}, files=[("files", ("a.txt", b"x", "text/plain"))]),
    )
    assert messages(page)[-1].first("div", "body") is None
    assert len(attachment_links(page)) == 4
    before = snapshot(server)
    page = follow(web, web.post(f"{base}/reply", {"body": "<p> </p>"}))
    assert "needs a body or at least one attachment" in page.find("p", "error").text
    assert snapshot(server) == before


def test_an_oversized_attachment_is_refused_and_nothing_is_kept(
    server: LiveServer, world: World, web: Web
) -> None:
    cid = conversation(world)
    base = f"/inbox/conversations/{cid}"
    before, disk_before = snapshot(server), files_on_disk(server)
    response = web.post(
        f"{base}/reply",
        {"body": "<p>Here is the video</p>"},
        files=[
            ("files", ("notes.txt", b"small and fine", "text/plain")),
            ("files", ("video.mp4", b"\0" * (MAX_ATTACHMENT + 1), "video/mp4")),
        ],
    )
    page = follow(web, response)
    error = page.find("p", "error").text
    assert "video.mp4" in error and "larger than" in error
    assert "Here is the video" not in page.find("ol", "thread").text
    assert owner_line(page).startswith("Fin is handling")  # the refused reply took nothing over
    assert snapshot(server) == before
    with server.db.read_session() as session:
        kept = session.scalars(select(StoredFile).where(StoredFile.conversation_id == cid)).all()
    assert kept == []
    assert files_on_disk(server) == disk_before  # not even the file that fitted

    exactly = web.post(
        f"{base}/reply",
        {"body": "<p>Just fits</p>"},
        files=[("files", ("fits.bin", b"\1" * MAX_ATTACHMENT, "application/octet-stream"))],
    )
    assert len(attachment_links(follow(web, exactly))) == 1


# --- administration --------------------------------------------------------------------------


def test_the_admin_adds_an_agent_who_can_then_sign_in(server: LiveServer, admin_web: Web) -> None:
    email = f"{unique('cleo')}@example.com"
    response = admin_web.post(
        "/inbox/admin/agents",
        {
            "email": email,
            "name": "Cleo New",
            "alias": "Cleo",
            "password": PASSWORD,
            "role": "agent",
        },
    )
    page = follow(admin_web, response)
    assert email in page.find("p", "notice").text
    row = next(tr for tr in page.find_all("tr") if email in tr.text)
    assert [td.text for td in row.find_all("td")] == ["Cleo New", email, "agent", "yes"]

    with client(server) as browser:
        signed_in = submit_login(browser, email.upper(), PASSWORD)  # as typed, caps lock on
        assert signed_in.status_code == 303
        inbox = parse_html(browser.get("/inbox").text)
        assert "Cleo New" in inbox.find("div", "me").text
        assert inbox.first("a", href="/inbox/admin") is None  # an agent, not an admin

    # Refusals are shown and create nobody.
    before = snapshot(server)
    for form, why in [
        ({"email": email, "name": "Again", "password": PASSWORD}, "exists already"),
        ({"email": f"{unique('d')}@example.com", "name": "Dee", "password": "short"}, "10"),
        ({"email": "not-an-email", "name": "Eve", "password": PASSWORD}, "Invalid agent"),
    ]:
        page = follow(admin_web, admin_web.post("/inbox/admin/agents", form))
        assert why in page.find("p", "error").text, form
    assert snapshot(server) == before


def test_the_admin_creates_a_client_for_fin_sees_the_secret_once_and_revokes_it(
    server: LiveServer, admin_web: Web
) -> None:
    name = unique("Fin production")
    response = admin_web.post("/inbox/admin/clients", {"name": name})
    assert response.status_code == 200
    assert "no-store" in response.headers["cache-control"]
    page = parse_html(response.text)
    client_id, secret = (code.text for code in page.find("div", "secret").find_all("code"))

    token = httpx.post(
        f"{server.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
    )
    assert token.status_code == 200, token.text
    access = token.json()["access_token"]
    fin_api = f"{server.base_url}/api/fin/agents"
    assert httpx.get(fin_api, headers={"Authorization": f"Bearer {access}"}).status_code == 200

    # Shown once: the admin page lists the client, never its secret again.
    again = admin_web.get("/inbox/admin")
    assert secret not in again.text
    listed = parse_html(again.text)
    row = next(tr for tr in listed.find_all("tr") if client_id in tr.text)
    assert name in row.text and "active" in row.text

    revoke = row.find("form").attrs["action"]
    page = follow(admin_web, admin_web.post(revoke))
    assert client_id in page.find("p", "notice").text
    row = next(tr for tr in page.find_all("tr") if client_id in tr.text)
    assert "revoked" in row.text
    assert row.first("form") is None

    refused = httpx.post(
        f"{server.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
    )
    assert refused.status_code == 401
    assert httpx.get(fin_api, headers={"Authorization": f"Bearer {access}"}).status_code == 401
