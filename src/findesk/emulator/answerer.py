"""The Fin emulator's answerer: a stand-in for Fin's AI, built on plain retrieval (stdlib only).

What it does on each run (one call of :meth:`RetrievalAnswerer.answer`):

* **The question** is the text of the end user's public messages since Fin last spoke (Fin is the
  agent whose id is ``fin_agent_id``; when that is not given, any agent counts as Fin). Private
  notes and agents' messages are never questions; HTML is reduced to text first.
* **Retrieval.** Every page of the content library is split into passages (paragraphs, whole
  lists, headings without a body under them, bare text blocks), each indexed with BM25 over
  lowercased, stop-word-filtered, lightly stemmed tokens; the page title and the nearest heading
  are indexed with the passage so "Billing" pages win billing questions. Pages are read afresh
  on every run (the library changes) and the index is rebuilt only when they did.
* **Actions first.** With ``actions`` (``actions.ConnectorActions``), a question that carries a
  value a live, Fin-usable Data Connector's inputs take ("Where is my order A-1042?") is
  answered from that connector's call (rules in :mod:`findesk.emulator.actions`); a call that
  fails falls through to the articles.
* **Is it good enough?** BM25 scores are not comparable between libraries (and IDF is nearly flat
  in a library of 3-10 pages), so the gate is *coverage*: the share of the question's IDF weight
  that the best passage contains (a question term the library never uses weighs as much as the
  rarest one). The answer is given when coverage >= ``min_coverage`` (default 0.34: natural
  questions carry filler words a help centre never uses, such as "how long" or "reach") and
  the BM25 score >= ``min_score`` (default 0, an optional absolute floor).
* **The reply** quotes the passage, HTML-escaped (page text can never become markup), and cites
  the page: ``<p>passage</p><p>Source: <a href="URL">Title</a></p>``. *Decision:* a page without
  an ``http(s)`` URL may still be quoted but is not cited, as Fin cites only what it can link to.
* **Handover** (``hand_over=True``, reply "I'll connect you with a teammate."):

  - the end user asks for a human (phrase detection, see :data:`HUMAN_REQUEST_PATTERNS`);
  - nothing in the library matches at all (coverage 0: no question term occurs anywhere);
  - the question could not be answered and that makes ``max_unanswered_turns`` (default 2)
    consecutive unanswered end-user turns.

  *Decision on counting:* below that limit an unanswered question gets a "couldn't find"
  reply (starting with :data:`FALLBACK_PREFIX`) inviting a rephrase, and earlier turns are
  counted from the messages: an end-user turn (end-user messages up to Fin's next reply) counts
  as unanswered when Fin's reply to it was such a fallback. End-user messages Fin never replied
  to are not a separate turn: they are part of the current question (everything since Fin last
  spoke). An answer from Fin, a handover message or a human agent's public reply ends the
  streak. Because the sync engine may pass only the messages Fin has not seen, the streak is
  also kept in the conversation attribute ``fin_unanswered_turns`` and read back from it.
  ``max_unanswered_turns=1`` hands over at the first question that cannot be answered.
* **Confirmed resolution** (``status="resolved"``, reply :data:`RESOLVED_TEXT`, tag
  ``fin-resolved``, ``fin_resolution: resolved``): after an answer (``fin_resolution`` is
  ``answered``), the end user's new messages are all a thank-you or a confirmation
  (:func:`confirms_answer`, English phrases: "thanks, that helped!", "perfect", "got it").
  Intercom's Fin counts such a conversation as a confirmed resolution, the outcome it bills.
* **Title, tags, attributes** are set on every run, as Fin does: the title is the conversation's
  own if it has one, else the first end-user message (whitespace collapsed, cut at a word
  boundary to ``max_title_length``). Tags keep the conversation's existing ones (Fin's update
  replaces the whole set) minus stale resolution tags, plus ``fin-answered`` and the cited page's
  slug, ``fin-unanswered``, or ``handed-over``. Attributes: ``fin_resolution``
  (``answered``/``unanswered``/``handed_over``), ``fin_source_url`` and ``fin_source_title``
  (None when not answering, which removes them under the merge rule of spec 4.6) and, on
  handover, ``fin_handover_reason`` (``human_requested``/``no_match``/``unanswered_turns``).
* **Languages.** Pages may carry a ``locale`` (the Articles API's published translations do;
  the AI Content API's external pages are English); the library keeps one index per language
  (primary subtag: ``pt-BR`` is ``pt``), each with its own analyzer (English: the tokenizer
  above, unchanged; German, French, Spanish, Dutch, Italian, Portuguese: Unicode words folded
  to ASCII, with umlauts spelt out, their stop words dropped, a light suffix stripper). The end
  user's language is a locale the helpdesk sends (conversation attributes, then user
  attributes: ``language_override``, ``locale``, ``language``, ``browser_language``), else
  the question's (:func:`detect_language`, stop-word counting; its limits are documented
  there), else their earlier messages', else English. Retrieval uses only content in that
  language when the library has any, else the English content (*decision:* the passage is then
  quoted in English, as Fin has nothing else to quote, while the fixed phrases stay in the
  user's language). The fixed phrases (:data:`PHRASES`: the "couldn't find" fallback, the
  handover sentence, the "Source:" label) exist in all seven languages; any other language
  gets English ones. Asking for a human is recognised in English always and, in the user's
  language, by a few common phrasings.
* **Issue type** (Intercom's *Fin attributes*: what the conversation is about, detected from
  the end user's messages, for workflows and routing): ``issue_type`` is set to ``Billing``,
  ``Shipping``, ``Account`` or ``Technical`` when the end user's words name one
  (:data:`ISSUE_TYPES`, English keywords; the most named wins, ties in that order), and kept
  once set. On handover the type is also added as a tag (``billing``…), so that the helpdesk's
  routing rules can use either.
* With no new end-user question the run says nothing (``reply_html=None``) and changes nothing
  but the title/tags it would keep anyway.
"""

