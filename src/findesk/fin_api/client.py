"""A client of the Fin Custom Helpdesk API that calls a helpdesk as Fin does, in either variant.

Used by the tests, the benchmarks and the Fin emulator. Answers are normalised: ``data`` is the
payload (unwrapped from ``{data, error}`` in the posts-only variant) and ``error`` the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx

Variant = Literal["rest", "posts-only"]


@dataclass
class Reply:
    status: int
    data: Any
    error: Any
    response: httpx.Response

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class FinApiClient:
    """``http`` carries the base URL of the Fin API (e.g. ``…/api/fin``) and the bearer token."""

    def __init__(self, http: httpx.Client, variant: Variant = "rest") -> None:
        self.http = http
        self.variant = variant

    def _call(
        self, rest_method: str, rest_path: str, operation: str, payload: dict[str, Any]
    ) -> Reply:
        if self.variant == "posts-only":
            response = self.http.post(f"/{operation}", json=payload)
        elif rest_method == "GET":
            params = {k: v for k, v in payload.items() if v is not None}
            response = self.http.get(rest_path, params=params)
        else:
            response = self.http.request(rest_method, rest_path, json=payload)
        return self.reply(response)

    def reply(self, response: httpx.Response) -> Reply:
        try:
            body = response.json()
        except ValueError:
            body = None
        if self.variant == "posts-only" and isinstance(body, dict) and "data" in body:
            return Reply(response.status_code, body.get("data"), body.get("error"), response)
        if response.is_success:
            return Reply(response.status_code, body, None, response)
        return Reply(response.status_code, None, body, response)

    def get_user(self, user_id: str) -> Reply:
        return self._call("GET", "/user", "get_user", {"user_id": user_id})

    def create_user(self, **fields: Any) -> Reply:
        return self._call("POST", "/user", "create_user", fields)

    def update_user(self, user_id: str, **fields: Any) -> Reply:
        return self._call("PUT", "/user", "update_user", {"user_id": user_id, **fields})

    def get_agents(self) -> Reply:
        return self._call("GET", "/agents", "get_agents", {})

    def get_conversation(self, conversation_id: str) -> Reply:
        return self._call(
            "GET", "/conversation", "get_conversation", {"conversation_id": conversation_id}
        )

    def create_conversation(self, **fields: Any) -> Reply:
        return self._call("POST", "/conversation", "create_conversation", fields)

    def update_conversation(self, conversation_id: str, **fields: Any) -> Reply:
        payload = {"conversation_id": conversation_id, **fields}
        return self._call("PUT", "/conversation", "update_conversation", payload)

    def get_messages(self, conversation_id: str, after_id: str | None = None) -> Reply:
        payload: dict[str, Any] = {"conversation_id": conversation_id}
        if after_id is not None:
            payload["after_id"] = after_id
        return self._call("GET", "/messages", "get_messages", payload)

    def create_message(self, **fields: Any) -> Reply:
        return self._call("POST", "/messages", "create_message", fields)
