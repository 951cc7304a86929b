"""Each measure's definition on hand-built histories, with the answers worked out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from findesk.kit.settings import Settings
from findesk.reports.facts import (
    TAKEN_FROM_FIN,
    UNSPECIFIED_REASON,
    ConversationIn,
    EventIn,
    Fact,
    MessageIn,
    conversation_fact,
)

FIN = "agt_fin"
ANNA = "agt_anna"
BEN = "agt_ben"
T0 = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)  # a Saturday night in UTC, Sunday in Berlin


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def created(actor: str = "fin", assignee: str | None = FIN) -> EventIn:
    return EventIn("created", actor, None, {"assignee_id": assignee, "status": "open"}, {}, T0)


def owner(
    kind: str, minutes: float, before: str | None, after: str | None, **detail: Any
) -> EventIn:
    actor = "fin" if kind == "handover" and not detail.get("by_agent") else "agent"
    detail.pop("by_agent", None)
    return EventIn(kind, actor, before, after, detail, at(minutes))


def status(minutes: float, to: str, actor: str = "agent") -> EventIn:
    return EventIn("status", actor, None, to, {}, at(minutes))


def user_says(minutes: float) -> MessageIn:
    return MessageIn(at(minutes), "end_user", None, "public", "comment")


def reply(minutes: float, agent: str, visibility: str = "public") -> MessageIn:
    return MessageIn(at(minutes), "agent", agent, visibility, "comment")


def fact(
    events: list[EventIn],
    messages: list[MessageIn],
    *,
    attributes: dict[str, Any] | None = None,
    others: list[datetime] | None = None,
    csat: int | None = None,
    tz: str = "UTC",
) -> Fact:
    return conversation_fact(
        ConversationIn("cnv_1", "usr_1", T0, attributes or {}),
        events,
        messages,
        bots=frozenset({FIN}),
        others_created=others or [],
        csat_score=csat,
        timezone=ZoneInfo(tz),
        reopen_window=timedelta(days=7),
    )


def test_fin_answers_and_resolves_alone() -> None:
    f = fact([created(), status(3, "resolved", actor="fin")], [user_says(0), reply(1, FIN)])
    assert f.fin_resolved_at == at(3)
    assert f.came_back_at is None
    assert f.handed_over_at is None and f.reason == ""
    assert f.resolved_at == at(3) and f.seconds_to_resolve == 180.0
    assert (f.replies, f.human_replies, f.human_handled) == (1, 0, False)
    assert f.agent_id == "" and f.channel == "messenger"


def test_the_day_is_the_creation_day_in_the_report_time_zone() -> None:
    assert fact([created()], []).day == date(2026, 3, 28)
    assert fact([created()], [], tz="Europe/Berlin").day == date(2026, 3, 29)


def test_handover_take_over_first_reply_and_resolution_are_timed_from_the_handover() -> None:
    events = [
        created(),
        owner("handover", 10, FIN, None, reason="billing_question"),
        owner("take_over", 12, None, ANNA),
        status(40, "resolved"),
    ]
    messages = [
        user_says(0),
        reply(1, FIN),
        reply(11, ANNA, visibility="private"),  # a note is not a reply
        reply(15, ANNA),
        reply(20, ANNA),
    ]
    f = fact(events, messages, csat=4)
    assert f.handed_over_at == at(10) and f.reason == "billing_question"
    assert f.seconds_to_take_over == 120.0
    assert f.seconds_to_first_human_reply == 300.0
    assert f.seconds_to_resolve == 40 * 60.0
    assert f.fin_resolved_at is None
    assert (f.replies, f.human_replies) == (3, 2)
    assert f.agent_id == ANNA and f.human_handled and f.csat_score == 4


def test_handed_back_and_handed_over_again_keeps_the_first_handover() -> None:
    events = [
        created(),
        owner("handover", 5, FIN, None),  # no reason given
        owner("take_over", 8, None, BEN),
        owner("hand_back", 9, BEN, FIN),
        owner("handover", 30, FIN, None, reason="second_time"),
        owner("take_over", 31, None, ANNA),
    ]
    f = fact(events, [reply(40, ANNA)])
    assert f.reason == UNSPECIFIED_REASON
    assert f.seconds_to_take_over == 180.0
    assert f.seconds_to_first_human_reply == 35 * 60.0
    assert f.agent_id == BEN  # the first human to take it


def test_a_person_taking_it_straight_from_fin_is_a_handover() -> None:
    f = fact([created(), owner("take_over", 7, FIN, ANNA)], [reply(9, ANNA)])
    assert f.handed_over_at == at(7) and f.reason == TAKEN_FROM_FIN
    assert f.seconds_to_take_over == 0.0 and f.seconds_to_first_human_reply == 120.0


def test_reopened_is_not_resolved_until_resolved_again_and_then_counts_to_the_last() -> None:
    reopened = [created(), owner("handover", 1, FIN, None), owner("take_over", 2, None, ANNA),
                status(10, "resolved"), status(20, "open")]  # fmt: skip
    assert fact(reopened, []).resolved_at is None
    again = fact([*reopened, status(50, "closed")], [])
    assert again.resolved_at == at(50) and again.seconds_to_resolve == 3000.0


def test_the_end_user_writing_again_within_the_window_reopens_fins_resolution() -> None:
    events = [created(), status(3, "resolved", actor="fin")]
    two_days = 2 * 24 * 60
    f = fact([*events, status(two_days, "open", actor="fin")], [user_says(0), user_says(two_days)])
    assert f.fin_resolved_at == at(3) and f.came_back_at == at(two_days)
    late = fact(events, [user_says(0), user_says(8 * 24 * 60)])
    assert late.came_back_at is None  # after the window: a new question, the resolution held


def test_a_new_conversation_or_a_merged_visitors_counts_as_coming_back() -> None:
    events = [created(), status(3, "resolved", actor="fin")]
    # A visitor's conversation merged into this user arrives with the user's other conversations.
    assert fact(events, [], others=[at(3 * 24 * 60)]).came_back_at == at(3 * 24 * 60)
    assert fact(events, [], others=[at(9 * 24 * 60), at(-60)]).came_back_at is None


def test_a_handover_after_fins_resolution_is_a_reopen() -> None:
    f = fact([created(), status(3, "resolved", actor="fin"), owner("handover", 60, FIN, None)], [])
    assert f.fin_resolved_at == at(3) and f.came_back_at == at(60)
    assert f.handed_over_at == at(60)


def test_resolved_by_a_human_or_after_a_handover_is_not_fins() -> None:
    by_human = fact([created(), status(3, "resolved")], [])
    assert by_human.fin_resolved_at is None and by_human.resolved_at == at(3)
    after = fact(
        [created(), owner("handover", 1, FIN, None), status(3, "resolved", actor="fin")], []
    )
    assert after.fin_resolved_at is None


def test_converting_to_a_ticket_moves_nothing() -> None:
    ticket = EventIn("ticket", "fin", None, "Submitted", {"action": "converted"}, at(2))
    plain = fact([created(), status(5, "resolved", actor="fin")], [reply(1, FIN)])
    converted = fact([created(), ticket, status(5, "resolved", actor="fin")], [reply(1, FIN)])
    assert converted == plain


def test_a_conversation_a_person_opened_is_theirs_and_names_its_channel() -> None:
    f = fact([created(actor="agent", assignee=ANNA)], [reply(0, ANNA)])
    assert f.channel == "agent" and f.agent_id == ANNA and f.human_handled
    assert f.handed_over_at is None and f.seconds_to_first_human_reply is None
    assert fact([created()], [], attributes={"channel": " email "}).channel == "email"


def test_the_rating_request_written_for_a_person_is_not_a_reply() -> None:
    asked = EventIn("rating_requested", "agent", None, None, {"message_id": "msg_ask"}, at(41))
    events = [created(), owner("handover", 10, FIN, None), owner("take_over", 12, None, ANNA),
              status(40, "resolved"), asked]  # fmt: skip
    request = MessageIn(at(41), "agent", ANNA, "public", "comment", "msg_ask")
    f = fact(events, [request], csat=5)
    assert (f.replies, f.human_replies, f.seconds_to_first_human_reply) == (0, 0, None)
    assert f.csat_score == 5


def test_the_wait_for_a_person_is_counted_by_the_clock_it_is_given() -> None:
    events = [created(), owner("handover", 10, FIN, None), owner("take_over", 12, None, ANNA)]
    half = conversation_fact(
        ConversationIn("cnv_1", "usr_1", T0, {}), events, [reply(20, ANNA)],
        bots=frozenset({FIN}), timezone=ZoneInfo("UTC"), reopen_window=timedelta(days=7),
        waited=lambda start, end: (end - start).total_seconds() / 2,  # half the hours are open
    )  # fmt: skip
    assert (half.seconds_to_take_over, half.seconds_to_first_human_reply) == (60.0, 300.0)


def test_an_unknown_report_time_zone_is_refused_when_the_settings_are_read() -> None:
    """Not at the first refresh or the first report, minutes later, in a log line."""
    with pytest.raises(ValidationError, match="not an IANA time zone"):
        Settings(reports_timezone="Mars/Olympus_Mons")
    assert Settings(reports_timezone="Europe/Berlin").reports_timezone == "Europe/Berlin"
