"""Attributes (free-form JSON objects on users and conversations)."""

from __future__ import annotations

from typing import Any


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
