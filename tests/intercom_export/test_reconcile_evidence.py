"""Reconciliation's evidence, on conversations built through the Fin API and Intercom rows
stored as an export would: the end user came back (inside the window, not after it), findesk
has no such conversation, and the join by ``object_id`` when there is no external reference."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import update
from support.server import LiveServer

from findesk.conversations.models import Conversation, Message
from findesk.intercom_export.models import IntercomReportJob, IntercomReportRow
from findesk.intercom_export.reconcile import reconcile
from findesk.kit.timeutil import as_utc


def fin_answered(server: LiveServer) -> tuple[dict, dict, datetime]:  # type: ignore[type-arg]
    world = server.fin_world()
    user = world.user()
    conversation, _first = world.conversation(user, "<p>Where is my parcel?</p>")
    reply = world.fin_says(conversation["id"], "<p>It left our warehouse today.</p>")
    at = datetime.fromisoformat(reply["created_at"].replace("Z", "+00:00"))
    return conversation, user, at


def store_rows(server: LiveServer, day: date, rows: list[dict]) -> None:  # type: ignore[type-arg]
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    with server.db.transaction() as session:
        job = IntercomReportJob(
            dataset_id="conversation",
            attribute_ids=["conversation_id"],
            range_start=start,
            range_end=start + timedelta(days=1),
            status="downloaded",
            attempts=1,
            rows=len(rows),
        )
        session.add(job)
        session.flush()
        for row in rows:
            session.add(
                IntercomReportRow(
                    job_id=job.id,
                    started_at=start + timedelta(hours=9),
                    fin_participated=True,
                    raw={},
                    **row,
                )
            )


def test_coming_back_inside_the_window_disputes_a_resolution_and_after_it_does_not(
    server: LiveServer,
) -> None:
    world = server.fin_world()
    back, back_user, back_fin_at = fin_answered(server)
    later, later_user, later_fin_at = fin_answered(server)
    quiet, _quiet_user, quiet_fin_at = fin_answered(server)
    came_back = world.user_says(back["id"], back_user["id"], "<p>It did not arrive.</p>")
    too_late = world.user_says(later["id"], later_user["id"], "<p>Another question.</p>")
    with server.db.transaction() as session:  # as if written 8 days on: outside 7 days
        session.execute(
            update(Message)
            .where(Message.id == too_late["id"])
            .values(created_at=later_fin_at + timedelta(days=8))
        )
    day = date(2031, 3, 4)
    store_rows(
        server,
        day,
        [
            {
                "intercom_conversation_id": "9001",
                "external_reference": conversation["id"],
                "fin_resolution_state": "assumed_resolution",
                # Intercom's time is whole seconds: the reply's second, not after it.
                "fin_resolved_at": fin_at.replace(microsecond=0),
            }
            for conversation, fin_at in (
                (back, back_fin_at),
                (later, later_fin_at),
                (quiet, quiet_fin_at),
            )
        ],
    )
    with server.db.read_session() as session:
        result = reconcile(session, server.settings, day, day)
    assert (result.intercom_fin_resolutions, result.confirmed, result.disputed) == (3, 2, 1)
    [item] = result.disagreements
    assert item.conversation_id == back["id"]
    [evidence] = item.evidence
    assert evidence.kind == "came_back"
    written = datetime.fromisoformat(came_back["created_at"].replace("Z", "+00:00"))
    assert abs((as_utc(evidence.at) - written).total_seconds()) < 0.002  # type: ignore[arg-type]


def test_an_unknown_conversation_is_disputed_and_object_id_joins_without_a_reference(
    server: LiveServer,
) -> None:
    by_object, _user, fin_at = fin_answered(server)
    with server.db.read_session() as session:
        object_id = session.get(Conversation, by_object["id"]).object_id  # type: ignore[union-attr]
    day = date(2031, 3, 5)
    store_rows(
        server,
        day,
        [
            {
                "intercom_conversation_id": "424242",
                "external_reference": "conv_nosuchconversation",
                "fin_resolution_state": "confirmed_resolution",
                "fin_resolved_at": fin_at.replace(microsecond=0),
            },
            {
                "intercom_conversation_id": object_id,
                "external_reference": None,
                "fin_resolution_state": "assumed_resolution",
                "fin_resolved_at": fin_at.replace(microsecond=0),
            },
            {  # not a Fin resolution: not counted at all
                "intercom_conversation_id": "31337",
                "external_reference": "conv_other",
                "fin_resolution_state": "routed_to_team",
                "fin_resolved_at": None,
            },
        ],
    )
    with server.db.read_session() as session:
        result = reconcile(session, server.settings, day, day)
    assert (result.intercom_fin_resolutions, result.confirmed, result.disputed) == (2, 1, 1)
    assert result.exported_rows == 3
    [item] = result.disagreements
    assert (item.intercom_conversation_id, item.conversation_id) == ("424242", None)
    assert [e.kind for e in item.evidence] == ["missing"]
