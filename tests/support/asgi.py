"""Small pieces for ASGI wrappers in tests that look at a request's body before the app does
(the conformance tests' broken helpdesks): read it whole, then hand the app the same body."""

from __future__ import annotations

from starlette.types import Message, Receive


async def read_body(receive: Receive) -> bytes:
    """The request's whole body."""
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def replayed(body: bytes, then: Receive | None = None) -> Receive:
    """A ``receive`` that gives ``body`` once, then what ``then`` gives (a disconnect when
    there is none)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await then() if then is not None else {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