from __future__ import annotations

import html as _html
import math
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from findesk.emulator.sync import Decision

if TYPE_CHECKING:
    from findesk.emulator.actions import ConnectorActions, LookupAnswer

__all__ = [
    "FALLBACK_PREFIX",
    "HANDOVER_TEXT",
    "HUMAN_REQUEST_PATTERNS",
    "Decision",
    "PageLike",
    "Passage",
    "RetrievalAnswerer",
    "asks_for_human",
    "split_passages",
    "tokenize",
]

HANDOVER_TEXT = "I'll connect you with a teammate."
FALLBACK_PREFIX = "I couldn't find an answer to that"
FALLBACK_TEXT = (
    f"{FALLBACK_PREFIX} in our help content. Could you rephrase your question? "
    "You can also ask to talk to a human."
)

UNANSWERED_ATTRIBUTE = "fin_unanswered_turns"
ISSUE_TYPE_ATTRIBUTE = "issue_type"
# What the emulated Fin detects a conversation is about: each type and the words that name it.
ISSUE_TYPES: dict[str, tuple[str, ...]] = {
    "Billing": (
        "bill", "billing", "billed", "invoice", "invoices", "refund", "refunds", "charge",
        "charged", "charges", "payment", "payments", "pay", "paid", "subscription", "price",
        "card", "receipt",
    ),
    "Shipping": (
        "order", "orders", "parcel", "package", "delivery", "delivered", "shipping", "shipped",
        "tracking", "courier", "arrive", "arrived",
    ),
    "Account": (
        "account", "password", "login", "log", "sign", "signin", "username", "email", "locked",
        "verify", "verification", "2fa",
    ),
    "Technical": (
        "error", "bug", "crash", "crashes", "broken", "working", "fails", "failed", "api",
        "slow", "outage", "down",
    ),
}  # fmt: skip

TAG_ANSWERED = "fin-answered"
TAG_UNANSWERED = "fin-unanswered"
TAG_HANDED_OVER = "handed-over"
TAG_RESOLVED = "fin-resolved"
_RESOLUTION_TAGS = frozenset({TAG_ANSWERED, TAG_UNANSWERED, TAG_HANDED_OVER, TAG_RESOLVED})
RESOLVED_TEXT = "Glad I could help! I'll close this conversation: write again any time."


class PageLike(Protocol):
    """A page Fin may answer from (``content_store.ContentPage`` is one)."""

    @property
    def id(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def html(self) -> str: ...
    @property
    def url(self) -> str | None: ...


# --- text -------------------------------------------------------------------------------------

_STOP_WORDS = frozenset(
    """
    a about above after again against all am an and any are aren as at be because been before
    being below between both but by can cannot could couldn did didn do does doesn doing don down
    during each few for from further get got had hadn has hasn have haven having he her here hers
    herself him himself his how i if in into is isn it its itself just let me more most mustn my
    myself no nor not now of off on once only or other ought our ours ourselves out over own
    please same shan she should shouldn so some such than thank thanks that the their theirs them
    themselves then there these they this those through to too under until up very was wasn we
    were weren what when where which while who whom why will with won would wouldn you your yours
    yourself yourselves hi hello hey ok okay im ive id ill youre want need like know tell way
    also us s t ll re ve d m
    long take takes taking took reach reaches soon quickly find help question anyone someone
    """.split()
)
_TOKEN_RE = re.compile(r"[a-z0-9]+")
_VOWELS = frozenset("aeiouy")


def _stem(word: str) -> str:
    """A light, consistent suffix stripper (both sides use it, so consistency is what matters)."""
    if word.isdigit() or len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if word.endswith("ation") and len(word) > 7:
        word = word[:-5]  # cancellation -> cancell -> cancel
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stem = word[: -len(suffix)]
            if any(c in _VOWELS for c in stem):
                word = stem
                if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
                    word = word[:-1]
                break
    if word.endswith("ly") and len(word) > 5:
        word = word[:-2]
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    if len(word) > 4 and word[-1] == word[-2] and word[-1] == "l":
        word = word[:-1]  # cancell(ed) -> cancel
    return word


def _normalise(text: str) -> str:
    return text.lower().replace("\u2019", "'").replace("\u2018", "'")


def tokenize(text: str) -> list[str]:
    """Lowercased, stop-word-free, stemmed tokens of plain text."""
    words = _TOKEN_RE.findall(_normalise(text).replace("'", ""))
    return [_stem(w) for w in words if w not in _STOP_WORDS and (len(w) > 1 or w.isdigit())]


# --- HTML to passages -------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    {
        "p", "div", "section", "article", "main", "header", "footer", "aside", "nav",
        "blockquote", "pre", "table", "tr", "td", "th", "dl", "dt", "dd", "figure",
        "figcaption", "form", "address", "details", "summary", "body", "html",
    }
)  # fmt: skip
_HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_LIST_TAGS = frozenset({"ul", "ol"})
_SKIP_TAGS = frozenset({"script", "style", "template", "noscript", "head", "title", "svg"})
_VOID_TAGS = frozenset({"br", "hr", "img", "input", "meta", "link", "wbr", "source", "col"})
_WS_RE = re.compile(r"\s+")


def _clean(text: str) -> str:
    return _WS_RE.sub(" ", text).strip()


@dataclass(frozen=True)
class _Block:
    kind: str  # "text" | "heading" | "list"
    lines: tuple[str, ...]


