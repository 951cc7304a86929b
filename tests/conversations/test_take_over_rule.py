"""The take-over rule under interleavings and races: Fin never undoes a human's take-over, and
the durable history replays to the conversation's current owner (SQLite and PostgreSQL).

A model-based test drives the domain actions as Fin's sync runs and human agents interleave
them: a sync run reads the conversation, and its closing update carries the assignee it read,
however stale by then. A second test sends the same race as real concurrent HTTP requests.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from support.server import LiveServer, database_url

from findesk.agents.service import create_agent, ensure_fin_agent
from findesk.conversations import history
from findesk.conversations import service as conversations
from findesk.conversations.models import Message
from findesk.conversations.service import Author, NewMessage
from findesk.kit.actor import FIN
from findesk.kit.actor import agent as agent_actor
from findesk.kit.db import Database
from findesk.migrations import upgrade
from findesk.users.service import create_user

CONVERSATIONS = 3
HUMANS = 3


@dataclass
class World:
    db: Database
    fin_id: str
    humans: list[str]
    user_id: str


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    url = database_url(request.param, request, tmp_path_factory.mktemp("db"))
    upgrade(url)
    db = Database(url)
    with db.transaction() as session:
        fin_id = ensure_fin_agent(session, "fin@findesk.invalid").id
        humans = [
            create_agent(session, email=f"h{i}-{uuid.uuid4().hex[:6]}@example.com", name=f"H{i}").id
            for i in range(HUMANS)
        ]
        user, _ = create_user(session, object_id=None, name="End User")
        user_id = user.id
    yield World(db, fin_id, humans, user_id)
    db.dispose()


def _fin_message(world: World, body: str) -> NewMessage:
    return NewMessage(author=Author("agent", world.fin_id), body=f"<p>{body}</p>")


def _machine(world: World) -> type[RuleBasedStateMachine]:
    db = world.db
    conversation_index = st.integers(0, CONVERSATIONS - 1)
    human_index = st.integers(0, HUMANS - 1)

    class TakeOverRace(RuleBasedStateMachine):
        """The model: who owns each conversation. A sync run of Fin is a read remembered until
        its closing update, which carries the stale assignee it read."""

        @initialize()
        def open_conversations(self) -> None:
            self.ids: list[str] = []
            self.owner: list[str | None] = []
            self.runs: dict[int, str | None] = {}  # conversation index -> assignee Fin read
            with db.transaction() as session:
                for _ in range(CONVERSATIONS):
                    conversation, _, _ = conversations.open_conversation(
                        session,
                        user_id=world.user_id,
                        first=NewMessage(
                            author=Author("end_user", world.user_id), body="<p>Hi</p>"
                        ),
                        actor=FIN,
                        assignee_id=world.fin_id,
                    )
                    self.ids.append(conversation.id)
                    self.owner.append(world.fin_id)

        def _is_human(self, agent_id: str | None) -> bool:
            return agent_id is not None and agent_id != world.fin_id

        # --- Fin ---

        @rule(c=conversation_index)
        def fin_reads(self, c: int) -> None:
            with db.read_session() as session:
                self.runs[c] = conversations.get_conversation(session, self.ids[c]).assignee_id

        @precondition(lambda self: bool(self.runs))
        @rule(data=st.data(), hand_over=st.booleans())
        def fin_closes_its_run(self, data: st.DataObject, hand_over: bool) -> None:
            """The closing update: the assignee Fin read (or null to hand over), stale or not,
            a title, and a message in the same run; the rest of the update always applies."""
            c = data.draw(st.sampled_from(sorted(self.runs)))
            read = self.runs.pop(c)
            requested = None if hand_over else read
            title = f"run {uuid.uuid4().hex[:6]}"
            with db.transaction() as session:
                conversations.add_message(session, self.ids[c], _fin_message(world, title), FIN)
                after = conversations.update_conversation(
                    session, self.ids[c], {"assignee_id": requested, "title": title}, FIN
                )
                assert after.title == title
            if not self._is_human(self.owner[c]):
                self.owner[c] = requested

        @rule(c=conversation_index)
        def fin_hands_over_when_it_owns(self, c: int) -> None:
            with db.transaction() as session:
                conversations.update_conversation(session, self.ids[c], {"assignee_id": None}, FIN)
            if not self._is_human(self.owner[c]):
                self.owner[c] = None

        # --- humans ---

        @rule(c=conversation_index, h=human_index)
        def human_takes_over(self, c: int, h: int) -> None:
            agent_id = world.humans[h]
            with db.transaction() as session:
                conversations.take_over(session, self.ids[c], agent_id, agent_actor(agent_id))
            self.owner[c] = agent_id

        @rule(c=conversation_index, h=human_index)
        def human_replies(self, c: int, h: int) -> None:
            agent_id = world.humans[h]
            with db.transaction() as session:
                conversations.add_message(
                    session,
                    self.ids[c],
                    NewMessage(author=Author("agent", agent_id), body="<p>On it</p>"),
                    agent_actor(agent_id),
                )
            if not self._is_human(self.owner[c]):
                self.owner[c] = agent_id

        @rule(c=conversation_index, h=human_index)
        def human_hands_back(self, c: int, h: int) -> None:
            agent_id = world.humans[h]
            with db.transaction() as session:
                conversations.hand_back_to_fin(session, self.ids[c], agent_actor(agent_id))
            self.owner[c] = world.fin_id

        # --- what must always hold ---

        @invariant()
        def owners_match_the_model_and_the_history(self) -> None:
            if not hasattr(self, "ids"):
                return
            with db.read_session() as session:
                for c, conversation_id in enumerate(self.ids):
                    actual = conversations.get_conversation(session, conversation_id).assignee_id
                    # A human's take-over is never undone by a Fin call.
                    assert actual == self.owner[c]
                    assert history.owner_after(history.events(session, conversation_id)) == actual

    return TakeOverRace


def test_fin_never_undoes_a_human_take_over(world: World) -> None:
    # 60 runs of up to 50 steps: thousands of interleaved steps on each backend.
    run_state_machine_as_test(
        _machine(world),
        settings=settings(
            max_examples=60,
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_ignored_assignments_are_in_the_history_and_fin_messages_after_take_over_are_marked(
    world: World,
) -> None:
    human = world.humans[0]
    with world.db.transaction() as session:
        conversation, _, _ = conversations.open_conversation(
            session,
            user_id=world.user_id,
            first=NewMessage(author=Author("end_user", world.user_id), body="<p>Hello</p>"),
            actor=FIN,
            assignee_id=world.fin_id,
        )
        cid = conversation.id
    with world.db.transaction() as session:
        conversations.take_over(session, cid, human, agent_actor(human))
    with world.db.transaction() as session:
        late, _ = conversations.add_message(session, cid, _fin_message(world, "late"), FIN)
        conversations.update_conversation(
            session, cid, {"assignee_id": world.fin_id, "tags": ["billing"]}, FIN
        )
        late_id = late.id
    with world.db.read_session() as session:
        conversation = conversations.get_conversation(session, cid)
        assert conversation.assignee_id == human
        assert conversation.tags == ["billing"]  # the rest of Fin's update applied
        assert conversation.taken_over_at is not None
        assert session.get(Message, late.seq).after_take_over is True  # type: ignore[union-attr]
        kinds = [(e.kind, e.actor) for e in history.events(session, cid)]
        assert kinds == [
            ("created", "fin"),
            ("take_over", "agent"),
            ("tags", "fin"),
            ("assignment_ignored", "fin"),
        ]
        ignored = history.events(session, cid)[-1]
        assert ignored.detail == {"requested": world.fin_id, "owner": "human"}
        assert ignored.from_value == ignored.to_value == human
    assert late_id


# --- the same race over HTTP, concurrently ----------------------------------------------------


def test_concurrent_stale_fin_updates_never_take_the_conversation_back(server: LiveServer) -> None:
    """Many conversations; on each, Fin's stale closing update and a human's take-over are
    sent at the same moment, from separate connections. The human always ends up the owner."""
    fin_world = server.fin_world()
    agent = server.agent_http(f"racer-{uuid.uuid4().hex[:6]}@example.com", "Racer")
    fin_http = httpx.Client(
        base_url=f"{server.base_url}/api/fin",
        headers={"Authorization": f"Bearer {server.fin_token()}"},
        timeout=60,
    )
    ids = [fin_world.conversation()[0]["id"] for _ in range(12)]
    try:
        for cid in ids:
            barrier = threading.Barrier(3)

            def fin_update(cid: str = cid, barrier: threading.Barrier = barrier) -> int:
                barrier.wait()
                response = fin_http.put(
                    "/conversation",
                    json={"conversation_id": cid, "assignee_id": server.fin_agent_id},
                )
                return response.status_code

            def take_over(cid: str = cid, barrier: threading.Barrier = barrier) -> int:
                barrier.wait()
                return agent.post(f"/conversations/{cid}/take-over").status_code

            with ThreadPoolExecutor(3) as pool:
                futures = [pool.submit(fin_update), pool.submit(take_over), pool.submit(fin_update)]
                assert [f.result() for f in futures] == [200, 200, 200]
            detail = agent.get(f"/conversations/{cid}").json()["conversation"]
            assert detail["assignee"]["id"] == agent.agent_id  # type: ignore[attr-defined]
            events = agent.get(f"/conversations/{cid}/history").json()["items"]
            assert history_owner(events) == agent.agent_id  # type: ignore[attr-defined]
    finally:
        fin_http.close()
        agent.close()


def history_owner(events: list[dict[str, object]]) -> object:
    owner: object = None
    for event in events:
        if event["kind"] == "created":
            owner = event["to_value"]["assignee_id"]  # type: ignore[index]
        elif event["kind"] in ("handover", "take_over", "hand_back", "assigned"):
            owner = event["to_value"]
    return owner
