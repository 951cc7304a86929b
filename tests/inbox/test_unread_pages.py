"""The queues' unread marker over plain HTTP, on SQLite and on PostgreSQL: a conversation is
unread for an agent while it has a message by someone else newer than the newest the agent was
shown; opening it (the page, or a live refresh of a page the agent looks at) reads it, for that
agent only, and writes nothing when nothing is new."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select
from support.fin import World
from support.server import LiveServer
from support.sql import statements_sent
from web_support import Node, Person, Web, new_agent, parse_html, sign_in, unique

from findesk.conversations import service as conversations
from findesk.conversations.models import ConversationRead, Message


@pytest.fixture(scope="module")
def ada(server: LiveServer) -> Person:
    return new_agent(server, "Ada Agent")


@pytest.fixture(scope="module")
def web(server: LiveServer, ada: Person) -> Iterator[Web]:
    signed_in = sign_in(server, ada)
    yield signed_in
    signed_in.close()


@pytest.fixture(scope="module")
def bea_web(server: LiveServer) -> Iterator[Web]:
    signed_in = sign_in(server, new_agent(server, "Bea Colleague"))
    yield signed_in
    signed_in.close()


def handed_over(world: World) -> tuple[str, str, str]:
    """A conversation waiting for a human, tagged uniquely: its id, end user's id and tag."""
    tag = unique("unread")
    created, _ = world.conversation(title=unique("Parcel"), body="<p>Where is my parcel?</p>")
    world.update(created["id"], tags=[tag])
    world.hand_over(created["id"])
    return str(created["id"]), str(created["user"]["id"]), tag


def row(page: Node, conversation_id: str) -> Node:
    return page.find("li", "conversation-item", data_conversation_id=conversation_id)


def is_unread(page: Node, conversation_id: str) -> bool:
    """What the row shows: the class and dot for the eye, and the words for a screen reader,
    all three or none."""
    item = row(page, conversation_id)
    marked = "unread" in item.classes
    dot = item.first("span", "unread-dot") is not None
    words = any(s.text == "Unread:" for s in item.find_all("span", "visually-hidden"))
    assert marked == dot == words, item
    return marked


def unread_in_queue(web: Web, conversation_id: str, tag: str) -> bool:
    return is_unread(web.page("/inbox", queue="all", tag=tag), conversation_id)


def read_row(server: LiveServer, agent_id: str, conversation_id: str) -> ConversationRead | None:
    with server.db.read_session() as session:
        return session.get(ConversationRead, (agent_id, conversation_id))


def newest_seq(server: LiveServer, conversation_id: str) -> int:
    with server.db.read_session() as session:
        seqs = session.scalars(
            select(Message.seq).where(Message.conversation_id == conversation_id)
        )
        return max(seqs)


@contextmanager
def writes_of_reads(server: LiveServer) -> Iterator[list[str]]:
    """The statements that write read state, sent by the server (same process) meanwhile."""
    written: list[str] = []
    with statements_sent(server.db.engine) as sent:
        yield written
    written.extend(
        s for s, _ in sent if "conversation_reads" in s and not s.lstrip().startswith("SELECT")
    )