class _BlockParser(HTMLParser):
    """Splits HTML into text blocks; only text is taken (entities decoded), never markup."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[_Block] = []
        self._buf: list[str] = []
        self._skip = 0
        self._heading = 0
        self._list_depth = 0
        self._items: list[str] = []

    def _flush_text(self) -> None:
        text = _clean("".join(self._buf))
        self._buf = []
        if not text:
            return
        if self._list_depth:
            self._items.append(text)
        elif self._heading:
            self.blocks.append(_Block("heading", (text,)))
        else:
            self.blocks.append(_Block("text", (text,)))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _VOID_TAGS:
            if tag == "br":
                self._buf.append(" ")
        elif tag in _LIST_TAGS:
            self._flush_text()
            if self._list_depth == 0:
                self._items = []
            self._list_depth += 1
        elif tag == "li" or tag in _BLOCK_TAGS:
            self._flush_text()
        elif tag in _HEADING_TAGS:
            self._flush_text()
            self._heading += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self._buf.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _LIST_TAGS and self._list_depth:
            self._flush_text()
            self._list_depth -= 1
            if self._list_depth == 0 and self._items:
                self.blocks.append(_Block("list", tuple(self._items)))
                self._items = []
        elif tag == "li" or tag in _BLOCK_TAGS:
            self._flush_text()
        elif tag in _HEADING_TAGS and self._heading:
            self._flush_text()
            self._heading -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._buf.append(data)

    def result(self) -> list[_Block]:
        self._flush_text()
        if self._items:
            self.blocks.append(_Block("list", tuple(self._items)))
            self._items = []
        return self.blocks


def _html_blocks(html: str) -> list[_Block]:
    parser = _BlockParser()
    parser.feed(html)
    parser.close()
    return parser.result()


def _html_text(html: str) -> str:
    return " ".join(" ".join(b.lines) for b in _html_blocks(html))


@dataclass(frozen=True)
class Passage:
    """A quotable piece of a page: a paragraph, a whole list, or a lone heading."""

    page_id: int
    page_title: str
    page_url: str | None
    heading: str | None
    kind: str  # "text" | "heading" | "list"
    lines: tuple[str, ...]
    locale: str = "en"

    @property
    def text(self) -> str:
        return " ".join(self.lines)


def split_passages(page: PageLike) -> list[Passage]:
    """The page's passages in order; a heading labels the passages under it."""
    passages: list[Passage] = []
    heading: str | None = None
    heading_used = True
    for block in _html_blocks(page.html or ""):
        if block.kind == "heading":
            if not heading_used and heading is not None:
                passages.append(_passage(page, None, "heading", (heading,)))
            heading, heading_used = block.lines[0], False
            continue
        passages.append(_passage(page, heading, block.kind, block.lines))
        heading_used = True
    if not heading_used and heading is not None:
        passages.append(_passage(page, None, "heading", (heading,)))
    return passages


def _passage(page: PageLike, heading: str | None, kind: str, lines: tuple[str, ...]) -> Passage:
    locale = getattr(page, "locale", None) or "en"
    return Passage(page.id, page.title or "", page.url, heading, kind, lines, locale)


# --- BM25 -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Match:
    passage: Passage
    score: float
    coverage: float


class _Index:
    def __init__(
        self,
        passages: list[Passage],
        k1: float = 1.2,
        b: float = 0.75,
        analyze: Callable[[str], list[str]] = tokenize,
    ) -> None:
        self.passages = passages
        self.analyze = analyze
        self.k1, self.b = k1, b
        self.docs: list[Counter[str]] = []
        for p in passages:
            context = f"{p.page_title} {p.heading or ''}"
            self.docs.append(Counter(analyze(context) + analyze(p.text)))
        self.lengths = [sum(d.values()) for d in self.docs]
        self.avg_length = (sum(self.lengths) / len(self.lengths)) if self.lengths else 0.0
        df: Counter[str] = Counter()
        for d in self.docs:
            df.update(d.keys())
        n = len(self.docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        # Not the formula's value for df=0, which in a tiny library dwarfs every real term.
        self.unseen_idf = max(self.idf.values(), default=1.0)

    def best(self, question: str) -> _Match | None:
        terms = list(dict.fromkeys(self.analyze(question)))
        if not terms or not self.docs:
            return None
        total_weight = sum(self.idf.get(t, self.unseen_idf) for t in terms)
        best: _Match | None = None
        for passage, doc, length in zip(self.passages, self.docs, self.lengths, strict=True):
            score = matched = 0.0
            norm = self.k1 * (1 - self.b + self.b * length / (self.avg_length or 1.0))
            for t in terms:
                tf = doc.get(t, 0)
                if tf:
                    idf = self.idf[t]
                    score += idf * tf * (self.k1 + 1) / (tf + norm)
                    matched += idf
            if score > 0 and (best is None or score > best.score):
                best = _Match(passage, score, matched / total_weight)
        return best


# --- handover phrases -------------------------------------------------------------------------

_PEOPLE = (
    r"(?:a |an |the |some |your |one of your )?(?:real |live |actual |human |customer )?"
    r"(?:human|person|people|someone|somebody|agent|representative|rep|operator|teammate|"
    r"team member|staff(?: member)?|support(?: team| agent| person)?|employee|manager|"
    r"customer service|customer support)\b"
)
HUMAN_REQUEST_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p)
    for p in (
        rf"\b(?:talk|speak|chat|connect|transfer|escalate)(?: me)? (?:to|with|through to) "
        rf"{_PEOPLE}",
        rf"\b(?:put|get|pass|hand|send) me (?:to|through to|over to|with) {_PEOPLE}",
        r"\b(?:real|live|actual) (?:person|human|agent|people|support)\b",
        r"\bhuman (?:agent|being|support|please|pls|plz)\b",
        r"\b(?:a|an|the) (?:human|representative|operator)\b",
        r"\b(?:customer service |sales |support )?representative\b",
        r"\b(?:want|need|get|give me|ask for|request) (?:a |an |to )?(?:human|person|agent)\b",
        r"\b(?:agent|human|operator|person|someone)[,!. ]*(?:please|pls|plz|now)\b",
        r"\b(?:please|pls|plz)[,!. ]*(?:an? )?(?:agent|human|operator|person)\b",
        r"^\W*(?:agent|human|operator|representative)\W*$",
        r"\bnot (?:a |an )?(?:bot|robot|machine|ai)\b",
        r"\bstop (?:the )?(?:bot|robot)\b",
    )
)


