"""200 handovers from 4 concurrent emulated Fin sync runs, routed to one team: no agent ever
holds more than their capacity, no conversation is assigned twice, and what capacity does not
cover waits in the team's queue. Both backends (PostgreSQL: row locks; SQLite: one writer)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest
from routing_support import agent_client, go_online, ok
from sqlalchemy import func, select
from support.server import LiveServer, database_url

from findesk.conversations.models import Conversation, ConversationEvent

RUNS = 4
HANDOVERS_PER_RUN = 50
AGENTS = 5
CAPACITY = 30  # 5 x 30 = 150 of the 200: 50 wait in the team queue


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    url = database_url(request.param, request, tmp_path_factory.mktemp("routing-race"))
    live = LiveServer(url).start()
    yield live
    live.stop()


def test_200_concurrent_handovers_respect_capacity_and_assign_each_once(
    server: LiveServer,
) -> None:
    with ExitStack() as stack:
        admin = stack.enter_context(agent_client(server, "Admin", admin=True))
        agents = [stack.enter_context(agent_client(server, f"A{i}")) for i in range(AGENTS)]
        for agent in agents:
            go_online(agent)
        team = ok(
            admin.post(
                "/teams",
                json={
                    "name": "Billing",
                    "capacity_default": CAPACITY,
                    "member_ids": [a.agent_id for a in agents],  # type: ignore[attr-defined]
                },
            ),
            201,
        )["id"]
        ok(
            admin.post(
                "/routing-rules",
                json={
                    "name": "Billing",
                    "conditions": [
                        {"field": "conversation.issue_type", "op": "is", "value": "Billing"}
                    ],
                    "actions": {"team_id": team},
                },
            ),
            201,
        )
        # Each sync run: its own Fin token and connection, opening conversations for Fin and
        # handing them over; all four start together.
        worlds = [server.fin_world() for _ in range(RUNS)]
        opened = [
            [w.conversation(assignee_id=w.fin_agent_id)[0]["id"] for _ in range(HANDOVERS_PER_RUN)]
            for w in worlds
        ]
        start = threading.Barrier(RUNS)

        def sync_run(run: int) -> list[str | None]:
            world = worlds[run]
            start.wait()
            owners = []
            for conversation_id in opened[run]:
                answer = world.update(
                    conversation_id,
                    assignee_id=None,
                    tags=["Billing"],
                    attributes={"issue_type": "Billing"},
                )
                owners.append((answer.get("assignee") or {}).get("id"))
            return owners

        with ThreadPoolExecutor(RUNS) as pool:
            answered = [owner for owners in pool.map(sync_run, range(RUNS)) for owner in owners]

    everyone = [c for run in opened for c in run]
    member_ids = {a.agent_id for a in agents}  # type: ignore[attr-defined]
    with server.db.read_session() as session:
        rows = session.execute(
            select(Conversation.id, Conversation.assignee_id, Conversation.team_id).where(
                Conversation.id.in_(everyone)
            )
        ).all()
        assigned_events = Counter(
            session.scalars(
                select(ConversationEvent.conversation_id).where(
                    ConversationEvent.conversation_id.in_(everyone),
                    ConversationEvent.kind == "assigned",
                )
            )
        )
        open_per_agent = dict(
            session.execute(
                select(Conversation.assignee_id, func.count())
                .where(Conversation.status == "open", Conversation.assignee_id.in_(member_ids))
                .group_by(Conversation.assignee_id)
            ).all()
        )
    assert len(rows) == RUNS * HANDOVERS_PER_RUN
    assert {team_id for _, _, team_id in rows} == {team}
    owners = Counter(assignee for _, assignee, _ in rows)
    # Every agent filled to capacity, never beyond; the rest wait in the team's queue.
    assert {agent: owners[agent] for agent in member_ids} == dict.fromkeys(member_ids, CAPACITY)
    assert open_per_agent == dict.fromkeys(member_ids, CAPACITY)
    assert owners[None] == RUNS * HANDOVERS_PER_RUN - AGENTS * CAPACITY
    # Each conversation was given to a person at most once, and Fin was told who has it.
    assert max(assigned_events.values()) == 1
    assert sum(assigned_events.values()) == AGENTS * CAPACITY
    assert Counter(answered) == owners
