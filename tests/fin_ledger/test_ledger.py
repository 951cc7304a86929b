"""The Fin call ledger on a live server (SQLite and PostgreSQL): every call is recorded with its
fields in both variants, get_messages writes the receipts of human replies, and old entries are
pruned. The recorder writes in the background: tests wait for rows, never sleep."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import httpx
from ledger_support import calls, pending_ids, seen_at, until, wait_for_calls
from sqlalchemy import func, select, update
from support.fin import unique
from support.server import LiveServer

from findesk.fin_api.client import FinApiClient, Variant
from findesk.fin_ledger.models import FinCall, PendingFetch
from findesk.kit.timeutil import utcnow
from findesk.live.models import Activity


@contextmanager
def fin_api(server: LiveServer, variant: Variant) -> Iterator[tuple[FinApiClient, str]]:
    """Fin's client in ``variant``, with an OAuth client of its own; and that client's id."""
    client_id, secret = server.new_oauth_client()
    token = httpx.post(
        f"{server.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
    ).json()["access_token"]
    with httpx.Client(
        base_url=f"{server.base_url}/api/fin",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ) as http:
        yield FinApiClient(http, variant), client_id


def test_every_operation_is_recorded_with_its_fields(server: LiveServer) -> None:
    for variant in ("rest", "posts-only"):
        with fin_api(server, variant) as (api, client_id):
            started = utcnow()
            user = api.create_user(object_id=unique("u"), name="Jane Doe").data
            assert api.get_user(user["id"]).ok
            assert api.update_user(user["id"], attributes={"plan": "pro"}).ok
            assert api.get_agents().ok
            created = api.create_conversation(
                user_id=user["id"],
                object_id=unique("c"),
                initial_message={
                    "body": "<p>Where is my refund?</p>",
                    "author": {"id": user["id"], "user_type": "end_user"},
                    "object_id": unique("m"),
                },
            ).data
            conversation, first = created["conversation"], created["initial_message"]
            cid = conversation["id"]
            assert api.get_conversation(cid).ok
            assert api.update_conversation(cid, title="Refund").ok
            answer = api.create_message(
                conversation_id=cid,
                body="<p>Refunds take five days.</p>",
                author={"id": server.fin_agent_id, "user_type": "agent"},
                visibility="public",
                object_id=unique("m"),
            ).data
            fetched = api.get_messages(cid, after_id=first["id"])
            assert [m["id"] for m in fetched.data] == [answer["id"]]
            assert api.get_conversation("conv_nosuchconversation").status == 404
            invalid = api.reply(
                api.http.post("/get_messages", json={})
                if variant == "posts-only"
                else api.http.get("/messages")
            )
            assert invalid.status == 422

            expected = [
                # operation, conversation, user, after_id, message ids, status
                ("create_user", None, user["id"], None, [], 201),
                ("get_user", None, user["id"], None, [], 200),
                ("update_user", None, user["id"], None, [], 200),
                ("get_agents", None, None, None, [], 200),
                ("create_conversation", cid, user["id"], None, [first["id"]], 201),
                ("get_conversation", cid, None, None, [], 200),
                ("update_conversation", cid, None, None, [], 200),
                ("create_message", cid, None, None, [answer["id"]], 201),
                ("get_messages", cid, None, first["id"], [answer["id"]], 200),
                ("get_conversation", "conv_nosuchconversation", None, None, [], 404),
                ("get_messages", None, None, None, [], 422),
            ]
            rows = wait_for_calls(server, len(expected), FinCall.client_id == client_id)
            assert [
                (
                    r.operation,
                    r.conversation_id,
                    r.user_id,
                    r.after_id,
                    r.message_ids,
                    r.status_code,
                )
                for r in rows
            ] == expected, variant
            finished = utcnow()
            for row in rows:
                assert started <= row.at <= finished
                assert 0 < row.duration_ms < (finished - started).total_seconds() * 1000


def test_a_call_without_valid_credentials_is_recorded_as_a_401(server: LiveServer) -> None:
    def refused() -> list[FinCall]:
        return calls(server, FinCall.status_code == 401)

    before = len(refused())
    with httpx.Client(base_url=f"{server.base_url}/api/fin", timeout=30) as http:
        answer = http.post(
            "/get_conversation",
            json={"conversation_id": "conv_x"},
            headers={"Authorization": "Bearer not-a-token"},
        )
        assert answer.status_code == 401
        assert http.get("/messages", params={"conversation_id": "conv_x"}).status_code == 401
    rows = wait_for_calls(server, before + 2, FinCall.status_code == 401)[before:]
    assert [(r.operation, r.client_id, r.conversation_id) for r in rows] == [
        ("get_conversation", None, None),  # refused before its body was read
        ("get_messages", None, None),
    ]


def test_get_messages_writes_receipts_of_human_public_replies_once(
    server: LiveServer, agent_client: httpx.Client
) -> None:
    fin = server.fin_world()
    conversation, first = fin.conversation()
    cid = conversation["id"]
    from_fin = fin.fin_says(cid)
    from_user = fin.user_says(cid, conversation["user"]["id"], "<p>A person, please.</p>")
    replied = agent_client.post(f"/conversations/{cid}/messages", json={"body": "<p>Hello!</p>"})
    noted = agent_client.post(
        f"/conversations/{cid}/messages", json={"body": "<p>VIP</p>", "visibility": "private"}
    )
    assert replied.status_code == noted.status_code == 201
    reply, note = replied.json(), noted.json()
    assert pending_ids(server, cid) == {reply["id"]}

    assert fin.api.get_messages(cid).ok
    until(lambda: seen_at(server, reply["id"]) is not None, "the reply's receipt")
    (fetch,) = calls(server, FinCall.operation == "get_messages", FinCall.conversation_id == cid)
    assert reply["id"] in fetch.message_ids
    assert seen_at(server, reply["id"]) == fetch.at  # the ledger's call time
    for other in (first, from_fin, from_user, note):
        assert seen_at(server, other["id"]) is None, other
    assert pending_ids(server, cid) == set()

    # Fin fetches again: the receipt keeps the first fetch, and the inbox hears of it once.
    assert fin.api.get_messages(cid).ok
    wait_for_calls(server, 2, FinCall.operation == "get_messages", FinCall.conversation_id == cid)
    assert seen_at(server, reply["id"]) == fetch.at
    with server.db.read_session() as session:
        told = session.scalar(
            select(func.count())
            .select_from(Activity)
            .where(Activity.conversation_id == cid, Activity.kind == "seen_by_fin")
        )
    assert told == 1


def test_calls_and_unfetched_replies_are_pruned_after_the_retention(
    server: LiveServer, agent_client: httpx.Client
) -> None:
    fin = server.fin_world()
    conversation, _ = fin.conversation()
    cid = conversation["id"]
    old_reply, new_reply = (
        agent_client.post(f"/conversations/{cid}/messages", json={"body": f"<p>{n}</p>"}).json()
        for n in ("old", "new")
    )
    now = utcnow()
    with server.db.transaction() as session:
        session.execute(
            update(PendingFetch)
            .where(PendingFetch.message_id == old_reply["id"])
            .values(created_at=now - timedelta(days=2))
        )
        for age, marker in ((timedelta(days=2), "old"), (timedelta(hours=12), "recent")):
            session.add(
                FinCall(
                    at=now - age,
                    operation="get_user",
                    user_id=f"prune-{marker}-{cid}",
                    message_ids=[],
                    status_code=200,
                    duration_ms=1.0,
                )
            )

    # A second server on the same database keeps one day: its recorder prunes as it starts.
    pruner = LiveServer(server.database_url, {"fin_ledger_retention_days": 1}).start()
    try:
        until(
            lambda: not calls(server, FinCall.user_id == f"prune-old-{cid}"),
            "the old call pruned",
        )
        until(lambda: pending_ids(server, cid) == {new_reply["id"]}, "the old reply pruned")
        assert calls(server, FinCall.user_id == f"prune-recent-{cid}")
    finally:
        pruner.stop()