def asks_for_human(text: str) -> bool:
    """True when the end user asks to be put through to a person (case-insensitive)."""
    norm = re.sub(r"[^\w\s,!.?']", " ", _normalise(text))
    # The whole text, and each sentence on its own (for "... password? Agent!").
    parts = [_clean(norm), *(_clean(p) for p in re.split(r"[.!?\n]+", norm))]
    return any(p.search(part) for part in parts if part for p in HUMAN_REQUEST_PATTERNS)


# --- the end user confirms the answer -------------------------------------------------------

_THANKS = re.compile(
    r"^(?:(?:ok(?:ay)?|great|perfect|awesome|brilliant|cool|yes|yep|yeah|got it|all good|"
    r"that (?:helped|helps|worked|works|did it|solved it|fixed it|answers it|answered it)|"
    r"(?:that'?s|this is) (?:all|it|great|perfect|helpful)|it worked|problem solved|solved|"
    r"many thanks|thanks(?: a lot| so much)?|thank you(?: very much| so much)?|thx|ty|cheers)"
    r"[\s,!.]*)+$"
)


def issue_type_of(texts: Iterable[str]) -> str | None:
    """The :data:`ISSUE_TYPES` entry the end user's words name most (ties: the first), or None."""
    words = Counter(w for text in texts for w in re.findall(r"[a-z0-9]+", _normalise(text)))
    counts = {kind: sum(words[w] for w in names) for kind, names in ISSUE_TYPES.items()}
    best = max(counts, key=lambda kind: counts[kind])  # max keeps the first of equals
    return best if counts[best] else None


def confirms_answer(text: str) -> bool:
    """True when the end user's whole message is a thank-you or a confirmation ("thanks, that
    helped!"): after an answer, Fin takes it as a confirmed resolution. English only."""
    return bool(_THANKS.match(_clean(re.sub(r"[^\w\s,!.']", " ", _normalise(text)))))


# --- languages --------------------------------------------------------------------------------

#: Languages the answerer detects and speaks (its fixed phrases are translated into each).
LANGUAGES = ("en", "de", "fr", "es", "nl", "it", "pt")


@dataclass(frozen=True)
class Phrases:
    """Fin's fixed sentences in one language."""

    handover: str
    fallback_prefix: str
    fallback: str
    source: str  # the label before the citation, colon included


PHRASES: dict[str, Phrases] = {
    "en": Phrases(HANDOVER_TEXT, FALLBACK_PREFIX, FALLBACK_TEXT, "Source:"),
    "de": Phrases(
        "Ich verbinde Sie mit einem Teammitglied.",
        "Dazu habe ich leider keine Antwort gefunden",
        "Dazu habe ich leider keine Antwort gefunden in unseren Hilfeartikeln. Können Sie Ihre "
        "Frage anders formulieren? Sie können auch darum bitten, mit einem Menschen zu sprechen.",
        "Quelle:",
    ),
    "fr": Phrases(
        "Je vous mets en relation avec un membre de l'équipe.",
        "Je n'ai pas trouvé de réponse à cette question",
        "Je n'ai pas trouvé de réponse à cette question dans notre centre d'aide. Pourriez-vous "
        "la reformuler ? Vous pouvez aussi demander à parler à une personne.",
        "Source :",
    ),
    "es": Phrases(
        "Le pongo en contacto con un miembro del equipo.",
        "No he encontrado una respuesta a eso",
        "No he encontrado una respuesta a eso en nuestro contenido de ayuda. ¿Podría reformular "
        "su pregunta? También puede pedir hablar con una persona.",
        "Fuente:",
    ),
    "nl": Phrases(
        "Ik verbind u door met een teamlid.",
        "Ik heb daar geen antwoord op gevonden",
        "Ik heb daar geen antwoord op gevonden in onze helpartikelen. Kunt u uw vraag anders "
        "formuleren? U kunt ook vragen om een medewerker te spreken.",
        "Bron:",
    ),
    "it": Phrases(
        "La metto in contatto con un membro del team.",
        "Non ho trovato una risposta a questa domanda",
        "Non ho trovato una risposta a questa domanda nei nostri contenuti di assistenza. Può "
        "riformularla? Può anche chiedere di parlare con una persona.",
        "Fonte:",
    ),
    "pt": Phrases(
        "Vou transferir você para um membro da equipe.",
        "Não encontrei uma resposta para isso",
        "Não encontrei uma resposta para isso no nosso conteúdo de ajuda. Pode reformular a sua "
        "pergunta? Também pode pedir para falar com uma pessoa.",
        "Fonte:",
    ),
}

_FALLBACK_PREFIXES = tuple(_normalise(p.fallback_prefix) for p in PHRASES.values())
#: Attributes (conversation's first, then the user's) that may carry the end user's locale.
LOCALE_ATTRIBUTES = ("language_override", "locale", "language", "browser_language")
_LOCALE_RE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")

_GERMAN_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})
_WORD_RE = re.compile(r"[^\W_]+")


