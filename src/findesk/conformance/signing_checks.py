"""Request signing checks (spec 5), run when the suite is given the helpdesk's signing secret.

Every Fin API call the suite makes is signed (``Config.signing_secret``). These checks send
calls that are not signed, signed with another key, or signed more than five minutes ago: each
must be refused with 401 (required), and a refused write must change nothing (re-read). A
signed write sent again with the very same signature is refused too (recommended: findesk's
choice, the contract is silent), while a signed read may be repeated (recommended).
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from findesk.conformance.checks import (
    RECOMMENDED,
    Context,
    Skipped,
    check,
    expect,
    expect_status,
    unique,
)
from findesk.conformance.signer import SuiteSigner
from findesk.fin_api.client import FinApiClient, Reply

STALE_SECONDS = 6 * 60 + 40  # more than the five minutes spec 5 allows, with room for skew
WRONG_SECRET = "not-the-signing-secret-" + "x" * 16


def _secret(ctx: Context) -> str:
    secret = ctx.config.signing_secret
    if secret is None:
        raise Skipped("needs --signing-secret (the key Fin signs with): signing is not checked")
    return secret


def _api(ctx: Context, auth: httpx.Auth | None) -> FinApiClient:
    """The Fin API with a valid token, signed by ``auth`` (None: not signed)."""
    return ctx.api_with({"Authorization": f"Bearer {ctx.token}"}, auth=auth)


def _state(ctx: Context, cid: str) -> tuple[Any, Any]:
    """The conversation and its messages as the helpdesk shows them (properly signed)."""
    conversation = ctx.api.get_conversation(cid)
    expect_status(conversation, 200, what="re-read of the conversation")
    messages = ctx.api.get_messages(cid)
    expect_status(messages, 200, what="re-read of the messages")
    return conversation.data, messages.data


def _refused(ctx: Context, api: FinApiClient, what: str) -> None:
    """A read, an update and a create sent through ``api`` are all 401; nothing changed."""
    conversation, _ = ctx.start_conversation()
    cid = str(conversation["id"])
    before = _state(ctx, cid)
    read = api.get_conversation(cid)
    expect_status(read, 401, what=f"a read {what}")
    update = api.update_conversation(cid, title=unique("refused"), status="resolved")
    expect_status(update, 401, what=f"an update {what}")
    created = api.create_message(
        conversation_id=conversation["id"],
        message_type="comment",
        body="<p>Refused</p>",
        author={"id": conversation["user"]["id"], "user_type": "end_user"},
        visibility="public",
        object_id=unique("m"),
        attachments=[],
    )
    expect_status(created, 401, what=f"a message {what}")
    after = _state(ctx, cid)
    expect(
        after[0] == before[0],
        f"the refused update {what} changed the conversation",
        ctx.api.get_conversation(cid),
    )
    expect(
        after[1] == before[1],
        f"the refused message {what} was added",
        ctx.api.get_messages(cid),
    )


@check("signing.unsigned", "a call without the signature headers is 401; nothing changes")
def signing_unsigned(ctx: Context) -> None:
    _secret(ctx)
    _refused(ctx, _api(ctx, None), "without a signature")


@check("signing.bad_signature", "a call signed with another key is 401; nothing changes")
def signing_bad_signature(ctx: Context) -> None:
    _secret(ctx)
    signer = SuiteSigner(WRONG_SECRET, ctx.config.signature_scheme)
    _refused(ctx, _api(ctx, signer), "with a wrong signature")


@check(
    "signing.stale_timestamp",
    "a call signed more than 5 minutes ago is 401; nothing changes",
)
def signing_stale_timestamp(ctx: Context) -> None:
    signer = SuiteSigner(_secret(ctx), ctx.config.signature_scheme, offset=-STALE_SECONDS)
    _refused(ctx, _api(ctx, signer), f"signed {STALE_SECONDS} s ago")


def _replayer(ctx: Context) -> FinApiClient:
    """Signs every call with one timestamp: the same call twice is the same signature."""
    fixed = int(time.time())
    return _api(ctx, SuiteSigner(_secret(ctx), ctx.config.signature_scheme, fixed=fixed))


@check(
    "signing.replayed_write",
    "a signed update sent again with the same signature is refused and undoes nothing",
    level=RECOMMENDED,
)
def signing_replayed_write(ctx: Context) -> None:
    replayer = _replayer(ctx)
    conversation, _ = ctx.start_conversation()
    cid = str(conversation["id"])
    first = replayer.update_conversation(cid, title="Captured", status="resolved")
    expect_status(first, 200, what="the signed update")
    later = ctx.api.update_conversation(cid, title="Later", status="open")
    expect_status(later, 200, what="a later update")
    before = _state(ctx, cid)
    again = replayer.update_conversation(cid, title="Captured", status="resolved")
    _expect_refused(again)
    after = _state(ctx, cid)
    expect(
        after[0] == before[0],
        "the replayed update changed the conversation back",
        ctx.api.get_conversation(cid),
    )


def _expect_refused(reply: Reply) -> None:
    expect(
        400 <= reply.status < 500,
        f"the same signature again: expected it refused (401), got {reply.status}",
        reply,
    )


@check(
    "signing.repeated_read",
    "a signed read may be sent again with the same signature",
    level=RECOMMENDED,
)
def signing_repeated_read(ctx: Context) -> None:
    replayer = _replayer(ctx)
    conversation, _ = ctx.start_conversation()
    cid = str(conversation["id"])
    for attempt in ("first", "repeated"):
        reply = replayer.get_conversation(cid)
        expect_status(reply, 200, what=f"the {attempt} signed read")
