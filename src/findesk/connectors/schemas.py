"""What findesk's lookups hand the connector sync: one definition per Data Connector."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class ConnectorDefinition:
    key: str  # stable local id (a lookup's id)
    name: str
    description: str
    http_method: str  # "get"
    url: str  # absolute, with {{input}} templates
    data_inputs: list[dict[str, Any]]  # Intercom's shape: name, type, description, required
    direct_fin_usage: bool
    audiences: list[str]
    mock_response: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        """The fields of the connector findesk manages, as sent to Intercom (headers apart:
        they carry a token minted for each create and are never compared)."""
        return {
            "name": self.name,
            "description": self.description,
            "http_method": self.http_method,
            "url": self.url,
            "data_inputs": [dict(item) for item in self.data_inputs],
            "direct_fin_usage": self.direct_fin_usage,
            "audiences": list(self.audiences),
            "mock_response": self.mock_response,
        }


DefinitionsFor = Callable[[Session], list[ConnectorDefinition]]
MintToken = Callable[[Session, str], str]  # (session, key) -> a fresh plain bearer token