def _fold(word: str, language: str) -> str:
    """Lowercase ASCII: German umlauts spelt out (ü -> ue, as Germans type without them),
    other accents dropped, so "Rückerstattung" and "rueckerstattung" meet."""
    word = word.lower()
    if language == "de":
        word = word.translate(_GERMAN_FOLD)
    return unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode()


_STOP_WORD_TEXT = {
    "de": """
        aber alle allem allen aller alles als also am an auch auf aus bei beim bin bis bitte
        bist da dann darf das dass dem den denn der des dich die dies diese diesem dieser doch
        dort du durch ein eine einem einen einer eines es etwas euch euer für gibt habe haben
        hallo hat hatte ich ihm ihn ihr ihre im in ist ja jetzt kann kein keine können könnte
        man mein meine meinem meinen meiner mich mir mit muss nach nicht noch nun nur ob oder
        ohne sehr sein seine sich sie sind so soll über um und uns unser unsere vom von vor
        war was weil welche wenn wer werde werden wie wieder wir wird wo wurde zu zum zur
        lange wann warum wieso danke guten tag dauert dauern dauer
    """,
    "fr": """
        au aux avec ce ces cette dans de des du elle en est et être il ils je la le les leur
        lui ma mais me mes moi mon ne nos notre nous on ou où par pas pour qu que qui sa se
        ses son sur ta te tes toi ton tu un une vos votre vous suis sont ai avez peux peut
        puis comment combien quand quoi pourquoi quel quelle quels quelles faire fait bonjour
        merci svp y a temps prend prendre
    """,
    "es": """
        al algo como con cual cuando cuándo cómo cuál cuánto de del donde dónde el ella en
        es esta está este esto hay la las le les lo los me mi mis muy más no nos o para pero
        por porque qué que se si sin sobre su sus también te tengo tiene un una uno usted y
        ya yo puedo puede quiero hola gracias cuanto tarda tiempo
    """,
    "nl": """
        aan al als bij dan dat de der deze die dit doe doen door een en er geen had heb
        hebben heeft hem het hier hij hoe hoelang hun ik in is ja je jij kan kun kunnen maar
        me met mij mijn na naar niet nog nu of om onder ons ook op over te tot u uw van veel
        voor waar wanneer wat we wel wie wij wil zal ze zij zijn zo zou hallo bedankt dank
        lang duurt
    """,
    "it": """
        a al alla alle anche ancora che chi ci come con cosa da dal dalla dei del della delle
        di dove e è gli ha hanno ho i il in io la le lei lo loro lui ma mi mia mio ne nel
        nella no non per perché più può posso quale quando quanto questa questo se si sono
        su sua suo ti tra tu un una uno vi voi ciao grazie buongiorno tempo vuole
    """,
    "pt": """
        a ao aos as às até com como da das de do dos e é ela ele em entre era essa esse esta
        está este eu foi há isso isto já lhe mais mas me meu minha muito na não nas no nos
        nós o os ou para pela pelo por porque posso pode qual quando quanto que se sem ser
        seu sua são também te tem tenho um uma você vocês olá obrigado obrigada demora tempo
    """,
}
_STOP_WORDS_BY_LANGUAGE: dict[str, frozenset[str]] = {
    "en": _STOP_WORDS,
    **{
        language: frozenset(_fold(w, language) for w in text.split())
        for language, text in _STOP_WORD_TEXT.items()
    },
}
#: Letters only some of the languages use: a little evidence each.
_LETTER_HINTS = {"de": "äöüß", "es": "ñ¿¡", "pt": "ãõ", "fr": "œùû", "it": "ì"}


def detect_language(text: str) -> str | None:
    """The language of ``text`` among :data:`LANGUAGES`, or None when it gives no sign.

    Deterministic and small: each word found in a language's stop-word list counts for that
    language, divided by the number of lists holding it ("de" is French, Spanish and
    Portuguese); a few letters add a little (ß, ñ, ã...). The best score wins; ties go to the
    earlier language of :data:`LANGUAGES` (English first); below one word's worth of evidence
    the answer is None. *Limits:* a question with no
    function word ("Rückerstattung Status?") is not recognised; close languages sharing most
    function words (Spanish/Portuguese, Dutch/German) can be confused in a very short text;
    mixed-language text goes to whichever has more function words; any other language is
    either None or mistaken for the nearest listed one.
    """
    scores = dict.fromkeys(LANGUAGES, 0.0)
    lowered = text.lower().replace("\u2019", "'")
    for word in _WORD_RE.findall(lowered.replace("'", " ")):
        holders = [
            language
            for language in LANGUAGES
            if _fold(word, language) in _STOP_WORDS_BY_LANGUAGE[language]
            # The English list is matched as the English tokenizer sees words (ASCII only).
            and (language != "en" or word.isascii())
        ]
        for language in holders:
            scores[language] += 1.0 / len(holders)
    for language, letters in _LETTER_HINTS.items():
        if any(letter in lowered for letter in letters):
            scores[language] += 0.5
    best = max(LANGUAGES, key=lambda language: (scores[language], -LANGUAGES.index(language)))
    # At least one word's worth: "Die cast parts?" (half a German, half a Dutch word) says none.
    return best if scores[best] >= 1.0 else None


def _primary(locale: str) -> str:
    """``pt-BR`` -> ``pt``; lowercased."""
    return locale.strip().replace("_", "-").split("-")[0].lower()


def _stem_german(word: str) -> str:
    """A light German suffix stripper in the manner of CISTEM (Weissweiler & Fraser 2017)."""
    while len(word) > 4:
        if len(word) > 5 and word.endswith(("em", "er", "nd")):
            word = word[:-2]
        elif word.endswith(("t", "e", "s", "n")):
            word = word[:-1]
        else:
            break
    return word


