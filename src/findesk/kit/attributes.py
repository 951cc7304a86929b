"""Attributes (free-form JSON objects on users and conversations)."""

from __future__ import annotations

from typing import Any

from findesk.kit.text import ATTRIBUTE_KEY_MAX, invalid, text_problem


def check_attribute_keys(attributes: dict[str, Any] | None) -> None:
    """Refuse (``Invalid``) an attribute whose name breaks the rules of one-line text
    (``kit.text``); names are kept as sent, values are free-form JSON."""
    for key in attributes or {}:
        problem = text_problem(key)
        if problem is None and len(key) > ATTRIBUTE_KEY_MAX:
            problem = f"must be at most {ATTRIBUTE_KEY_MAX} characters (it has {len(key)})"
        if problem is not None:
            raise invalid(f"An attribute's name {problem}.", field="attributes")


def merge_attributes(current: dict[str, Any], changes: dict[str, Any] | None) -> dict[str, Any]:
    """Merge key by key; a null value removes the key (spec 4.6)."""
    merged = dict(current)
    for key, value in (changes or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def drop_nulls(attributes: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in attributes.items() if value is not None}
