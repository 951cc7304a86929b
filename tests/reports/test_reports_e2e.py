"""The reports end to end: 50 conversations driven through the Fin emulator (Fin answers, resolves
when thanked, hands over when asked for a person or when it knows nothing), a person takes over,
replies and resolves some, end users rate some and come back to some; then the reports page in
Chromium, its CSV, and Intercom's Reporting Data Export reconciled with two planted
disagreements."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
from inbox.web_support import PASSWORD, Person, signed_in_page
from intercom_export.export_world import World, start_world
from playwright.sync_api import Browser, expect
from support.a11y import assert_accessible
from support.receiver import eventually
from support.server import database_url

from findesk.agents.service import create_agent
from findesk.auth.service import create_agent_token
from findesk.intercom_export import reconcile
from findesk.reports import service

QUESTION = "<p>How long do refunds take to reach my card?</p>"
THANKS = "<p>Thanks, that helped!</p>"
PERSON = "<p>I want to talk to a human</p>"
NONSENSE = "<p>xyzzy plugh frobnicate quux</p>"
SCORES = (5, 5, 4, 4, 3, 1)  # the ratings of six of the conversations a person resolved


@dataclass
class Outcomes:
    """What was done, conversation by conversation: the answers the reports must give."""

    fin_resolved: list[str] = field(default_factory=list)
    came_back: list[str] = field(default_factory=list)  # Fin-resolved whose user returned
    answered_open: list[str] = field(default_factory=list)
    human_resolved: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # asked for a person, nobody took it yet
    no_match: list[str] = field(default_factory=list)
    planted: list[str] = field(default_factory=list)

    @property
    def all(self) -> list[str]:
        return [*self.fin_resolved, *self.answered_open, *self.human_resolved, *self.waiting,
                *self.no_match]  # fmt: skip


@dataclass
class Scene:
    world: World
    outcomes: Outcomes
    admin: Person
    agent_name: str


def agent(world: World, role: str, name: str) -> tuple[Person, str]:
    email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"
    with world.findesk.db.transaction() as session:
        person = create_agent(session, email=email, name=name, role=role, password=PASSWORD)
        return Person(person.id, email, name, role), create_agent_token(session, person)


def start(world: World, visitor: str, html: str) -> str:
    run = world.engine.start_conversation(
        {"object_id": f"visitor-{visitor}", "name": visitor.title(),
         "email": f"{visitor}@example.com"},
        html,
    )  # fmt: skip
    assert run.error is None and run.conversation_id is not None, run.error
    return run.conversation_id


def says(world: World, conversation_id: str, html: str) -> None:
    run = world.engine.user_says(conversation_id, html)
    assert run.error is None, run.error


def rating_token(world: World, conversation_id: str) -> str:
    messages = world.findesk.fin_world().api.get_messages(conversation_id).data
    found = re.search(r"/rate/(rate_[\w-]+)", messages[-1]["body"])
    assert found is not None, messages[-1]["body"]
    return found[1]


def drive(world: World, person: httpx.Client) -> Outcomes:
    done = Outcomes()
    for n in range(20):  # Fin answers, the end user thanks it: Fin resolves
        cid = start(world, f"thankful{n}", QUESTION)
        says(world, cid, THANKS)
        done.fin_resolved.append(cid)
    done.came_back = done.fin_resolved[:2]
    for n in range(5):  # Fin answers and nothing more; two are those end users coming back
        visitor = f"thankful{n}" if n < 2 else f"quiet{n}"
        done.answered_open.append(start(world, visitor, QUESTION))
    for n in range(15):  # the end user asks for a person
        cid = start(world, f"asker{n}", QUESTION)
        says(world, cid, PERSON)
        (done.human_resolved if n < 10 else done.waiting).append(cid)
    for n in range(10):  # nothing in the library: Fin hands over at once
        done.no_match.append(start(world, f"lost{n}", NONSENSE))
    for cid in done.human_resolved:
        assert person.post(f"/conversations/{cid}/take-over").status_code == 200
        reply = person.post(f"/conversations/{cid}/messages", json={"body": "<p>On it.</p>"})
        assert reply.status_code == 201, reply.text
        assert person.patch(f"/conversations/{cid}", json={"status": "resolved"}).status_code == 200
    for cid, score in zip(done.human_resolved, SCORES, strict=False):
        rated = httpx.post(f"{world.findesk.base_url}/rate/{rating_token(world, cid)}",
                           data={"score": str(score), "comment": "Thanks"})  # fmt: skip
        assert rated.status_code == 200
    return done


@pytest.fixture(scope="module")
def scene(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scene]:
    tmp = tmp_path_factory.mktemp("reports-e2e")
    world = start_world(tmp, database_url("sqlite", request, tmp))
    try:
        _, token = agent(world, "agent", "Hana")
        with httpx.Client(
            base_url=f"{world.findesk.base_url}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ) as person:
            outcomes = drive(world, person)
        # Fin hears of the person's replies through the notifier: its record says "routed".
        assert eventually(
            lambda: all(
                (o := world.reporting.outcome(cid)) is not None
                and o.resolution_state == "routed_to_team"
                for cid in outcomes.human_resolved
            ),
            timeout=30,
        )
        # Two disagreements: Intercom says Fin resolved two that a person resolved.
        outcomes.planted = outcomes.human_resolved[-2:]
        with world.admin() as emulator:
            for cid in outcomes.planted:
                claim = {"conversation_id": cid,
                         "fin_ai_agent_resolution_state": "confirmed_resolution"}  # fmt: skip
                planted = emulator.post("/emulator/reporting/plant", json=claim)
                assert planted.status_code == 200, planted.text
        admin, _ = agent(world, "admin", "Ada")
        yield Scene(world, outcomes, admin, "Hana")
    finally:
        world.stop()


def test_the_report_counts_what_happened(scene: Scene) -> None:
    service.refresh(scene.world.findesk.db, scene.world.findesk.settings)
    today = datetime.now(UTC).date()
    with scene.world.findesk.db.read_session() as session:
        report = service.build_report(
            session, scene.world.findesk.settings,
            service.ReportQuery(start=today, end=today),
        )  # fmt: skip
    t = report.totals
    assert (t.conversations, t.fin_resolved, t.fin_resolution_rate) == (50, 20, 0.4)
    assert (t.handed_over, t.handover_rate, t.taken_over, t.first_human_replies) == (
        25,
        0.5,
        10,
        10,
    )
    assert (t.resolved, t.fin_reopened, t.fin_reopen_rate) == (30, 2, 0.1)
    assert t.durable_fin_resolutions == 0  # the reopen window of each is still running
    assert [(c.key, c.count) for c in report.handover_reasons] == [
        ("human_requested", 15), ("no_match", 10)]  # fmt: skip
    assert [(a.name, a.conversations, a.human_replies, a.resolved) for a in report.agents] == [
        (scene.agent_name, 10, 10, 10)]  # fmt: skip
    human = report.csat[1]
    assert (human.ratings, human.by_score) == (6, [1, 0, 1, 2, 2])
    assert human.average == round(sum(SCORES) / 6, 2)
    assert report.csat[0].ratings == 0  # Fin-resolved conversations are not asked by default


def test_the_reports_page_and_its_csv_in_chromium(scene: Scene, browser: Browser) -> None:
    findesk = scene.world.findesk
    for width, scheme in ((1280, "light"), (375, "dark")):
        context = browser.new_context(viewport={"width": width, "height": 1280},
                                      color_scheme=scheme)  # fmt: skip
        try:
            page = signed_in_page(context, findesk, scene.admin)
            page.goto(f"{findesk.base_url}/inbox/reports")

            cards = page.locator("li.report-card")
            expect(cards.filter(has_text="Conversations").first).to_contain_text("50")
            expect(cards.filter(has_text="Fin resolution rate").first).to_contain_text("40.0 %")
            expect(cards.filter(has_text="Handover rate").first).to_contain_text("50.0 %")
            expect(cards.filter(has_text="Reopen rate").first).to_contain_text("10.0 %")
            expect(cards.filter(has_text="CSAT Human-handled").first).to_contain_text("3.67")
            expect(page.locator("svg.chart")).to_have_count(4)
            reasons = page.locator("table", has_text="human_requested")
            expect(reasons.locator("tr", has_text="human_requested").first).to_contain_text("15")
            expect(reasons.locator("tr", has_text="no_match").first).to_contain_text("10")
            assert_accessible(page, f"the reports page with data at {width}px, {scheme}")
            if scheme == "light":
                csv_link = page.get_by_role("link", name="CSV").first
                expect(csv_link).to_be_visible()
                rows = page.request.get(f"{findesk.base_url}/inbox/reports.csv?view=conversations")
                assert rows.status == 200
                by_id = {r["conversation_id"]: r for r in csv.DictReader(io.StringIO(rows.text()))}
                assert set(by_id) == set(scene.outcomes.all)
                fin = {cid for cid, r in by_id.items() if r["fin_resolved_at"]}
                assert fin == set(scene.outcomes.fin_resolved)
                back = {cid for cid, r in by_id.items() if r["came_back_at"]}
                assert back == set(scene.outcomes.came_back)
                reasons_of = {cid: r["reason"] for cid, r in by_id.items() if r["reason"]}
                assert reasons_of == {
                    **{cid: "human_requested" for cid in scene.outcomes.human_resolved},
                    **{cid: "human_requested" for cid in scene.outcomes.waiting},
                    **{cid: "no_match" for cid in scene.outcomes.no_match},
                }
                rated = {cid: r["csat_score"] for cid, r in by_id.items() if r["csat_score"]}
                asked = zip(scene.outcomes.human_resolved, SCORES, strict=False)
                assert rated == {cid: str(score) for cid, score in asked}
        finally:
            context.close()


def test_intercom_export_and_reconciliation_find_the_two_planted_disagreements(
    scene: Scene, browser: Browser
) -> None:
    today = datetime.now(UTC).date()
    with scene.world.exporter() as exporter:
        summary = exporter.export(today, today)
    assert summary.ok and summary.rows == 50, summary.describe()
    findesk = scene.world.findesk
    with findesk.db.read_session() as session:
        result = reconcile.reconcile(session, findesk.settings, today, today)
    # Intercom counts 20 confirmed resolutions, 5 assumed ones and the 2 planted.
    assert result.intercom_fin_resolutions == 27
    disputed = {d.conversation_id: {e.kind for e in d.evidence}
                for day in result.days for d in day.disagreements}  # fmt: skip
    assert disputed == {
        **{cid: {"handover", "human_reply"} for cid in scene.outcomes.planted},
        **{cid: {"came_back"} for cid in scene.outcomes.came_back},
    }
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = signed_in_page(context, findesk, scene.admin)
        page.goto(f"{findesk.base_url}/inbox/reports/reconciliation?start={today}&end={today}")
        for cid in scene.outcomes.planted:
            expect(page.locator(f"a[href*='{cid}']").first).to_be_visible()
    finally:
        context.close()
