"""What a search box's text means: its words, all of them required, the last one also as a
prefix (as the agent types). Only letters and digits reach the database, each word quoted:
no input can change a query's syntax, on either backend."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Words as both indexes cut them: runs of letters and digits (FTS5's unicode61 tokenizer, and
# PostgreSQL's parser over text whose other characters are made spaces: migration 0013).
WORD = re.compile(r"[^\W_]+")
MAX_WORDS = 8
MAX_WORD = 64
# A last word shorter than this is matched whole: one letter would match nearly everything.
MIN_PREFIX = 2


@dataclass(frozen=True)
class Query:
    words: tuple[str, ...]
    prefix: bool  # the last word matches any word it begins

    def __bool__(self) -> bool:
        return bool(self.words)

    def fts5(self) -> str:
        """An FTS5 MATCH expression: the words as quoted strings, implicitly ANDed."""
        parts = [f'"{word}"' for word in self.words]
        if self.prefix:
            parts[-1] += "*"
        return " ".join(parts)

    def tsquery(self) -> str:
        """A ``to_tsquery`` expression: the words quoted, ANDed, the last one ``:*``."""
        parts = [f"'{word}'" for word in self.words]
        if self.prefix:
            parts[-1] += ":*"
        return " & ".join(parts)


def parse(text: str) -> Query:
    words: list[str] = []
    for match in WORD.finditer(text.lower()):
        word = match.group()[:MAX_WORD]
        if word not in words:
            words.append(word)
    words = words[:MAX_WORDS]
    ends_in_word = bool(WORD.fullmatch(text[-1:] or " "))  # a space after it: typed whole
    prefix = bool(words) and ends_in_word and len(words[-1]) >= MIN_PREFIX
    return Query(tuple(words), prefix)


def fold(word: str) -> str:
    """A word as matching compares it: lower case, accents dropped (FTS5's remove_diacritics)."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))