def _stem_romance(word: str) -> str:
    """French, Spanish, Italian, Portuguese: plural, then common derivations, then the final
    vowel ("remboursement", "rembourser", "remboursé" -> "rembours")."""
    if len(word) > 4 and word.endswith(("s", "x")):
        word = word[:-1]
    for suffix in ("amente", "mente", "ement", "ment", "aciones", "acion", "azione", "ation",
                   "cao", "er", "ez", "ar", "ir", "re"):  # fmt: skip
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            break
    if len(word) > 4 and word[-1] in "aeiou":
        word = word[:-1]
    return word


def _stem_dutch(word: str) -> str:
    if len(word) > 5 and word.endswith("en"):
        word = word[:-2]
    elif len(word) > 4 and word.endswith("s"):
        word = word[:-1]
    if len(word) > 4 and word[-1] == word[-2] and word[-1] not in "aeiou":
        word = word[:-1]  # terugbetall(en) -> terugbetal
    return word


_STEMMERS: dict[str, Callable[[str], str]] = {
    "de": _stem_german,
    "fr": _stem_romance,
    "es": _stem_romance,
    "it": _stem_romance,
    "pt": _stem_romance,
    "nl": _stem_dutch,
}


def _unstemmed(word: str) -> str:
    return word


def analyzer(language: str) -> Callable[[str], list[str]]:
    """The tokenizer for text in ``language``: :func:`tokenize` for English (unchanged); for
    the others Unicode words, folded, that language's stop words dropped, lightly stemmed (any
    language without a list or stemmer: folded words only)."""
    if language == "en":
        return tokenize
    stop = _STOP_WORDS_BY_LANGUAGE.get(language, frozenset())
    stem = _STEMMERS.get(language, _unstemmed)

    def analyze(text: str) -> list[str]:
        words = (_fold(w, language) for w in _WORD_RE.findall(_normalise(text)))
        return [
            w if w.isdigit() else stem(w)
            for w in words
            if w and w not in stop and (len(w) > 1 or w.isdigit())
        ]

    return analyze


def without_stop_words(text: str, language: str) -> str:
    """``text`` without ``language``'s stop words (a question searched in another language's
    content should not count its own function words as missing terms)."""
    stop = _STOP_WORDS_BY_LANGUAGE.get(language, frozenset())
    words = _WORD_RE.findall(_normalise(text).replace("'", " "))
    return " ".join(w for w in words if _fold(w, language) not in stop)


_HUMAN_REQUEST_BY_LANGUAGE: dict[str, tuple[re.Pattern[str], ...]] = {
    language: tuple(re.compile(p) for p in patterns)
    for language, patterns in {
        "de": (
            r"\b(?:mit|an) (?:einem|einer|einen|dem|der) (?:echten |richtigen )?"
            r"(?:menschen|mitarbeiter(?:in)?|person|berater(?:in)?|support)\b",
            r"\b(?:mensch|mitarbeiter|berater)[,!. ]*bitte\b",
        ),
        "fr": (
            r"\bparler (?:à|a|avec) (?:un|une|quelqu'un|quelqu un)"
            r"(?: (?:humain|personne|agent|conseiller|conseillère))?\b",
            r"\b(?:un|une) (?:vrai|vraie) (?:personne|humain)\b",
        ),
        "es": (
            r"\bhablar con (?:un|una|alguien)(?: (?:humano|persona|agente|asesor))?\b",
            r"\b(?:una persona real|un humano)\b",
        ),
        "nl": (r"\b(?:met|naar) (?:een|de) (?:mens|medewerker|persoon|echt persoon)\b",),
        "it": (
            r"\bparlare con (?:un|una|qualcuno)(?: (?:operatore|umano|persona|agente))?\b",
            r"\b(?:un|una) (?:operatore|persona reale)\b",
        ),
        "pt": (
            r"\bfalar com (?:um|uma|alguém|alguem)(?: (?:humano|pessoa|atendente|agente))?\b",
            r"\b(?:um atendente|uma pessoa real)\b",
        ),
    }.items()
}


def asks_for_human_in(text: str, language: str) -> bool:
    """:func:`asks_for_human`, plus a few phrasings in ``language`` when it is not English."""
    if asks_for_human(text):
        return True
    patterns = _HUMAN_REQUEST_BY_LANGUAGE.get(language, ())
    norm = _clean(_normalise(text))
    return any(p.search(norm) for p in patterns)


# --- the answerer -----------------------------------------------------------------------------


