"""Fin's actions in the emulator: calling a live Data Connector when the question asks for it.

Real Fin decides with a language model which connector to call and what to fill in. The
emulator decides with rules that are plain enough to test and to predict:

* **Which connectors.** Live ones with ``direct_fin_usage`` (the others are for workflows
  only), whose ``audiences`` include the end user's kind when both are known (``role`` of the
  user the helpdesk sent: ``user``, ``lead`` or ``visitor``); an empty audience list means all.
* **Does the question ask for one?** It must carry a *value*: a word with a digit in it, such as
  ``A-1042``, ``#1234`` or ``1234`` (a leading ``#`` is dropped; an ``integer`` or ``decimal``
  input takes only numbers), and share a word with the connector's name, description or its
  inputs' descriptions ("order" in "Where is my order A-1042?" and "Look up an order"). Words
  are compared after the English stemmer and the user's language's one, so a connector described
  in English is found from a German question only if its description also names the thing in
  German ("Bestellung"): write descriptions for the languages your customers write in. The
  connector sharing the most words wins (ties: the lowest id).
* **Filling the inputs.** The context inputs ``user_id`` and ``conversation_id`` (and any input of
  that name) come from the conversation Fin is in, never from the text. The question's values
  fill the connector's other inputs in order, required ones first. A connector whose required
  inputs cannot all be filled is not called.
* **The answer.** A successful call whose JSON answer says ``"found": false`` (or has nothing
  but bookkeeping in it) is told as "found nothing for A-1042"; any other JSON is told as a
  short list of its fields, HTML-escaped. A failed call (the endpoint refused, timed out or
  answered garbage) is not told: the answerer goes on to its articles, as Fin does when an
  action fails. Every call, successful or not, is an execution result of the connector.
"""

from __future__ import annotations

import html as _html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from findesk.emulator.data_connectors_api import ExecutionResult, execute
from findesk.emulator.data_connectors_store import Connector, DataConnectorStore

CONTEXT_INPUTS = ("user_id", "conversation_id")
_VALUE_RE = re.compile(r"(?<![\w-])#?([A-Za-z]{0,6}-?\d[\w-]*)")
_NUMBER_RE = re.compile(r"^\d+(?:[.,]\d+)?$")
_BOOKKEEPING = frozenset({"found", "count", "type"})
_AUDIENCE_OF_ROLE = {"user": "users", "lead": "leads", "visitor": "visitors"}
MAX_LISTED_FIELDS = 12


@dataclass(frozen=True)
class LookupPhrases:
    found: str  # "{value}" is replaced
    nothing: str


LOOKUP_PHRASES: dict[str, LookupPhrases] = {
    "en": LookupPhrases(
        "Here is what I found for {value}:", "I couldn't find anything for {value}."
    ),
    "de": LookupPhrases(
        "Das habe ich zu {value} gefunden:", "Zu {value} habe ich nichts gefunden."
    ),
    "fr": LookupPhrases(
        "Voici ce que j'ai trouvé pour {value} :", "Je n'ai rien trouvé pour {value}."
    ),
    "es": LookupPhrases("Esto es lo que encontré para {value}:", "No encontré nada para {value}."),
    "nl": LookupPhrases("Dit heb ik gevonden voor {value}:", "Ik heb niets gevonden voor {value}."),
    "it": LookupPhrases("Ecco cosa ho trovato per {value}:", "Non ho trovato nulla per {value}."),
    "pt": LookupPhrases("Eis o que encontrei para {value}:", "Não encontrei nada para {value}."),
}


@dataclass(frozen=True)
class LookupAnswer:
    """A connector Fin called and what to tell the end user."""

    connector_name: str
    value: str
    reply_html: str
    found: bool
    result: ExecutionResult


Analyzer = Callable[[str], list[str]]


def question_values(question: str) -> list[str]:
    """The words of ``question`` that can be an input's value, in order, without repeats."""
    values = [m.group(1).rstrip("-") for m in _VALUE_RE.finditer(question)]
    return list(dict.fromkeys(v for v in values if any(c.isdigit() for c in v)))


