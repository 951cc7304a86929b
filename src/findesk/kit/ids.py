"""Opaque, typed, non-sequential ids such as ``conv_5k2m…``."""

from __future__ import annotations

import secrets

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def new_id(prefix: str, length: int = 20) -> str:
    """A random id: 20 base32 characters carry 100 bits, enough never to collide or be guessed."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


USER = "usr"
AGENT = "agt"
CONVERSATION = "conv"
MESSAGE = "msg"
CLIENT = "fcl"
AGENT_TOKEN = "tok"  # noqa: S105 (a personal token's public id; its secret starts with fpt_)
ARTICLE = "art"
SAVED_REPLY = "rep"
MACRO = "mac"
TICKET = "tkt"
TICKET_TYPE = "tty"
TICKET_ATTRIBUTE = "tta"