def _slug(text: str, limit: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", _normalise(text)).strip("-")
    return slug[:limit].rstrip("-")


def _page_slug(passage: Passage) -> str:
    if passage.page_url:
        path = urlsplit(passage.page_url).path.rstrip("/")
        last = path.rsplit("/", 1)[-1] if path else ""
        last = re.sub(r"\.[a-z0-9]{1,5}$", "", last.lower())
        if _slug(last) and not last.isdigit():
            return _slug(last)
    return _slug(passage.page_title) or f"page-{passage.page_id}"


def _citable(url: str | None) -> bool:
    return bool(url) and urlsplit(url or "").scheme.lower() in ("http", "https")


def _paragraph(text: str) -> str:
    return f"<p>{_html.escape(text, quote=False)}</p>"


PagesSource = Callable[[], Iterable[PageLike]] | Iterable[PageLike]


_Library = dict[str, _Index]


class RetrievalAnswerer:
    """Satisfies ``sync.Answerer``: answers from the content library or hands over."""

    def __init__(
        self,
        pages: PagesSource,
        *,
        fin_agent_id: str | None = None,
        min_coverage: float = 0.34,
        min_score: float = 0.0,
        max_unanswered_turns: int = 2,
        max_title_length: int = 80,
        actions: ConnectorActions | None = None,
    ) -> None:
        if max_unanswered_turns < 1:
            raise ValueError("max_unanswered_turns must be at least 1")
        self._pages = pages
        self.fin_agent_id = fin_agent_id
        self.min_coverage = min_coverage
        self.min_score = min_score
        self.max_unanswered_turns = max_unanswered_turns
        self.max_title_length = max_title_length
        self.actions = actions
        self._lock = threading.Lock()
        self._cache: tuple[tuple[tuple[int, str, str, str | None, str], ...], _Library] | None = (
            None
        )

    # -- library --

    def _library(self) -> _Library:
        """One index per language of the pages (a page without ``locale`` is English)."""
        source = self._pages
        pages = list(source() if callable(source) else source)
        key = tuple(
            (p.id, p.title, p.html, p.url, getattr(p, "locale", None) or "en") for p in pages
        )
        with self._lock:
            if self._cache is not None and self._cache[0] == key:
                return self._cache[1]
        by_language: dict[str, list[Passage]] = {}
        for page in pages:
            language = _primary(getattr(page, "locale", None) or "en")
            by_language.setdefault(language, []).extend(split_passages(page))
        library = {
            language: _Index(passages, analyze=analyzer(language))
            for language, passages in by_language.items()
        }
        with self._lock:
            self._cache = (key, library)
        return library

    # -- language --

    def language_of(
        self,
        conversation: dict[str, Any],
        user: dict[str, Any],
        texts: Sequence[str],
        earlier: Sequence[str] = (),
    ) -> str:
        """The end user's language (a primary subtag such as ``de``).

        A locale the helpdesk sends wins: the first of :data:`LOCALE_ATTRIBUTES` found in the
        conversation's attributes, then in the user's. Else the question's language
        (:func:`detect_language`), else that of the end user's earlier messages, else English.
        """
        for holder in (conversation, user):
            attributes = holder.get("attributes") if isinstance(holder, dict) else None
            if not isinstance(attributes, dict):
                continue
            for name in LOCALE_ATTRIBUTES:
                value = attributes.get(name)
                if isinstance(value, str) and _LOCALE_RE.match(value.strip()):
                    return _primary(value)
        for text in (" ".join(texts), " ".join(earlier)):
            detected = detect_language(text)
            if detected is not None:
                return detected
        return "en"

    # -- messages --

    def _is_end_user(self, message: dict[str, Any]) -> bool:
        author = message.get("author") or {}
        return (
            message.get("visibility", "public") == "public"
            and author.get("user_type") == "end_user"
        )

    def _is_fin(self, message: dict[str, Any]) -> bool:
        author = message.get("author") or {}
        if message.get("visibility", "public") != "public" or author.get("user_type") != "agent":
            return False
        return self.fin_agent_id is None or str(author.get("id")) == str(self.fin_agent_id)

    def _is_human_agent(self, message: dict[str, Any]) -> bool:
        author = message.get("author") or {}
        return (
            message.get("visibility", "public") == "public"
            and author.get("user_type") == "agent"
            and not self._is_fin(message)
        )

    @staticmethod
    def _text(message: dict[str, Any]) -> str:
        return _clean(_html_text(message.get("body") or ""))

    def _earlier_unanswered(
        self, ordered: Sequence[dict[str, Any]], last_fin: int, conversation: dict[str, Any]
    ) -> int:
        """Consecutive unanswered end-user turns just before the new question.

        From the messages, and from the ``fin_unanswered_turns`` attribute this answerer keeps on
        the conversation, for when it is given only the messages it has not seen (the larger
        wins; a human agent's public reply among the messages voids the attribute).
        """
        from_messages = self._streak(ordered[: last_fin + 1])
        attributes = conversation.get("attributes") or {}
        stored = attributes.get(UNANSWERED_ATTRIBUTE) if isinstance(attributes, dict) else None
        if not isinstance(stored, int) or any(self._is_human_agent(m) for m in ordered):
            stored = 0
        return max(from_messages, stored)

    def _streak(self, messages: Sequence[dict[str, Any]]) -> int:
        streak = 0
        pending = False  # an end-user turn waiting for Fin's reply
        for message in messages:
            if self._is_end_user(message):
                pending = True
            elif self._is_fin(message):
                text = _normalise(self._text(message))
                if text.startswith(_FALLBACK_PREFIXES):
                    streak = streak + 1 if pending else streak
                else:
                    streak = 0
                pending = False
            elif self._is_human_agent(message):
                streak, pending = 0, False
        return streak

    # -- the run --

    def answer(
        self, conversation: dict[str, Any], messages: list[dict[str, Any]], user: dict[str, Any]
    ) -> Decision:
        decision = self._decide(conversation, messages, user)
        known = (conversation.get("attributes") or {}).get(ISSUE_TYPE_ATTRIBUTE)
        texts = [t for m in messages if self._is_end_user(m) and (t := self._text(m))]
        issue_type = known if isinstance(known, str) and known else issue_type_of(texts)
        if issue_type is None:
            return decision
        if issue_type != known:
            decision.attributes[ISSUE_TYPE_ATTRIBUTE] = issue_type
        if decision.hand_over:
            decision.tags = list(dict.fromkeys([*decision.tags, issue_type.lower()]))
        return decision

    def _decide(
        self, conversation: dict[str, Any], messages: list[dict[str, Any]], user: dict[str, Any]
    ) -> Decision:
        ordered = list(messages)
        last_fin = max((i for i, m in enumerate(ordered) if self._is_fin(m)), default=-1)
        new_texts = [
            t for m in ordered[last_fin + 1 :] if self._is_end_user(m) and (t := self._text(m))
        ]
        title = self._title(conversation, ordered)
        existing = [t for t in (conversation.get("tags") or []) if isinstance(t, str)]

        if not new_texts:
            return Decision(None, False, title, list(dict.fromkeys(existing)), {})
        question = " ".join(new_texts)

        earlier = [
            t for m in ordered[: last_fin + 1] if self._is_end_user(m) and (t := self._text(m))
        ]
        language = self.language_of(conversation, user, new_texts, earlier)
        phrases = PHRASES.get(language, PHRASES["en"])

        if any(asks_for_human_in(t, language) for t in new_texts):
            return self._hand_over(title, existing, "human_requested", phrases)

        if conversation.get("attributes", {}).get("fin_resolution") == "answered" and all(
            confirms_answer(t) for t in new_texts
        ):
            return self._resolved(title, existing)

        if self.actions is not None:
            analyzers = [analyzer(lang) for lang in dict.fromkeys(["en", language])]
            looked_up = self.actions.attempt(question, analyzers, language, conversation, user)
            if looked_up is not None:
                return self._looked_up(title, existing, looked_up)

        library = self._library()
        # Content in the user's language when there is any; English otherwise (Fin has nothing
        # else to quote), searched without the question's own function words.
        if language in library:
            index: _Index | None = library[language]
        else:
            index = library.get("en")
            question = without_stop_words(question, language)
        match = index.best(question) if index is not None else None
        if (
            match is not None
            and match.coverage >= self.min_coverage
            and match.score >= self.min_score
        ):
            return self._answered(title, existing, match.passage, phrases)
        if match is None:
            return self._hand_over(title, existing, "no_match", phrases)
        unanswered = self._earlier_unanswered(ordered, last_fin, conversation) + 1
        if unanswered >= self.max_unanswered_turns:
            return self._hand_over(title, existing, "unanswered_turns", phrases)
        return Decision(
            reply_html=_paragraph(phrases.fallback),
            hand_over=False,
            title=title,
            tags=self._tags(existing, [TAG_UNANSWERED]),
            attributes={
                "fin_resolution": "unanswered",
                UNANSWERED_ATTRIBUTE: unanswered,
                "fin_handover_reason": None,
                "fin_source_url": None,
                "fin_source_title": None,
            },
        )

    def _title(
        self, conversation: dict[str, Any], messages: Sequence[dict[str, Any]]
    ) -> str | None:
        current = conversation.get("title")
        if isinstance(current, str) and current.strip():
            return current
        first = next((t for m in messages if self._is_end_user(m) and (t := self._text(m))), None)
        if first is None:
            return None
        if len(first) <= self.max_title_length:
            return first
        cut = first[: self.max_title_length - 1]
        if " " in cut:
            cut = cut.rsplit(" ", 1)[0]
        return cut.rstrip(" ,;:.-") + "…"

    @staticmethod
    def _tags(existing: list[str], new: list[str]) -> list[str]:
        kept = [t for t in existing if t not in _RESOLUTION_TAGS]
        return list(dict.fromkeys([*kept, *new]))

    def _answered(
        self,
        title: str | None,
        existing: list[str],
        passage: Passage,
        phrases: Phrases = PHRASES["en"],
    ) -> Decision:
        if passage.kind == "list":
            items = "".join(f"<li>{_html.escape(line, quote=False)}</li>" for line in passage.lines)
            body = f"<ul>{items}</ul>"
        else:
            body = _paragraph(passage.text)
        url = passage.page_url if _citable(passage.page_url) else None
        if url is not None:
            label = _html.escape(passage.page_title or url, quote=False)
            link = f'<a href="{_html.escape(url, quote=True)}">{label}</a>'
            body += f"<p>{_html.escape(phrases.source, quote=False)} {link}</p>"
        return Decision(
            reply_html=body,
            hand_over=False,
            title=title,
            tags=self._tags(existing, [TAG_ANSWERED, _page_slug(passage)]),
            attributes={
                "fin_resolution": "answered",
                UNANSWERED_ATTRIBUTE: None,
                "fin_handover_reason": None,
                "fin_source_url": url,
                "fin_source_title": passage.page_title or None,
            },
        )

    def _resolved(self, title: str | None, existing: list[str]) -> Decision:
        """The end user confirmed Fin's answer: Fin says so and resolves the conversation."""
        return Decision(
            reply_html=_paragraph(RESOLVED_TEXT),
            hand_over=False,
            title=title,
            tags=self._tags(existing, [TAG_RESOLVED]),
            attributes={"fin_resolution": "resolved", UNANSWERED_ATTRIBUTE: None},
            status="resolved",
        )

    def _looked_up(self, title: str | None, existing: list[str], answer: LookupAnswer) -> Decision:
        return Decision(
            reply_html=answer.reply_html,
            hand_over=False,
            title=title,
            tags=self._tags(existing, [TAG_ANSWERED, f"lookup-{_slug(answer.connector_name)}"]),
            attributes={
                "fin_resolution": "answered",
                UNANSWERED_ATTRIBUTE: None,
                "fin_handover_reason": None,
                "fin_source_url": None,
                "fin_source_title": None,
            },
        )

    def _hand_over(
        self,
        title: str | None,
        existing: list[str],
        reason: str,
        phrases: Phrases = PHRASES["en"],
    ) -> Decision:
        return Decision(
            reply_html=_paragraph(phrases.handover),
            hand_over=True,
            title=title,
            tags=self._tags(existing, [TAG_HANDED_OVER]),
            attributes={
                "fin_resolution": "handed_over",
                UNANSWERED_ATTRIBUTE: None,
                "fin_handover_reason": reason,
                "fin_source_url": None,
                "fin_source_title": None,
            },
        )
