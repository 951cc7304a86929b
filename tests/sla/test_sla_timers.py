"""SLA timers with a frozen clock (each change's time is given to the SLA code through
``session.info[sla.NOW]``), on SQLite and PostgreSQL: first response, next response and
resolution; pauses that move the due time; breaches recorded once, with their escalation and
alert; re-evaluation on a change of priority or team."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from support.server import database_url
from support.sql import statements_sent

from findesk.agents.service import create_agent, ensure_fin_agent
from findesk.alerts.models import WebhookEndpoint
from findesk.conversations import service as conversations
from findesk.conversations.models import Conversation, ConversationEvent
from findesk.conversations.service import Author, NewMessage
from findesk.kit.actor import FIN, SYSTEM
from findesk.kit.actor import agent as agent_actor
from findesk.kit.db import Database
from findesk.kit.settings import get_settings
from findesk.kit.settings_in_use import using_settings
from findesk.kit.timeutil import as_utc
from findesk.migrations import upgrade
from findesk.notifier.models import OutboxEvent
from findesk.sla import service as sla
from findesk.sla.models import SlaPolicy, SlaTimer
from findesk.sla.schemas import PolicyIn
from findesk.teams import service as teams
from findesk.users.service import create_user

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)  # a Monday
MIN = timedelta(minutes=1)


@dataclass
class World:
    db: Database
    fin_id: str
    human_id: str
    user_id: str

    @contextmanager
    def at(self, now: datetime) -> Iterator[Session]:
        """A transaction whose changes happen at ``now`` for the SLA timers."""
        with self.db.transaction() as session:
            session.info[sla.NOW] = now
            yield session

    def fins(self, session: Session, **attributes: Any) -> str:
        """A conversation opened by Fin, which Fin answers."""
        conversation, _, _ = conversations.open_conversation(
            session,
            user_id=self.user_id,
            first=NewMessage(Author("end_user", self.user_id), "<p>Help</p>"),
            actor=FIN,
            assignee_id=self.fin_id,
            attributes=attributes or None,
        )
        return conversation.id

    def handed_over(self, now: datetime, **attributes: Any) -> str:
        """Opened by Fin, then handed over at ``now``."""
        with self.at(now) as session:
            conversation_id = self.fins(session, **attributes)
            conversations.hand_over(session, conversation_id, FIN)
            return conversation_id

    def reply(self, conversation_id: str, now: datetime) -> None:
        with self.at(now) as session:
            conversations.add_message(
                session,
                conversation_id,
                NewMessage(Author("agent", self.human_id), "<p>On it</p>"),
                agent_actor(self.human_id),
            )

    def user_writes(self, conversation_id: str, now: datetime) -> None:
        with self.at(now) as session:
            conversations.add_message(
                session,
                conversation_id,
                NewMessage(Author("end_user", self.user_id), "<p>And?</p>"),
                FIN,
            )

    def set_status(self, conversation_id: str, status: str, now: datetime) -> None:
        with self.at(now) as session:
            conversation = conversations.get_conversation(session, conversation_id)
            conversations.set_status(session, conversation, status, agent_actor(self.human_id))

    def timers(self, conversation_id: str) -> dict[str, SlaTimer]:
        with self.db.read_session() as session:
            found = {t.target: t for t in sla.timers(session, conversation_id)}
            for timer in found.values():
                session.expunge(timer)
            return found

    def due(self, conversation_id: str, target: str) -> datetime:
        return as_utc(self.timers(conversation_id)[target].due_at)

    def chip(self, conversation_id: str, now: datetime) -> sla.Chip | None:
        with self.db.read_session() as session:
            conversation = conversations.get_conversation(session, conversation_id)
            return sla.chip(session, conversation, now)

    def breaches(self, conversation_id: str) -> list[ConversationEvent]:
        with self.db.read_session() as session:
            found = list(
                session.scalars(
                    select(ConversationEvent).where(
                        ConversationEvent.conversation_id == conversation_id,
                        ConversationEvent.kind == "sla_breached",
                    )
                )
            )
            for event in found:
                session.expunge(event)
            return found

    def conversation(self, conversation_id: str) -> Conversation:
        with self.db.read_session() as session:
            found = session.get(Conversation, conversation_id)
            assert found is not None
            session.expunge(found)
            return found


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    url = database_url(request.param, request, tmp_path_factory.mktemp("sla"))
    upgrade(url)
    db = Database(url)
    with db.transaction() as session:
        fin_id = ensure_fin_agent(session, "fin@findesk.invalid").id
        human_id = create_agent(
            session, email=f"h-{uuid.uuid4().hex[:6]}@example.com", name="Hana"
        ).id
        user_id = create_user(session, object_id=None, name="Sam")[0].id
    yield World(db, fin_id, human_id, user_id)
    db.dispose()


@pytest.fixture
def policies(world: World) -> Iterator[list[str]]:
    """Each test writes its own policies (the list collects their ids); none is left, nor any
    timer."""
    made: list[str] = []
    yield made
    with world.db.transaction() as session:
        session.execute(delete(SlaPolicy))
        session.execute(delete(SlaTimer))  # (their conversations stay, with no SLA)
        session.execute(delete(WebhookEndpoint))


def policy(world: World, made: list[str], name: str, **fields: Any) -> str:
    with world.db.transaction() as session:
        found = sla.create_policy(session, PolicyIn(name=name, **fields))
        made.append(found.id)
        return found.id


def test_first_response_and_resolution_start_at_the_handover(
    world: World, policies: list[str]
) -> None:
    policy(world, policies, "Default", first_response_minutes=30, resolution_minutes=240)
    conversation_id = world.handed_over(T0)
    timers = world.timers(conversation_id)
    assert set(timers) == {"first_response", "resolution"}
    assert world.due(conversation_id, "first_response") == T0 + 30 * MIN
    assert world.due(conversation_id, "resolution") == T0 + 240 * MIN

    chip = world.chip(conversation_id, T0 + 18 * MIN)
    assert chip is not None and (chip.state, chip.text) == ("ok", "First response in 12 min")
    chip = world.chip(conversation_id, T0 + 25 * MIN)
    assert chip is not None and (chip.state, chip.text) == ("due", "First response in 5 min")
    chip = world.chip(conversation_id, T0 + 35 * MIN)
    assert chip is not None and (chip.state, chip.text) == (
        "breached",
        "First response overdue 5 min",
    )

    # A human's first public reply meets it; the resolution waits on the customer now.
    world.reply(conversation_id, T0 + 10 * MIN)
    timers = world.timers(conversation_id)
    assert as_utc(timers["first_response"].met_at or T0) == T0 + 10 * MIN
    assert timers["resolution"].paused_at is not None
    chip = world.chip(conversation_id, T0 + 11 * MIN)
    assert chip is not None and (chip.state, chip.text) == ("paused", "Paused")
    # Met and paused timers never breach.
    assert sla.breach_due(world.db, T0 + 10 * 60 * MIN) == 0
    assert world.breaches(conversation_id) == []

    # Resolved: met; no chip on a resolved conversation.
    world.set_status(conversation_id, "resolved", T0 + 20 * MIN)
    assert world.timers(conversation_id)["resolution"].met_at is not None
    assert world.chip(conversation_id, T0 + 21 * MIN) is None


def test_next_response_starts_when_the_end_user_writes_after_a_human_reply(
    world: World, policies: list[str]
) -> None:
    policy(world, policies, "Default", first_response_minutes=30, next_response_minutes=15)
    conversation_id = world.handed_over(T0)
    world.user_writes(conversation_id, T0 + 2 * MIN)  # before any human reply: not "next"
    assert "next_response" not in world.timers(conversation_id)
    world.reply(conversation_id, T0 + 5 * MIN)
    world.user_writes(conversation_id, T0 + 60 * MIN)
    assert world.due(conversation_id, "next_response") == T0 + 75 * MIN
    world.user_writes(conversation_id, T0 + 62 * MIN)  # again: the same target runs on
    assert world.due(conversation_id, "next_response") == T0 + 75 * MIN
    chip = world.chip(conversation_id, T0 + 70 * MIN)
    assert chip is not None and (chip.state, chip.text) == ("ok", "Next response in 5 min")

    world.reply(conversation_id, T0 + 70 * MIN)
    assert as_utc(world.timers(conversation_id)["next_response"].met_at or T0) == T0 + 70 * MIN
    assert sla.breach_due(world.db, T0 + 100 * MIN) == 0

    # The next message after that reply starts it again, and missing it is a breach.
    world.user_writes(conversation_id, T0 + 80 * MIN)
    assert world.due(conversation_id, "next_response") == T0 + 95 * MIN
    assert sla.breach_due(world.db, T0 + 94 * MIN) == 0
    assert sla.breach_due(world.db, T0 + 96 * MIN) == 1
    (breach,) = world.breaches(conversation_id)
    assert breach.to_value == "next_response"


def test_pauses_move_the_due_time_and_a_reopen_starts_the_resolution_again(
    world: World, policies: list[str]
) -> None:
    policy(world, policies, "Resolve in an hour", resolution_minutes=60)
    conversation_id = world.handed_over(T0)
    assert world.due(conversation_id, "resolution") == T0 + 60 * MIN

    # Waiting on the customer from +10 to +70 min: the due time moves by that hour.
    world.reply(conversation_id, T0 + 10 * MIN)
    assert sla.breach_due(world.db, T0 + 65 * MIN) == 0  # (paused: not a breach)
    world.user_writes(conversation_id, T0 + 70 * MIN)
    assert world.due(conversation_id, "resolution") == T0 + 120 * MIN

    # Snoozed from +80 to +100 min: twenty more.
    with world.at(T0 + 80 * MIN) as session:
        conversations.snooze(
            session, conversation_id, T0 + 10_000 * MIN, agent_actor(world.human_id)
        )
    assert world.timers(conversation_id)["resolution"].paused_at is not None
    with world.at(T0 + 100 * MIN) as session:
        conversations.snooze(session, conversation_id, None, agent_actor(world.human_id))
    assert world.due(conversation_id, "resolution") == T0 + 140 * MIN
    chip = world.chip(conversation_id, T0 + 110 * MIN)
    assert chip is not None and chip.text == "Resolution in 30 min"

    assert sla.breach_due(world.db, T0 + 139 * MIN) == 0
    world.set_status(conversation_id, "resolved", T0 + 130 * MIN)

    # Reopened by the end user: the resolution runs again from then.
    world.user_writes(conversation_id, T0 + 200 * MIN)
    timer = world.timers(conversation_id)["resolution"]
    assert timer.met_at is None
    assert as_utc(timer.due_at) == T0 + 260 * MIN
    # Resolved and reopened by an agent: again.
    world.set_status(conversation_id, "resolved", T0 + 210 * MIN)
    world.set_status(conversation_id, "open", T0 + 300 * MIN)
    assert world.due(conversation_id, "resolution") == T0 + 360 * MIN


def endpoint(world: World) -> None:
    with world.db.transaction() as session:
        session.add(
            WebhookEndpoint(
                id=f"whe_{uuid.uuid4().hex[:12]}",
                url="https://hooks.example.com/sla",
                events=["sla.breached"],
                format="json",
                secret_nonce="0" * 32,
                active=True,
            )
        )


def breach_webhooks(world: World, conversation_id: str) -> list[OutboxEvent]:
    with world.db.read_session() as session:
        rows = [
            e
            for e in session.scalars(
                select(OutboxEvent).where(OutboxEvent.reason == "sla.breached")
            )
            if conversation_id in e.payload
        ]
        for row in rows:
            session.expunge(row)
        return rows


def test_a_breach_is_recorded_once_with_its_alert_even_by_concurrent_checkers(
    world: World, policies: list[str]
) -> None:
    endpoint(world)
    policy_id = policy(world, policies, "Fast", first_response_minutes=5)
    conversation_id = world.handed_over(T0)
    due = world.due(conversation_id, "first_response")
    assert sla.check(world.db, due - timedelta(seconds=1)) == 0

    # Two checkers at once, past the advisory lock: each judges the timer again with its rows
    # locked, so only one records the breach.
    start = threading.Barrier(2)
    counts: list[int] = []

    def checker() -> None:
        start.wait()
        counts.append(sla.breach_due(world.db, due + MIN))

    threads = [threading.Thread(target=checker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(counts) == [0, 1]
    assert sla.check(world.db, due + 10 * MIN) == 0  # and never again

    (breach,) = world.breaches(conversation_id)
    assert (breach.actor, breach.to_value) == ("system", "first_response")
    assert breach.detail["policy_id"] == policy_id
    assert breach.detail["policy_name"] == "Fast"
    assert breach.detail["escalation"] == "notify"
    assert as_utc(world.timers(conversation_id)["first_response"].breached_at or T0) == due + MIN
    (webhook,) = breach_webhooks(world, conversation_id)
    assert '"target": "first_response"' in webhook.payload
    chip = world.chip(conversation_id, due + 2 * MIN)
    assert chip is not None and chip.state == "breached"

    # A late reply still meets it (the chip goes); the breach stays in the history.
    world.reply(conversation_id, due + 3 * MIN)
    assert world.chip(conversation_id, due + 4 * MIN) is None
    assert len(world.breaches(conversation_id)) == 1


def test_two_checks_at_once_breach_many_timers_exactly_once(
    world: World, policies: list[str]
) -> None:
    policy(world, policies, "Fast", first_response_minutes=5, resolution_minutes=6)
    conversation_ids = [world.handed_over(T0) for _ in range(6)]
    start = threading.Barrier(2)
    counts: list[int] = []

    def checker(via_lock: bool) -> None:
        start.wait()
        if via_lock:
            counts.append(sla.check(world.db, T0 + 30 * MIN))
        else:
            counts.append(sla.breach_due(world.db, T0 + 30 * MIN))

    threads = [threading.Thread(target=checker, args=(i == 0,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(counts) == 12
    for conversation_id in conversation_ids:
        assert sorted(b.to_value for b in world.breaches(conversation_id)) == [
            "first_response",
            "resolution",
        ]


def test_raise_priority_escalation_and_reevaluation(world: World, policies: list[str]) -> None:
    policy(
        world,
        policies,
        "Normal",
        priority="normal",
        first_response_minutes=10,
        resolution_minutes=600,
        escalation="raise_priority",
    )
    policy(
        world, policies, "High", priority="HIGH", first_response_minutes=5, resolution_minutes=60
    )
    conversation_id = world.handed_over(T0, priority="Normal")
    assert world.timers(conversation_id)["resolution"].policy_name == "Normal"
    assert sla.check(world.db, T0 + 11 * MIN) == 1

    # One step up, by findesk; the timers still running follow the "High" policy now.
    row = world.conversation(conversation_id)
    assert row.attributes["priority"] == "high"
    with world.db.read_session() as session:
        kinds = [
            (e.kind, e.actor, e.from_value, e.to_value)
            for e in session.scalars(
                select(ConversationEvent)
                .where(ConversationEvent.conversation_id == conversation_id)
                .order_by(ConversationEvent.id)
            )
        ]
    at = kinds.index(("sla_breached", "system", None, "first_response"))
    assert ("priority", "system", "Normal", "high") in kinds[at:]
    timers = world.timers(conversation_id)
    assert timers["first_response"].policy_name == "Normal"  # breached: as it was
    assert timers["resolution"].policy_name == "High"
    assert as_utc(timers["resolution"].due_at) == T0 + 60 * MIN

    # A change of priority by anyone re-evaluates too: "low" matches no policy, so the
    # running timers stop.
    with world.at(T0 + 20 * MIN) as session:
        conversation = conversations.get_conversation(session, conversation_id)
        conversations.merge_conversation_attributes(
            session, conversation, {"priority": "low"}, SYSTEM
        )
    assert set(world.timers(conversation_id)) == {"first_response"}
    assert sla.raised("urgent") is None and sla.raised(None) == "high"


def test_reassign_escalation_moves_to_the_team_and_its_online_member(
    world: World, policies: list[str]
) -> None:
    with world.db.transaction() as session:
        other = create_agent(session, email=f"o-{uuid.uuid4().hex[:6]}@example.com", name="Oli")
        escalations = teams.create_team(
            session, name=f"Escalations {uuid.uuid4().hex[:6]}", member_ids=[other.id]
        )
        teams.set_presence(session, other.id, "online")
        team_id, other_id, other_email = escalations.id, other.id, other.email
    policy(
        world,
        policies,
        "Any",
        first_response_minutes=15,
        escalation="reassign",
        escalation_team_id=team_id,
    )
    conversation_id = world.handed_over(T0)
    with using_settings(get_settings().model_copy(update={"smtp_host": "127.0.0.1"})):
        assert sla.check(world.db, T0 + 16 * MIN) == 1
    row = world.conversation(conversation_id)
    assert (row.team_id, row.assignee_id) == (team_id, other_id)
    # The alert's email goes to the one it was given to.
    with world.db.read_session() as session:
        emails = [
            json.loads(e.payload)
            for e in session.scalars(select(OutboxEvent).where(OutboxEvent.kind == "email"))
        ]
    (email,) = [e for e in emails if e["subject"].startswith("SLA breached")]
    assert email["to"] == other_email
    assert "first_response" in email["text"]
    with world.db.read_session() as session:
        kinds = [
            (e.kind, e.to_value)
            for e in session.scalars(
                select(ConversationEvent)
                .where(ConversationEvent.conversation_id == conversation_id)
                .order_by(ConversationEvent.id)
            )
        ]
    assert kinds[-3:] == [
        ("sla_breached", "first_response"),
        ("team", team_id),
        ("assigned", other_id),
    ]
    with world.db.read_session() as session:
        timers = session.scalar(
            select(func.count())
            .select_from(SlaTimer)
            .where(SlaTimer.conversation_id == conversation_id)
        )
    assert timers == 1


def test_no_policy_no_timer_and_a_create_with_nobody_assigned_starts_one(
    world: World, policies: list[str]
) -> None:
    conversation_id = world.handed_over(T0)
    assert world.timers(conversation_id) == {}
    assert world.chip(conversation_id, T0) is None
    policy(world, policies, "Default", first_response_minutes=30)
    with world.at(T0) as session:
        conversation, _, _ = conversations.open_conversation(
            session,
            user_id=world.user_id,
            first=NewMessage(Author("end_user", world.user_id), "<p>Hi</p>"),
            actor=FIN,
        )
        created = conversation.id
    assert world.due(created, "first_response") == T0 + 30 * MIN


def test_the_messages_of_a_conversation_never_timed_look_for_no_timers(
    world: World, policies: list[str]
) -> None:
    """Most conversations are Fin's alone: an end user's message there reads no SLA timer. Once
    a policy timed the conversation, its messages read them (and move them) as before."""
    policy(world, policies, "Default", first_response_minutes=30, next_response_minutes=15)
    with world.at(T0) as session:
        fins = world.fins(session)
    with statements_sent(world.db.engine) as sent:
        world.user_writes(fins, T0 + MIN)
    assert sent and not [s for s, _ in sent if "sla_timers" in s]
    assert not world.conversation(fins).sla_timed

    with world.at(T0 + 2 * MIN) as session:
        conversations.hand_over(session, fins, FIN)
    assert world.conversation(fins).sla_timed
    world.reply(fins, T0 + 3 * MIN)
    with statements_sent(world.db.engine) as sent:
        world.user_writes(fins, T0 + 10 * MIN)
    assert [s for s, _ in sent if "sla_timers" in s]
    assert world.due(fins, "next_response") == T0 + 25 * MIN


def test_due_times_count_the_team_business_hours_and_skip_the_closed_night(
    world: World, policies: list[str]
) -> None:
    weekdays = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    with world.db.transaction() as session:
        team = teams.create_team(
            session,
            name=f"Paris {uuid.uuid4().hex[:6]}",
            timezone="Europe/Paris",
            business_hours=weekdays,
        )
        team_id = team.id
    policy(world, policies, "Paris", team_id=team_id, first_response_minutes=60)
    # Monday 16:30 in Paris (15:30 UTC): half an hour today, the other half from 09:00 on
    # Tuesday (08:00 UTC): due 09:30 Paris, after the closed night.
    handed = datetime(2026, 12, 7, 15, 30, tzinfo=UTC)
    with world.at(handed) as session:
        conversation, _, _ = conversations.open_conversation(
            session,
            user_id=world.user_id,
            first=NewMessage(Author("end_user", world.user_id), "<p>Help</p>"),
            actor=FIN,
            assignee_id=world.fin_id,
        )
        conversation.team_id = team_id
        conversations.hand_over(session, conversation.id, FIN)
        conversation_id = conversation.id
    assert world.due(conversation_id, "first_response") == datetime(2026, 12, 8, 8, 30, tzinfo=UTC)
    sla.breach_due(world.db, datetime(2026, 12, 8, 7, 0, tzinfo=UTC))  # the night: not yet
    assert world.breaches(conversation_id) == []
    sla.breach_due(world.db, datetime(2026, 12, 8, 8, 31, tzinfo=UTC))
    assert [b.to_value for b in world.breaches(conversation_id)] == ["first_response"]
