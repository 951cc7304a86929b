"""Reading the inbox's admin forms: a field's text, a field's whole number (a clear message
naming the field when it is not one)."""

from __future__ import annotations

from starlette.datastructures import FormData

from findesk.kit.errors import Invalid


def text(form: FormData, name: str) -> str:
    """The field's text, stripped; empty when it is missing (or a file)."""
    return str(form.get(name) or "").strip()


def label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def whole_number(form: FormData, name: str) -> int | None:
    """The field as a whole number; None when it is empty."""
    raw = text(form, name)
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise Invalid(f"{label(name)} must be a whole number.") from None
