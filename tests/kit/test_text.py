"""The rules for text (``kit.text``) that every way in shares: what is refused, what is cleaned."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from findesk.kit.errors import Invalid
from findesk.kit.html import sanitize
from findesk.kit.text import (
    NAME_MAX,
    TEXT_PATTERN,
    AttributesIn,
    NameText,
    clean_optional,
    clean_text,
)

BAD = {
    "NUL": "Ada\x00Lovelace",
    "escape sequence": "Ada \x1b[31mred",
    "backspace": "Ada\x08",
    "vertical tab": "Ada\x0bL",
    "DEL": "Ada\x7f",
    "lone surrogate": "Ada \udcff",  # an undecodable byte of a command-line argument
}


@pytest.mark.parametrize("value", BAD.values(), ids=BAD.keys())
@pytest.mark.parametrize("multiline", [False, True])
def test_control_characters_and_broken_unicode_are_refused(value: str, multiline: bool) -> None:
    with pytest.raises(Invalid) as refused:
        clean_text(value, field="name", max_length=NAME_MAX, label="The name", multiline=multiline)
    assert refused.value.detail.startswith("The name ")
    assert refused.value.errors == [{"field": "name", "message": refused.value.detail}]
    assert value not in refused.value.detail  # the message never echoes what was sent


def test_the_message_names_the_character() -> None:
    with pytest.raises(Invalid, match=r"control characters \(found U\+0000\)"):
        clean_text("a\x00b", field="name", max_length=10)


def test_a_one_line_field_is_trimmed_and_its_line_breaks_become_spaces() -> None:
    assert clean_text("  Ada\tLovelace\r\nthe first \n", field="n", max_length=50) == (
        "Ada Lovelace  the first"
    )
    assert clean_optional("   ", field="n", max_length=5) is None
    assert clean_optional(None, field="n", max_length=5) is None


def test_multi_line_text_is_kept_as_written() -> None:
    body = "  # Title\n\n\tcode\r\n"
    assert clean_text(body, field="body", max_length=100, multiline=True) == body


def test_the_limit_is_in_characters_after_trimming() -> None:
    at_limit = "é" * NAME_MAX
    assert clean_text(f"  {at_limit}  ", field="name", max_length=NAME_MAX) == at_limit
    with pytest.raises(Invalid, match=rf"at most {NAME_MAX} characters \(it has 100000\)"):
        clean_text("x" * 100_000, field="name", max_length=NAME_MAX)


class _Model(BaseModel):
    name: NameText | None = None
    attributes: AttributesIn | None = None


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "a\x00b"},
        {"name": "a\x1b"},
        {"name": "x" * (NAME_MAX + 1)},
        {"attributes": {"plan\x01": "pro"}},
        {"attributes": {"k" * 256: 1}},
    ],
)
def test_the_api_types_refuse_the_same(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        _Model.model_validate(fields)


def test_the_api_types_state_the_rules_in_their_schema() -> None:
    schema = _Model.model_json_schema()["properties"]
    name = schema["name"]["anyOf"][0]
    assert name == {"type": "string", "maxLength": NAME_MAX, "pattern": TEXT_PATTERN}
    keys = schema["attributes"]["anyOf"][0]["propertyNames"]
    assert keys == {"maxLength": 255, "pattern": TEXT_PATTERN}
    assert _Model(name="x" * NAME_MAX, attributes={"plan": "pro\x01"}).name == "x" * NAME_MAX


def test_html_loses_its_control_characters() -> None:
    assert sanitize("<p>a\x00b\x1bc\x7fd\te</p>") == "<p>abcd\te</p>"
