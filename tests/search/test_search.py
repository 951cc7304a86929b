"""Full-text search through the service, on a real SQLite file and a real PostgreSQL server, by
both plans (few matches: read every match; many: walk the conversations newest first): what
it finds (message text, titles, names, emails, prefixes) and what it must not (markup); the
index current in the transaction of every change; hostile queries; escaped snippets."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, text
from support.server import database_url

from findesk.agents import service as agents
from findesk.conversations import service as conversations
from findesk.conversations.models import Message
from findesk.conversations.repository import ConversationFilter
from findesk.conversations.service import Author, NewMessage
from findesk.kit.actor import FIN
from findesk.kit.db import Database
from findesk.migrations import upgrade
from findesk.search import repository, service
from findesk.search.query import parse
from findesk.users import service as users

EVERYWHERE = ConversationFilter()


@dataclass
class World:
    db: Database
    fin_id: str

    def user(self, name: str | None = None, email: str | None = None) -> str:
        with self.db.transaction() as session:
            return users.create_user(session, object_id=None, name=name, email=email)[0].id

    def conversation(
        self, body: str = "<p>Hello</p>", *, title: str | None = None, user_id: str | None = None
    ) -> str:
        user_id = user_id or self.user()
        with self.db.transaction() as session:
            conversation, _, _ = conversations.open_conversation(
                session,
                user_id=user_id,
                first=NewMessage(Author("end_user", user_id), body),
                actor=FIN,
                title=title,
                assignee_id=self.fin_id,
            )
            return conversation.id

    def says(self, conversation_id: str, body: str) -> str:
        with self.db.transaction() as session:
            message, _ = conversations.add_message(
                session, conversation_id, NewMessage(Author("agent", self.fin_id), body), FIN
            )
            return message.id

    def find(self, q: str, f: ConversationFilter = EVERYWHERE, limit: int = 50) -> list[str]:
        with self.db.read_session() as session:
            page = service.search(session, q, f, limit=limit)
            return [hit.conversation.id for hit in page.hits]

    def snippets(self, q: str) -> dict[str, str]:
        with self.db.read_session() as session:
            page = service.search(session, q, EVERYWHERE, limit=50)
            return {hit.conversation.id: str(hit.snippet) for hit in page.hits}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    url = database_url(request.param, request, tmp_path_factory.mktemp("db"))
    upgrade(url)
    db = Database(url)
    with db.transaction() as session:
        fin_id = agents.ensure_fin_agent(session, "fin@findesk.invalid").id
    yield World(db, fin_id)
    db.dispose()


@pytest.fixture(params=["few", "many"])
def plan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test by both plans: "many" makes every word count as common."""
    if request.param == "many":
        monkeypatch.setattr(repository, "DENSE_AT", 1)
    return str(request.param)


def word(prefix: str = "w") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def test_finds_a_word_of_a_message_by_word_and_by_prefix(world: World, plan: str) -> None:
    w = word("quokka")
    cid = world.conversation(f"<p>My <b>parcel</b> {w} never came</p>")
    other = world.conversation("<p>Nothing here</p>")
    assert world.find(w) == [cid]
    assert world.find(w.upper()) == [cid]
    assert world.find(w[:9]) == [cid]  # the last word as a prefix, as the agent types
    assert world.find(f"parcel {w[:9]}") == [cid]  # every word, in the one message
    assert world.find(f"{w} parcel") == [cid]
    assert world.find(f"{w[:9]} parcel") == []  # only the last word is a prefix
    assert world.find(f"{w[:9]} nothing") == []  # not in one message
    assert other not in world.find(f"{w} here")
    assert world.find(f"{w[:9]} ") == []  # a space after it: the word is whole


def test_finds_by_title_name_and_email(world: World, plan: str) -> None:
    w = word("title")
    by_title = world.conversation(title=f"Refund for {w}")
    name = word("Name")
    user = world.user(name=f"Zoë {name}", email=f"{name.lower()}@shop-{w}.example")
    by_user = world.conversation(user_id=user)
    assert world.find(w) == [by_user, by_title]  # newest activity first
    assert world.find(name) == [by_user]
    assert world.find(f"zoë {name}") == [by_user]
    assert world.find(f"{name}@shop-{w}.example") == [by_user]  # an email, whole
    assert world.find(f"{name}@shop-{w[:6]}") == [by_user]  # or as typed
    assert world.find(f"refund {w}") == [by_title]
    snippet = world.snippets(name)[by_user]
    assert f"<mark>{name.lower()}</mark>@shop" in snippet


