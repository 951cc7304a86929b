"""Search at size: full-text search over 1,000,000 messages, on SQLite and on PostgreSQL.

Run: ``.venv/bin/python bench/search.py [--backend sqlite|postgres] [--messages N]
[--conversations N] [--samples N] [--json]``

1. Migrates a fresh database (a SQLite file, or a throwaway PostgreSQL cluster as the tests
   start theirs) and seeds it in batched inserts: the Fin bot, one end user for every five
   conversations (a name and an email), the conversations (``--messages`` / 10 by default, a
   title on half of them, spread over a year; of them 20% wait for a human) and their
   messages in the order they arrive. Each message is one of a support chat's usual sentences
   plus two words drawn from a 50,000-word vocabulary with Zipf's law (a few words are
   everywhere, most are rare), as HTML. The search index is kept by the migration's triggers
   as rows arrive (SQLite's FTS5); on PostgreSQL the GIN index is dropped during the seed and
   built again after, as a restore would, then ``ANALYZE``.
2. Times ``findesk.search.service.search`` (a first page of 25, with snippets), ``--samples``
   times for each query of a realistic set: a common word, two common words, a rare word,
   a prefix as typed, an email, a name, a common word within the waiting queue, a word that
   is nowhere. Prints each query's matches, median and p99, and over all of them.

Target: median under 100 ms over all queries. Exit status: 0 when met, 1 when not, 2 when the
set-up failed, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from findesk.agents.service import ensure_fin_agent
from findesk.conversations.models import Conversation, Message
from findesk.conversations.repository import ConversationFilter
from findesk.kit.db import Database
from findesk.kit.html import to_text
from findesk.migrations import upgrade
from findesk.search import service as search
from findesk.users.models import EndUser

from benchkit import (
    SetupError,
    bench_folder,
    finish,
    log,
    percentile,
    rounded,
    run_main,
    throwaway_postgres,
)

TARGET_MS = 100.0
PAGE = 25
BATCH = 10_000
VOCABULARY = 50_000
SPAN = timedelta(days=365)
SEED = 20261204
SENTENCES = (
    "Hello, I need help with my order {n}.",
    "Thanks for reaching out! Could you tell me the order number?",
    "It is {n}. The parcel never arrived and tracking has not moved for a week.",
    "I am sorry about that. Let me check with the carrier for you.",
    "Any news? I also got charged twice on my card ending {n}.",
    "I have refunded the second charge; it shows within 3 to 5 working days.",
    "Can I change the delivery address to my office instead?",
    "Done: the new address is on the order, and a new parcel leaves today.",
    "My password reset email never comes, can you <b>help</b>?",
    'See <a href="https://help.example/articles/{n}">this article</a> about invoices.',
)
FIRST_NAMES = ("Ada", "Grace", "Alan", "Linus", "Zoë", "José", "Mei", "Olu", "Priya", "Sven")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Torvalds", "Müller", "García", "Chen", "Okafor")


def vocabulary(rng: random.Random) -> list[str]:
    """Made-up words (none is English, so none is in the sentences): the rarest last."""
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "te", "vo", "zi", "pa", "do", "fe", "gu"]
    words: set[str] = set()
    while len(words) < VOCABULARY:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(3, 5))))
    return sorted(sorted(words), key=lambda w: rng.random())  # not in a set's order: it varies


@dataclass
class Seeded:
    db: Database
    waiting: int = 0
    emails: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    common_word: str = ""
    rare_word: str = ""
    seconds: float = 0.0


def seed(db: Database, conversations: int, messages: int, rng: random.Random) -> Seeded:
    started = time.perf_counter()
    postgres = db.engine.dialect.name == "postgresql"
    with db.transaction() as session:
        fin_id = ensure_fin_agent(session, "fin@bench.example").id
    words = vocabulary(rng)
    # Zipf's law: the word of rank r is drawn with weight 1/r.
    weights = [1 / (rank + 1) for rank in range(len(words))]
    cumulative = list(_accumulate(weights))
    drawn = rng.choices(words, cum_weights=cumulative, k=2 * messages)
    counts: dict[str, int] = {}
    for word in drawn:
        counts[word] = counts.get(word, 0) + 1
    found = Seeded(db)
    found.common_word = words[0]
    found.rare_word = next(w for w in reversed(words) if counts.get(w, 0) >= 3)

    users = max(1, conversations // 5)
    user_ids = [f"usr_bench{i:012d}" for i in range(users)]
    now = datetime.now(UTC)
    start = now - SPAN
    step = SPAN / messages
    # Which conversation each message belongs to: in time order, neighbours interleaving as
    # chats arrive.
    of_message = [
        min(conversations - 1, p * conversations // messages + rng.randrange(3))
        for p in range(messages)
    ]
    first_at: dict[int, datetime] = {}
    last_at: dict[int, datetime] = {}
    for position, c in enumerate(of_message):
        at = start + step * position
        first_at.setdefault(c, at)
        last_at[c] = at

    with db.engine.begin() as connection:
        if postgres:  # rebuilt after the seed, as a restore would
            index = connection.scalar(
                text("SELECT pg_get_indexdef('ix_messages_search'::regclass)")
            )
            connection.execute(text("DROP INDEX ix_messages_search"))
        for chunk in _chunks(range(users)):
            rows = []
            for i in chunk:
                name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
                email = f"user{i}@{rng.choice(('example.com', 'shop.example', 'mail.test'))}"
                rows.append(
                    {
                        "id": user_ids[i],
                        "name": name,
                        "email": email,
                        "attributes": {},
                        "created_at": start,
                        "updated_at": start,
                    }
                )
                if i % 997 == 0:
                    found.emails.append(email)
                    found.names.append(name)
            connection.execute(insert(EndUser), rows)
        for chunk in _chunks(range(conversations)):
            rows = []
            for c in chunk:
                waiting = rng.random() < 0.2
                found.waiting += waiting
                rows.append(
                    {
                        "id": f"conv_bench{c:012d}",
                        "user_id": user_ids[c % users],
                        "status": "open",
                        "title": f"Order {c} {rng.choice(words[:200])}" if c % 2 else None,
                        "attributes": {},
                        "assignee_id": None if waiting else fin_id,
                        "last_activity_at": last_at.get(c, start),
                        "created_at": first_at.get(c, start),
                        "updated_at": last_at.get(c, start),
                    }
                )
            connection.execute(insert(Conversation), rows)
        for chunk in _chunks(range(messages)):
            rows = []
            for position in chunk:
                c = of_message[position]
                sentence = rng.choice(SENTENCES).format(n=rng.randrange(100_000))
                body = f"<p>{sentence} {drawn[2 * position]} {drawn[2 * position + 1]}</p>"
                rows.append(
                    {
                        "id": f"msg_bench{position:012d}",
                        "conversation_id": f"conv_bench{c:012d}",
                        "message_type": "comment",
                        "body": body,
                        "plain_text": to_text(body),
                        "author_type": "agent",
                        "author_agent_id": fin_id,
                        "visibility": "public",
                        "attachments": [],
                        "created_at": start + step * position,
                        "after_take_over": False,
                    }
                )
            connection.execute(insert(Message), rows)
            if chunk.start % 200_000 == 0:
                log(f"  {chunk.start:,} messages")
        if postgres:
            log("  building the GIN index")
            connection.execute(text(index))
    if postgres:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    found.seconds = time.perf_counter() - started
    return found


def _accumulate(values: Sequence[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


def _chunks(numbers: range) -> Iterator[range]:
    for start in range(numbers.start, numbers.stop, BATCH):
        yield range(start, min(start + BATCH, numbers.stop))


@dataclass
class Timing:
    name: str
    query: str
    matches: int
    ms: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.ms)

    @property
    def p99(self) -> float:
        return percentile(self.ms, 99)


def measure(seeded: Seeded, samples: int, rng: random.Random) -> list[Timing]:
    email = rng.choice(seeded.emails)
    name = rng.choice(seeded.names)
    waiting = ConversationFilter(owner="waiting")
    queries: list[tuple[str, str, ConversationFilter]] = [
        ("common word", "order", ConversationFilter()),
        ("two common words", "parcel arrived", ConversationFilter()),
        ("common made-up word", seeded.common_word, ConversationFilter()),
        ("rare word", seeded.rare_word, ConversationFilter()),
        ("prefix as typed", "refun", ConversationFilter()),
        ("rare prefix", seeded.rare_word[:-1], ConversationFilter()),
        ("email", email, ConversationFilter()),
        ("name", name, ConversationFilter()),
        ("common word, waiting queue", "parcel", waiting),
        ("nowhere", "xylophonequartz", ConversationFilter()),
    ]
    timings = []
    for label, q, f in queries:
        ms: list[float] = []
        matches = 0
        for _ in range(samples):
            with seeded.db.read_session() as session:
                started = time.perf_counter()
                page = search.search(session, q, f, limit=PAGE)
                ms.append((time.perf_counter() - started) * 1000)
                matches = len(page.hits)
        timings.append(Timing(label, q, matches, ms))
    return timings


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--conversations", type=int, default=None, help="default: messages / 10")
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    conversations = args.conversations or max(1, args.messages // 10)
    if args.messages < 1 or conversations < 1 or args.samples < 1:
        raise SetupError("--messages, --conversations and --samples must be positive")
    rng = random.Random(SEED)
    with bench_folder() as folder:
        if args.backend == "postgres":
            with throwaway_postgres() as pg:
                url = pg.create_database("findesk_search_bench")
                return _run(args, url, conversations, rng)
        return _run(args, f"sqlite:///{Path(folder) / 'search.db'}", conversations, rng)


def _run(args: argparse.Namespace, url: str, conversations: int, rng: random.Random) -> int:
    upgrade(url)
    db = Database(url)
    try:
        log(f"seeding {args.messages:,} messages, {conversations:,} conversations ({args.backend})")
        seeded = seed(db, conversations, args.messages, rng)
        log(f"seeded in {seeded.seconds:.0f} s; searching")
        timings = measure(seeded, args.samples, rng)
    finally:
        db.dispose()
    every = [ms for t in timings for ms in t.ms]
    median, p99 = statistics.median(every), percentile(every, 99)
    ok = median < TARGET_MS

    def to_json() -> dict[str, Any]:
        return {
            "backend": args.backend,
            "messages": args.messages,
            "conversations": conversations,
            "seed_seconds": rounded(seeded.seconds, 1),
            "samples": args.samples,
            "median_ms": rounded(median, 2),
            "p99_ms": rounded(p99, 2),
            "target_median_ms": TARGET_MS,
            "ok": ok,
            "queries": [
                {
                    "name": t.name,
                    "query": t.query,
                    "matches_on_first_page": t.matches,
                    "median_ms": rounded(t.median, 2),
                    "p99_ms": rounded(t.p99, 2),
                }
                for t in timings
            ],
        }

    def print_report() -> None:
        print(
            f"search: {args.backend}, {args.messages:,} messages, {conversations:,} "
            f"conversations, {args.samples} samples a query, first page of {PAGE} "
            f"({platform.python_implementation()} {platform.python_version()})"
        )
        print(f"{'query':<28} {'as typed':<24} {'found':>5} {'median':>9} {'p99':>9}")
        for t in timings:
            print(
                f"{t.name:<28} {t.query[:24]:<24} {t.matches:>5} {t.median:>7.1f}ms {t.p99:>7.1f}ms"
            )
        verdict = "ok" if ok else "MISSED"
        print(f"{'all queries':<28} {'':<24} {'':>5} {median:>7.1f}ms {p99:>7.1f}ms")
        print(f"target: median under {TARGET_MS:.0f} ms: {verdict}")

    return finish(ok, args.json, to_json, print_report)


if __name__ == "__main__":
    run_main(main)
