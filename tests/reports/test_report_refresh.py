"""The reports' facts kept current from what Fin, the agents and the end users do over HTTP, and
the report summed from them: the same numbers from the daily sums and from the facts (a tag
filter), SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from support.server import LiveServer

from findesk.kit.timeutil import utcnow
from findesk.reports import service
from findesk.reports.schemas import Report, ReportQuery
from findesk.routing import service as routing
from findesk.routing.schemas import RuleIn
from findesk.teams import service as teams


def report(server: LiveServer, **filters: str) -> Report:
    today = utcnow().date()
    query = ReportQuery(start=today - timedelta(days=1), end=today + timedelta(days=1), **filters)
    with server.db.read_session() as session:
        return service.build_report(session, server.settings, query)


def test_the_report_follows_fin_and_the_agents_minute_by_minute(
    server: LiveServer, agent_client: httpx.Client
) -> None:
    world = server.fin_world()
    me = agent_client.agent_id  # type: ignore[attr-defined]
    # A: Fin answers and resolves it alone.
    user = world.user()
    a, _ = world.conversation(user)
    world.fin_says(str(a["id"]))
    world.update(str(a["id"]), status="resolved", tags=["shipping"])
    # B: Fin hands over (billing); the agent takes over, replies twice, resolves.
    b, _ = world.conversation()
    bid = str(b["id"])
    world.fin_says(bid)
    world.update(bid, attributes={"fin_handover_reason": "billing"}, tags=["shipping"])
    world.hand_over(bid)
    assert agent_client.post(f"/conversations/{bid}/take-over").status_code == 200
    for text in ("<p>Looking.</p>", "<p>Refunded.</p>"):
        sent = agent_client.post(f"/conversations/{bid}/messages", json={"body": text})
        assert sent.status_code == 201
    resolved = agent_client.patch(f"/conversations/{bid}", json={"status": "resolved"})
    assert resolved.status_code == 200
    # The end user follows the rating request's link (written for the agent: not a reply).
    asked = world.api.get_messages(bid).data[-1]["body"]
    token = re.search(r"/rate/(rate_[\w-]+)", asked)
    assert token is not None, asked
    rated = httpx.post(f"{server.base_url}/rate/{token[1]}", data={"score": "4", "comment": "ok"})
    assert rated.status_code == 200

    first = service.refresh(server.db, server.settings)
    assert first.conversations == 2  # (the server refreshed the empty database when it started)
    r = report(server)
    t = r.totals
    assert (t.conversations, t.fin_resolved, t.handed_over) == (2, 1, 1)
    assert (t.taken_over, t.resolved) == (1, 2)
    assert (t.fin_resolution_rate, t.handover_rate) == (0.5, 0.5)
    assert (t.replies, t.human_replies, t.first_human_replies) == (4, 2, 1)
    assert t.fin_reopened == 0 and t.durable_fin_resolutions == 0  # its window is still open
    assert [(c.key, c.count) for c in r.handover_reasons] == [("billing", 1)]
    assert [(c.key, c.count) for c in r.channels] == [("messenger", 2)]
    assert [(a.agent_id, a.conversations, a.human_replies) for a in r.agents] == [(me, 1, 2)]
    assert sum(c.count for c in r.response_times) == 1
    assert [(c.label, c.ratings, c.average) for c in r.csat] == [
        ("Fin only", 0, None), ("Human-handled", 1, 4.0)]  # fmt: skip
    assert (t.csat_ratings, t.csat_average) == (1, 4.0)
    assert r.series[0].measures == t
    # Summed from the facts (a tag filter) or from the daily sums: the same numbers.
    assert report(server, tag="shipping").totals == t

    # The end user comes back to A with a new conversation: only the change is recomputed, and
    # Fin's resolution of A becomes a reopen.
    world.conversation(user)
    second = service.refresh(server.db, server.settings)
    assert not second.full and second.conversations >= 1
    t = report(server).totals
    assert (t.conversations, t.fin_reopened, t.fin_reopen_rate) == (3, 1, 1.0)
    assert report(server, reason="billing").totals.conversations == 1
    assert report(server, agent_id=me).totals.human_replies == 2
    assert report(server, tag="nothing-has-it").totals.conversations == 0


def test_the_report_counts_a_conversation_under_the_team_routing_gave_it_to(
    server: LiveServer,
) -> None:
    with server.db.transaction() as session:
        team = teams.create_team(session, name="Reports VIP")
        routing.create_rule(
            session,
            RuleIn.model_validate(
                {
                    "name": "VIP to the VIP team",
                    "conditions": [{"field": "tag", "op": "is", "value": "vip-reports"}],
                    "actions": {"team_id": team.id},
                }
            ),
        )
        team_id = team.id
    world = server.fin_world()
    routed, _ = world.conversation()
    world.update(str(routed["id"]), tags=["vip-reports"])
    world.hand_over(str(routed["id"]))
    world.conversation()  # another, in no team
    service.refresh(server.db, server.settings)
    t = report(server, team_id=team_id).totals
    assert (t.conversations, t.handed_over) == (1, 1)
    assert report(server).totals.conversations > 1