def test_does_not_find_markup(world: World, plan: str) -> None:
    w = word("href")
    cid = world.conversation(
        f'<p>See <a href="https://{w}.example/x?{w}=1" title="{w}">the page</a>'
        f'<img src="https://img.example/{w}.png" alt="{w}-alt"></p>'
    )
    assert world.find(w) == []
    assert world.find("blockquote") == []  # a tag name
    assert cid in world.find("the page")


def test_snippet_is_escaped_and_marks_only_matches(world: World, plan: str) -> None:
    w = word("xss")
    cid = world.conversation(
        f"<p>Before &lt;script&gt;alert(1)&lt;/script&gt; {w} and &lt;mark&gt;fake&lt;/mark&gt;</p>"
    )
    snippet = world.snippets(w)[cid]
    assert "<script>" not in snippet and "&lt;script&gt;alert(1)&lt;/script&gt;" in snippet
    assert f"<mark>{w}</mark>" in snippet
    assert snippet.count("<mark>") == 1  # the text's own "<mark>" stays text
    assert "&lt;mark&gt;fake&lt;/mark&gt;" in snippet
    with world.db.read_session() as session:
        message = session.query(Message).filter(Message.conversation_id == cid).one()
        assert message.plain_text is not None and "<script>" in message.plain_text


@pytest.mark.parametrize(
    "q",
    [
        '"',
        '"unclosed',
        "a OR b",
        "(",
        ")",
        "NEAR(a b)",
        "AND",
        "-",
        "*",
        "a*",
        "^a",
        "col:umn",
        "'; DROP TABLE messages; --",
        "a & b | !c <-> d:*",
        "\\",
        "\x00",
        "日本語 テスト",
        "🙂",
        "x" * 500,
        " ".join(["w"] * 100),
    ],
)
def test_hostile_queries_do_not_break(world: World, plan: str, q: str) -> None:
    world.find(q)  # no error


def test_hostile_query_words_are_still_words(world: World, plan: str) -> None:
    w = word("and")
    cid = world.conversation(f"<p>Terms AND conditions: {w} (NEAR) - * not</p>")
    assert world.find(f'"{w}" AND (near) -not*') == [cid]
    assert world.find(f"{w} OR missingword") == []


def test_index_is_current_in_the_writing_transaction(world: World, plan: str) -> None:
    w1, w2, w3 = word("first"), word("second"), word("third")
    user = world.user(name="Old Name", email="old@example.com")
    cid = world.conversation(f"<p>{w1}</p>", user_id=user)
    with world.db.transaction() as session:
        message, _ = conversations.add_message(
            session, cid, NewMessage(Author("agent", world.fin_id), f"<p>{w2}</p>"), FIN
        )
        # In the same transaction, before it commits.
        assert [h.conversation.id for h in service.search(session, w2, EVERYWHERE, limit=5).hits]
        edited = session.get(Message, message.seq)
        assert edited is not None
        edited.body = f"<p>{w3}</p>"
        session.flush()
        assert service.search(session, w2, EVERYWHERE, limit=5).hits == []
        assert len(service.search(session, w3, EVERYWHERE, limit=5).hits) == 1
        renamed = word("Renamed")
        users.update_user(session, user, {"name": renamed, "email": f"{renamed}@x.example"}, FIN)
        session.flush()
        assert len(service.search(session, renamed, EVERYWHERE, limit=5).hits) == 1
        assert service.search(session, "old@example.com", EVERYWHERE, limit=5).hits == [] or all(
            h.conversation.id != cid
            for h in service.search(session, "old@example.com", EVERYWHERE, limit=50).hits
        )
        conversations.update_conversation(session, cid, {"title": f"Now {w1}x"}, FIN)
        session.flush()
        assert len(service.search(session, f"{w1}x", EVERYWHERE, limit=5).hits) == 1
    assert world.find(w3) == [cid]
    assert world.find(renamed) == [cid]
    assert world.find(w2) == []
    with world.db.transaction() as session:  # a deleted message leaves the index
        gone = session.get(Message, message.seq)
        session.delete(gone)
    assert world.find(w3) == []
    assert world.find(w1) == [cid]