class ConnectorActions:
    """Chooses and calls the emulator's live Data Connectors for ``RetrievalAnswerer``."""

    def __init__(self, store: DataConnectorStore, *, timeout: float = 10.0) -> None:
        self.store = store
        self.timeout = timeout

    def attempt(
        self,
        question: str,
        analyzers: Sequence[Analyzer],
        language: str,
        conversation: dict[str, Any],
        user: dict[str, Any],
    ) -> LookupAnswer | None:
        values = question_values(question)
        if not values:
            return None
        words = {w for analyze in analyzers for w in analyze(question)}
        chosen = self._choose(words, values, user, analyzers)
        if chosen is None:
            return None
        connector, filled, value = chosen
        context = {
            "user_id": str(user.get("id") or ""),
            "conversation_id": str(conversation.get("id") or ""),
        }
        result = execute(
            self.store,
            connector.id,
            {**filled, **{k: v for k, v in context.items() if v}},
            conversation_id=context["conversation_id"] or None,
            timeout=self.timeout,
        )
        if not result.success:
            return None
        phrases = LOOKUP_PHRASES.get(language, LOOKUP_PHRASES["en"])
        name = str((connector.live or connector.draft).get("name") or "")
        facts = _facts(result.data)
        if not facts:
            reply = _p(phrases.nothing.format(value=value))
        else:
            items = "".join(f"<li>{_html.escape(f, quote=False)}</li>" for f in facts)
            reply = _p(phrases.found.format(value=value)) + f"<ul>{items}</ul>"
        return LookupAnswer(name, value, reply, bool(facts), result)

    def _choose(
        self,
        words: set[str],
        values: list[str],
        user: dict[str, Any],
        analyzers: Sequence[Analyzer],
    ) -> tuple[Connector, dict[str, str], str] | None:
        audience = _AUDIENCE_OF_ROLE.get(str(user.get("role") or ""))
        best: tuple[int, Connector, dict[str, str], str] | None = None
        for connector in self.store.all():
            config = connector.live
            if config is None or connector.state != "live" or not config.get("direct_fin_usage"):
                continue
            audiences = config.get("audiences") or []
            if audience is not None and audiences and audience not in audiences:
                continue
            described = " ".join(
                [
                    str(config.get("name") or ""),
                    str(config.get("description") or ""),
                    *(str(i.get("description") or "") for i in config.get("data_inputs") or []),
                ]
            )
            shared = len(words & {w for analyze in analyzers for w in analyze(described)})
            if shared == 0:
                continue
            filled = _fill(config.get("data_inputs") or [], values)
            if filled is None:
                continue
            inputs, value = filled
            if best is None or shared > best[0]:
                best = (shared, connector, inputs, value)
        return None if best is None else (best[1], best[2], best[3])


def _fill(inputs: list[dict[str, Any]], values: list[str]) -> tuple[dict[str, str], str] | None:
    """The question's values given to the connector's free inputs (required first), and the
    first one given; None when a required input is left without one."""
    free = [i for i in inputs if i.get("name") not in CONTEXT_INPUTS]
    free.sort(key=lambda i: not i.get("required"))
    left = list(values)
    filled: dict[str, str] = {}
    for data_input in free:
        numeric = data_input.get("type") in ("integer", "decimal")
        pick = next((v for v in left if not numeric or _NUMBER_RE.match(v)), None)
        if pick is None:
            if data_input.get("required") and data_input.get("default_value") is None:
                return None
            continue
        left.remove(pick)
        filled[str(data_input["name"])] = pick.replace(",", ".") if numeric else pick
    if not filled:
        return None
    return filled, next(iter(filled.values()))


def _facts(data: Any) -> list[str]:
    """What a connector's JSON answer says, as short "Label: value" lines (none: nothing)."""
    if not isinstance(data, dict) or data.get("found") is False:
        return []
    lines: list[str] = []
    for key, value in data.items():
        if key in _BOOKKEEPING:
            continue
        _walk(_label(key), value, lines)
    return lines[:MAX_LISTED_FIELDS]


def _walk(label: str, value: Any, lines: list[str]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _walk(_label(key), inner, lines)
    elif isinstance(value, list):
        for item in value:
            _walk(label, item, lines)
    elif value is not None and value != "":
        lines.append(f"{label}: {value}")


def _label(key: str) -> str:
    return key.replace("_", " ").strip().capitalize() or key


def _p(text: str) -> str:
    return f"<p>{_html.escape(text, quote=False)}</p>"
