"""Building Fin API data in tests, as Fin would."""

from __future__ import annotations

import uuid
from typing import Any

from findesk.fin_api.client import FinApiClient


def unique(prefix: str = "obj") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class World:
    """Builds users and conversations through the Fin API, as Fin would."""

    def __init__(self, api: FinApiClient, fin_agent_id: str) -> None:
        self.api = api
        self.fin_agent_id = fin_agent_id

    def user(self, **fields: Any) -> dict[str, Any]:
        reply = self.api.create_user(object_id=unique("u"), name="Jane Doe", **fields)
        assert reply.status == 201, reply.error
        return dict(reply.data)

    def conversation(
        self, user: dict[str, Any] | None = None, body: str = "<p>Hi!</p>", **fields: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        user = user or self.user()
        reply = self.api.create_conversation(
            user_id=user["id"],
            object_id=unique("c"),
            initial_message={
                "body": body,
                "author": {"id": user["id"], "user_type": "end_user"},
                "object_id": unique("m"),
                "visibility": "public",
            },
            **fields,
        )
        assert reply.status == 201, reply.error
        return reply.data["conversation"], reply.data["initial_message"]

    def fin_says(self, conversation_id: str, body: str = "<p>Here is how.</p>") -> dict[str, Any]:
        reply = self.api.create_message(
            conversation_id=conversation_id,
            body=body,
            author={"id": self.fin_agent_id, "user_type": "agent"},
            visibility="public",
            object_id=unique("m"),
        )
        assert reply.status == 201, reply.error
        return dict(reply.data)