def test_new_messages_from_others_make_it_unread_until_the_agent_opens_it(
    server: LiveServer, world: World, web: Web, bea_web: Web, ada: Person
) -> None:
    cid, user_id, tag = handed_over(world)
    # Never opened, and the end user wrote: unread, for every agent.
    assert unread_in_queue(web, cid, tag)
    assert unread_in_queue(bea_web, cid, tag)

    # Ada opens it: read for her, already in the queue of the page that opened it.
    page = web.page(f"/inbox/conversations/{cid}", queue="all", tag=tag)
    assert not is_unread(page, cid)
    assert "selected" in row(page, cid).classes
    assert not unread_in_queue(web, cid, tag)
    assert unread_in_queue(bea_web, cid, tag)  # Bea has not opened it
    stored = read_row(server, ada.id, cid)
    assert stored is not None and stored.read_seq == newest_seq(server, cid)

    # Her own reply and note never make it unread (the redirect back is not followed).
    for visibility in ("public", "private"):
        sent = web.post(
            f"/inbox/conversations/{cid}/reply",
            {"body": "<p>On its way</p>", "visibility": visibility},
        )
        assert sent.status_code == 303, sent.text
        assert not unread_in_queue(web, cid, tag)
    assert unread_in_queue(bea_web, cid, tag)  # Ada's reply is news to Bea

    # The end user answers: unread again; so is Fin's message, and a colleague's note.
    world.user_says(cid, user_id, "<p>Thanks, and the invoice?</p>")
    assert unread_in_queue(web, cid, tag)
    web.page(f"/inbox/conversations/{cid}")
    assert not unread_in_queue(web, cid, tag)
    world.fin_says(cid, "<p>Fin here.</p>")
    assert unread_in_queue(web, cid, tag)
    web.page(f"/inbox/conversations/{cid}")
    bea_web.post(
        f"/inbox/conversations/{cid}/reply", {"body": "<p>I sent it</p>", "visibility": "private"}
    )
    assert unread_in_queue(web, cid, tag)

    # Bea opens it: read for her; Ada's state is her own.
    bea_web.page(f"/inbox/conversations/{cid}")
    assert not unread_in_queue(bea_web, cid, tag)
    assert unread_in_queue(web, cid, tag)


def test_a_live_refresh_reads_it_only_when_the_agent_looks_at_it(
    server: LiveServer, world: World, web: Web
) -> None:
    cid, user_id, tag = handed_over(world)
    fragment = f"/inbox/fragments/conversation/{cid}"
    web.page(fragment, queue="all", tag=tag)  # loading older messages, or a hidden tab
    assert unread_in_queue(web, cid, tag)
    web.page(fragment, queue="all", tag=tag, read="1")  # a visible page's live refresh
    assert not unread_in_queue(web, cid, tag)
    # The fragment's links back to the queue do not carry the flag.
    links = [a.attrs.get("href", "") for a in parse_html(web.get(fragment, read="1").text).iter()]
    assert not any("read=1" in link for link in links)
    world.user_says(cid, user_id, "<p>Hello?</p>")
    assert unread_in_queue(web, cid, tag)


def test_opening_it_again_writes_nothing_and_never_goes_back(
    server: LiveServer, world: World, web: Web, ada: Person
) -> None:
    cid, user_id, tag = handed_over(world)
    first_message = newest_seq(server, cid)
    world.user_says(cid, user_id, "<p>Second</p>")
    with writes_of_reads(server) as written:
        web.page(f"/inbox/conversations/{cid}")
    assert len(written) == 1 and written[0].lstrip().startswith("INSERT"), written
    stored = read_row(server, ada.id, cid)
    assert stored is not None and stored.read_seq == newest_seq(server, cid) > first_message

    with writes_of_reads(server) as written:
        web.page(f"/inbox/conversations/{cid}")  # nothing new: no write at all
        web.page(f"/inbox/fragments/conversation/{cid}", read="1")
    assert written == []
    again = read_row(server, ada.id, cid)
    assert again is not None and again.read_at == stored.read_at

    # An older page of the thread, or a late request that showed fewer messages: no step back.
    with server.db.read_session() as session:
        newest_id = session.scalar(select(Message.id).where(Message.seq == stored.read_seq))
    web.page(f"/inbox/conversations/{cid}", before=str(newest_id))
    with server.db.transaction() as session:
        conversations.mark_read(session, ada.id, cid, first_message)
    after = read_row(server, ada.id, cid)
    assert after is not None
    assert (after.read_seq, after.read_at) == (stored.read_seq, stored.read_at)
    assert not unread_in_queue(web, cid, tag)


def test_a_conversation_only_the_agent_wrote_in_is_not_unread(
    server: LiveServer, world: World, web: Web, ada: Person
) -> None:
    """Unread needs someone else's message: one with nothing but the agent's own is read, even
    never opened."""
    cid, _user_id, tag = handed_over(world)
    with server.db.transaction() as session:
        ids = [cid]
        assert conversations.unread_among(session, ada.id, ids) == {cid}
        # As if the end user's first message were Ada's: nothing by anyone else.
        for message in session.scalars(select(Message).where(Message.conversation_id == cid)):
            message.author_type, message.author_user_id = "agent", None
            message.author_agent_id = ada.id
    assert not unread_in_queue(web, cid, tag)
    assert read_row(server, ada.id, cid) is None
