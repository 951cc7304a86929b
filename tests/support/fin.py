"""Building Fin API data in tests, as Fin would."""

from __future__ import annotations

import uuid
from typing import Any

from findesk.fin_api.client import FinApiClient


def unique(prefix: str = "obj") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class World:
    """Does what Fin does, through the Fin API, asserting that each call succeeds."""

    def __init__(self, api: FinApiClient, fin_agent_id: str) -> None:
        self.api = api
        self.fin_agent_id = fin_agent_id

    def user(self, **fields: Any) -> dict[str, Any]:
        reply = self.api.create_user(object_id=unique("u"), **{"name": "Jane Doe", **fields})
        assert reply.status == 201, reply.error
        return dict(reply.data)

    def open(self, user_id: str, body: str = "<p>Hi!</p>", **fields: Any) -> dict[str, Any]:
        """Create a conversation; the answer holds ``conversation`` and ``initial_message``."""
        reply = self.api.create_conversation(
            user_id=user_id,
            object_id=unique("c"),
            initial_message={
                "body": body,
                "author": {"id": user_id, "user_type": "end_user"},
                "object_id": unique("m"),
                "visibility": "public",
            },
            **fields,
        )
        assert reply.status == 201, reply.error
        return dict(reply.data)

    def conversation(
        self, user: dict[str, Any] | None = None, body: str = "<p>Hi!</p>", **fields: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        data = self.open((user or self.user())["id"], body, **fields)
        return data["conversation"], data["initial_message"]

    def _says(self, conversation_id: str, author: dict[str, str], body: str) -> dict[str, Any]:
        reply = self.api.create_message(
            conversation_id=conversation_id,
            body=body,
            author=author,
            visibility="public",
            object_id=unique("m"),
        )
        assert reply.status == 201, reply.error
        return dict(reply.data)

    def fin_says(self, conversation_id: str, body: str = "<p>Here is how.</p>") -> dict[str, Any]:
        return self._says(conversation_id, {"id": self.fin_agent_id, "user_type": "agent"}, body)

    def user_says(self, conversation_id: str, user_id: str, body: str) -> dict[str, Any]:
        return self._says(conversation_id, {"id": user_id, "user_type": "end_user"}, body)

    def update(self, conversation_id: str, **fields: Any) -> dict[str, Any]:
        reply = self.api.update_conversation(conversation_id, **fields)
        assert reply.status == 200, reply.error
        return dict(reply.data)

    def hand_over(self, conversation_id: str) -> dict[str, Any]:
        return self.update(conversation_id, assignee_id=None)
