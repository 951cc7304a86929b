"""Search: the conversations that hold every word, newest activity first, each with a snippet
of the text that matched, highlighted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from findesk.conversations.models import Conversation, Message
from findesk.conversations.repository import ConversationFilter
from findesk.search import repository
from findesk.search.query import WORD, Query, fold, parse

# Words of context shown before the first match, and in all.
_BEFORE = 6
_WORDS = 24
MAX_QUERY = 200


@dataclass(frozen=True)
class Hit:
    conversation: Conversation
    # Escaped HTML: the matching text around its first match, each matching word in <mark>.
    snippet: Markup
    message: Message | None  # the newest message that matched; None: the title or the person


@dataclass(frozen=True)
class Page:
    hits: list[Hit]
    has_more: bool


def search(
    session: Session,
    text: str,
    f: ConversationFilter,
    *,
    limit: int,
    before: tuple[datetime, str] | None = None,
) -> Page:
    """One page of the conversations within ``f`` that match ``text`` (see ``query``): in one
    message all its words, or in the title, the end user's name and email together."""
    query = parse(text[:MAX_QUERY])
    if not query:
        return Page([], False)
    found = repository.find(session, f, query, limit=limit + 1, before=before)
    ids = found.conversation_ids[:limit]
    rows = repository.conversations(session, ids)
    messages = repository.messages(session, [found.newest[i] for i in ids if i in found.newest])
    heads = repository.heads(session, [i for i in ids if i not in messages])
    hits = []
    for conversation in rows:
        message = messages.get(conversation.id)
        matched = message.plain_text if message is not None else heads.get(conversation.id)
        hits.append(Hit(conversation, snippet(matched or "", query), message))
    return Page(hits, len(found.conversation_ids) > limit)


def snippet(text: str, query: Query) -> Markup:
    """``text`` around its first matching word, escaped, each matching word in ``<mark>``.

    Built here rather than by FTS5's ``snippet()`` or ``ts_headline``: the same on both
    backends, words cut as the indexes cut them (PostgreSQL's headline would not mark ``bob``
    in ``bob@example.com``), and no marker the text itself could hold.
    """
    words = [fold(word) for word in query.words]
    last = words[-1] if query.prefix else None

    def matches(word: str) -> bool:
        folded = fold(word)
        return folded in words or (last is not None and folded.startswith(last))

    text = " ".join(text.split())  # line breaks and runs of space: one space
    spans = [(m.start(), m.end(), matches(m.group())) for m in WORD.finditer(text)]
    first = next((i for i, span in enumerate(spans) if span[2]), 0)
    start_at = max(0, first - _BEFORE)
    shown = spans[start_at : start_at + _WORDS]
    if not shown:
        return escape(text)
    # Cut at spaces, not inside "<b>" or an email.
    start = text.rfind(" ", 0, shown[0][0]) + 1
    end = text.find(" ", shown[-1][1])
    end = len(text) if end < 0 else end
    parts: list[Markup | str] = ["…" if start > 0 else ""]
    position = start
    for word_start, word_end, marked in shown:
        parts.append(text[position:word_start])
        word = text[word_start:word_end]
        parts.append(_MARK.format(word) if marked else word)
        position = word_end
    parts.append(text[position:end])
    parts.append("…" if end < len(text) else "")
    return Markup("").join(parts)  # escapes each str part


_MARK = Markup("<mark>{}</mark>")
