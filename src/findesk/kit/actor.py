"""Who is acting: Fin (through the Fin API), a human agent, findesk itself, or the end user
(in findesk's own chat, where they act on findesk directly)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Actor:
    kind: Literal["fin", "agent", "system", "user"]
    agent_id: str | None = None

    @property
    def is_fin(self) -> bool:
        return self.kind == "fin"


FIN = Actor("fin")
SYSTEM = Actor("system")
END_USER = Actor("user")


def agent(agent_id: str) -> Actor:
    return Actor("agent", agent_id)
