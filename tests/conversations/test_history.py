"""The durable history, as an agent reads it: the API, the conversation's ownership columns,
the inbox timeline, and that the live feed's purge leaves it whole (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import httpx
from inbox.web_support import new_agent, parse_html, sign_in, unique
from support.server import LiveServer

from findesk.kit.timeutil import utcnow
from findesk.live import service as live


def story(server: LiveServer, agent: httpx.Client) -> str:
    """Fin answers, hands over with a reason, the agent takes over, Fin's late sync run tries
    to take it back, the agent tags, resolves and hands it back."""
    world = server.fin_world()
    conversation, _ = world.conversation()
    cid = str(conversation["id"])
    world.fin_says(cid)
    world.update(
        cid,
        title="Refund for a double charge",
        attributes={"fin_handover_reason": "human_requested", "priority": "High"},
        assignee_id=None,
    )
    assert agent.post(f"/conversations/{cid}/take-over").status_code == 200
    late = world.update(cid, assignee_id=server.fin_agent_id, tags=["billing"])
    assert late["assignee"]["id"] == agent.agent_id  # type: ignore[attr-defined]
    reply = agent.post(f"/conversations/{cid}/messages", json={"body": "<p>Refunded.</p>"})
    assert reply.status_code == 201
    assert agent.patch(f"/conversations/{cid}", json={"status": "resolved"}).status_code == 200
    assert agent.post(f"/conversations/{cid}/hand-back").status_code == 200
    return cid


def test_every_change_is_in_the_history_with_who_and_what_before(
    server: LiveServer, agent_client: httpx.Client
) -> None:
    cid = story(server, agent_client)
    me = agent_client.agent_id  # type: ignore[attr-defined]
    items = agent_client.get(f"/conversations/{cid}/history").json()["items"]
    told = [(e["kind"], e["actor"], e["from_value"], e["to_value"]) for e in items]
    assert told == [
        ("created", "fin", None, {"assignee_id": server.fin_agent_id, "status": "open"}),
        ("title", "fin", None, "Refund for a double charge"),
        (
            "attributes",
            "fin",
            {"fin_handover_reason": None, "priority": None},
            {"fin_handover_reason": "human_requested", "priority": "High"},
        ),
        ("priority", "fin", None, "High"),
        ("handover", "fin", server.fin_agent_id, None),
        ("take_over", "agent", None, me),
        ("tags", "fin", [], ["billing"]),
        ("assignment_ignored", "fin", me, me),
        ("status", "agent", "open", "resolved"),
        ("rating_requested", "agent", None, None),  # a human resolved it: findesk.csat
        ("hand_back", "agent", me, server.fin_agent_id),
    ]
    by_kind = {e["kind"]: e for e in items}
    assert by_kind["handover"]["detail"] == {"reason": "human_requested"}
    assert by_kind["take_over"]["detail"]["seconds_after_handover"] >= 0
    assert by_kind["take_over"]["actor_agent"]["id"] == me
    assert by_kind["assignment_ignored"]["detail"] == {
        "requested": server.fin_agent_id,
        "owner": "human",
    }
    ats = [e["at"] for e in items]
    assert ats == sorted(ats)

    conversation = agent_client.get(f"/conversations/{cid}").json()["conversation"]
    assert conversation["handed_over_at"] <= conversation["taken_over_at"]
    assert conversation["taken_over_at"] <= conversation["first_human_reply_at"]

    # Paging: after_id and limit walk the same list.
    first = agent_client.get(f"/conversations/{cid}/history", params={"limit": 4}).json()
    assert [e["id"] for e in first["items"]] == [e["id"] for e in items[:4]]
    rest = agent_client.get(
        f"/conversations/{cid}/history", params={"after_id": first["next_after_id"]}
    ).json()
    assert [e["id"] for e in first["items"] + rest["items"]] == [e["id"] for e in items]
    assert rest["next_after_id"] is None

    assert agent_client.get("/conversations/conv_missing/history").status_code == 404


def test_the_history_survives_the_live_feeds_purge(
    server: LiveServer, agent_client: httpx.Client
) -> None:
    cid = story(server, agent_client)
    before = agent_client.get(f"/conversations/{cid}/history").json()["items"]
    with server.db.transaction() as session:
        assert live.purge(session, before=utcnow() + timedelta(days=1)) > 0
    assert agent_client.get(f"/conversations/{cid}/history").json()["items"] == before


def test_the_history_needs_an_agent_token(server: LiveServer) -> None:
    world = server.fin_world()
    cid = world.conversation()[0]["id"]
    response = httpx.get(f"{server.base_url}/api/v1/conversations/{cid}/history")
    assert response.status_code == 401
    fin_token = {"Authorization": f"Bearer {server.fin_token()}"}
    response = httpx.get(f"{server.base_url}/api/v1/conversations/{cid}/history", headers=fin_token)
    assert response.status_code == 401


def test_the_inbox_timeline_tells_the_story_between_the_messages(server: LiveServer) -> None:
    person = new_agent(server, name="Alex Agent")
    web = sign_in(server, person)
    with server.agent_http(f"{unique('side')}@example.com") as agent:
        cid = story(server, agent)
    page = web.page(f"/inbox/conversations/{cid}")
    thread = page.find("ol", "thread")
    entries = [
        (node.tag, node.attrs.get("data-kind"), node.text)
        for node in thread.find_all("li")
        if {"event", "message"} & node.classes
    ]
    events = [text for tag, kind, text in entries if kind]
    assert any(
        t.startswith("Fin handed over to the team · the customer asked for a person")
        for t in events
    )
    assert any("took over from Fin ·" in t and "after handover" in t for t in events)
    assert any("Fin tried to take it back · ignored:" in t for t in events)
    assert any(t.startswith("Fin tagged it billing") for t in events)
    assert any("handed it back to Fin" in t for t in events)
    ignored = thread.find("li", "ignored")
    assert ignored.attrs["data-kind"] == "assignment_ignored"
    # Interleaved in time: Fin's answer comes before the handover, the agent's reply after
    # the take-over.
    kinds = [kind or "message" for _, kind, _ in entries]
    assert kinds.index("handover") > 1  # the end user's message and Fin's answer first
    assert kinds.index("take_over") < len(kinds) - 1 - kinds[::-1].index("message")
    assert parse_html(web.get(f"/inbox/conversations/{cid}").text).first("li", "event")
