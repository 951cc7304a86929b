"""Who is acting: Fin (through the Fin API), a human agent, or findesk itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Actor:
    kind: Literal["fin", "agent", "system"]
    agent_id: str | None = None

    @property
    def is_fin(self) -> bool:
        return self.kind == "fin"


FIN = Actor("fin")
SYSTEM = Actor("system")


def agent(agent_id: str) -> Actor:
    return Actor("agent", agent_id)