def test_one_row_a_conversation_newest_first_and_pages(world: World, plan: str) -> None:
    w = word("page")
    made = []
    for i in range(7):
        cid = world.conversation(f"<p>{w} one</p>", title=f"{w} title {i}")
        world.says(cid, f"<p>{w} two</p>")
        made.append(cid)
    newest_first = list(reversed(made))
    assert world.find(w) == newest_first
    world.says(made[0], "<p>a later message, without the word</p>")  # activity counts
    expected = [made[0], *newest_first[:-1]]
    assert world.find(w) == expected
    seen: list[str] = []
    before = None
    with world.db.read_session() as session:
        while True:
            page = service.search(session, w, EVERYWHERE, limit=3, before=before)
            seen += [hit.conversation.id for hit in page.hits]
            if not page.has_more:
                break
            last = page.hits[-1].conversation
            before = (last.last_activity_at, last.id)
    assert seen == expected


def test_the_queue_filters(world: World, plan: str) -> None:
    w = word("queue")
    fins = world.conversation(f"<p>{w}</p>")
    waiting = world.conversation(f"<p>{w}</p>")
    with world.db.transaction() as session:
        conversations.hand_over(session, waiting, FIN)
    assert world.find(w) == [waiting, fins]
    assert world.find(w, ConversationFilter(owner="waiting")) == [waiting]
    assert world.find(w, ConversationFilter(owner="fin")) == [fins]


def test_an_existing_database_is_indexed_by_the_migration(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, world: World
) -> None:
    from alembic import command

    from findesk.migrations import alembic_config

    backend = "postgres" if world.db.engine.dialect.name == "postgresql" else "sqlite"
    url = database_url(backend, request, tmp_path_factory.mktemp("old"))
    command.upgrade(alembic_config(url), "0013")
    engine = create_engine(url)
    with engine.begin() as db:
        db.execute(
            text(
                "INSERT INTO end_users (id, name, email, attributes, created_at, updated_at)"
                " VALUES ('usr_1', 'Ada Old', 'ada@old.example', '{}', :t, :t)"
            ),
            {"t": "2026-01-01 00:00:00"},
        )
        db.execute(
            text(
                "INSERT INTO conversations (id, user_id, status, title, attributes,"
                " last_activity_at, created_at, updated_at)"
                " VALUES ('conv_1', 'usr_1', 'open', 'Billing woe', '{}', :t, :t, :t)"
            ),
            {"t": "2026-01-01 00:00:00"},
        )
        db.execute(
            text(
                "INSERT INTO messages (id, conversation_id, message_type, body, author_type,"
                " author_user_id, visibility, attachments, created_at, after_take_over)"
                " VALUES ('msg_1', 'conv_1', 'comment', :b, 'end_user', 'usr_1', 'public', '[]',"
                " :t, false)"
            ),
            {
                "t": "2026-01-01 00:00:00",
                "b": '<p>my <a href="https://hidden.example">wombat</a></p>',
            },
        )
    engine.dispose()
    upgrade(url)
    db = Database(url)
    try:
        with db.read_session() as session:
            for q in ("wombat", "billing", "ada", "ada@old.example"):
                hits = service.search(session, q, EVERYWHERE, limit=5).hits
                assert [h.conversation.id for h in hits] == ["conv_1"], q
            assert service.search(session, "hidden", EVERYWHERE, limit=5).hits == []
    finally:
        db.dispose()


def test_query_parsing() -> None:
    assert parse('"Bob" (AND) bob').words == ("bob", "and")
    assert parse("bob@example.com").fts5() == '"bob" "example" "com"*'
    assert parse("bob@example.com").tsquery() == "'bob' & 'example' & 'com':*"
    assert not parse("-*()\"'")
    assert not parse("a").prefix  # one letter: matched whole
