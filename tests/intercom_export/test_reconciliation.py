"""Reconciliation end to end: Fin answers, hands over, a human replies, all through the emulator
against a real findesk; two disagreements are planted in what Intercom reports; the export
pulls Intercom's rows and the reconciliation reports exactly those two, with findesk's evidence,
in the API (JSON and CSV), the admin page and the command line."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from export_world import World, start_world
from inbox.web_support import PASSWORD, Person, parse_html, sign_in
from sqlalchemy import select
from support.cli import Cli
from support.receiver import eventually
from support.server import database_url

from findesk.agents.service import create_agent
from findesk.auth.service import create_agent_token
from findesk.conversations.models import ConversationEvent, Message
from findesk.kit.timeutil import as_utc


@dataclass
class Scene:
    world: World
    resolved: list[str]  # Fin resolved these, and findesk agrees
    handed: str  # handed over; Intercom is made to say "confirmed_resolution"
    quiet_handover: str  # handed over; Intercom says so too
    human: str  # a human replied; Intercom is made to say "assumed_resolution"
    human_name: str
    admin: Person
    admin_token: str
    agent_token: str
    day: str


def new_agent(world: World, role: str, name: str) -> tuple[Person, str]:
    email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"
    with world.findesk.db.transaction() as session:
        agent = create_agent(session, email=email, name=name, role=role, password=PASSWORD)
        token = create_agent_token(session, agent)
        return Person(agent.id, email, name, role), token


@pytest.fixture(params=["sqlite", "postgres"])
def scene(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Scene]:
    world = start_world(tmp_path, database_url(request.param, request, tmp_path))
    try:
        resolved = [str(world.answered(name).conversation_id) for name in ("ana", "bea", "cid")]
        handed = str(world.handed_over("dan").conversation_id)
        quiet = str(world.handed_over("eve").conversation_id)
        human = str(world.answered("fay").conversation_id)
        _person, agent_token = new_agent(world, "agent", "Hana")
        with httpx.Client(
            base_url=f"{world.findesk.base_url}/api/v1",
            headers={"Authorization": f"Bearer {agent_token}"},
            timeout=30,
        ) as agent:
            reply = agent.post(
                f"/conversations/{human}/messages", json={"body": "<p>Hi, Hana here.</p>"}
            )
            assert reply.status_code == 201, reply.text
        # findesk tells Fin; Fin's next run sees a human owns it now.
        assert eventually(
            lambda: (
                (o := world.reporting.outcome(human)) is not None
                and o.resolution_state == "routed_to_team"
            ),
            timeout=20,
        )
        with world.admin() as emulator:
            for conversation_id, state in (
                (handed, "confirmed_resolution"),
                (human, "assumed_resolution"),
            ):
                planted = emulator.post(
                    "/emulator/reporting/plant",
                    json={
                        "conversation_id": conversation_id,
                        "fin_ai_agent_resolution_state": state,
                    },
                )
                assert planted.status_code == 200, planted.text
        admin, admin_token = new_agent(world, "admin", "Ada")
        day = datetime.now(UTC).date().isoformat()
        with world.exporter() as exporter:
            summary = exporter.export(datetime.now(UTC).date(), datetime.now(UTC).date())
        assert summary.ok and summary.rows == 6, summary.describe()
        yield Scene(
            world, resolved, handed, quiet, human, "Hana", admin, admin_token, agent_token, day
        )
    finally:
        world.stop()


def api(scene: Scene, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{scene.world.findesk.base_url}/api/v1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def test_exactly_the_two_planted_disagreements_are_reported_with_evidence(scene: Scene) -> None:
    db = scene.world.findesk.db
    with db.read_session() as session:
        handover_at = as_utc(
            session.scalars(
                select(ConversationEvent.at).where(
                    ConversationEvent.conversation_id == scene.handed,
                    ConversationEvent.kind == "handover",
                )
            ).one()
        )
        human_reply_at = as_utc(
            session.scalars(
                select(Message.created_at)
                .where(Message.conversation_id == scene.human, Message.author_type == "agent")
                .order_by(Message.seq.desc())
            ).first()
        )
    query = {"start": scene.day, "end": scene.day}
    with api(scene, scene.admin_token) as admin:
        response = admin.get("/reports/reconciliation", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        as_csv = admin.get("/reports/reconciliation", params={**query, "format": "csv"})
        backwards = admin.get(
            "/reports/reconciliation", params={"start": scene.day, "end": "2000-01-01"}
        )
    with api(scene, scene.agent_token) as agent:
        assert agent.get("/reports/reconciliation", params=query).status_code == 403
    assert (
        httpx.get(
            f"{scene.world.findesk.base_url}/api/v1/reports/reconciliation", params=query
        ).status_code
        == 401
    )
    assert backwards.status_code == 200  # a range that ends before it starts: nothing in it
    assert backwards.json()["days"] == [] and backwards.json()["totals"]["disputed"] == 0

    assert body["totals"] == {"intercom_fin_resolutions": 5, "confirmed": 3, "disputed": 2}
    assert body["exported_rows"] == 6
    [day] = body["days"]
    assert (day["day"], day["intercom_fin_resolutions"], day["confirmed"], day["disputed"]) == (
        scene.day,
        5,
        3,
        2,
    )
    items = {item["conversation_id"]: item for item in day["disagreements"]}
    assert set(items) == {scene.handed, scene.human}
    handed, human = items[scene.handed], items[scene.human]
    assert handed["intercom_claim"] == "confirmed_resolution"
    assert [e["kind"] for e in handed["evidence"]] == ["handover"]
    assert _at(handed["evidence"][0]["at"]) == handover_at.replace(
        microsecond=(handover_at.microsecond // 1000) * 1000
    )
    assert human["intercom_claim"] == "assumed_resolution"
    assert [e["kind"] for e in human["evidence"]] == ["human_reply"]
    assert scene.human_name in human["evidence"][0]["detail"]
    assert abs((_at(human["evidence"][0]["at"]) - human_reply_at).total_seconds()) < 0.002
    assert handed["external_reference"] == scene.handed
    assert handed["intercom_conversation_id"].isdigit()

    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert {(r["conversation_id"], r["evidence"]) for r in lines} == {
        (scene.handed, "handover"),
        (scene.human, "human_reply"),
    }


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_admin_page_lists_the_disagreements_with_links(scene: Scene) -> None:
    web = sign_in(scene.world.findesk, scene.admin)
    try:
        page = web.http.get(
            "/inbox/reports/reconciliation", params={"start": scene.day, "end": scene.day}
        )
        assert page.status_code == 200, page.text
        tree = parse_html(page.text)
        section = tree.find("section", cls="reconcile-day")
        assert section.attrs["data-day"] == scene.day
        rows = section.find_all("tr", cls="disagreement")
        assert {row.attrs["data-conversation"] for row in rows} == {scene.handed, scene.human}
        links = {a.attrs["href"] for row in rows for a in row.find_all("a")}
        assert links == {
            f"/inbox/conversations/{scene.handed}",
            f"/inbox/conversations/{scene.human}",
        }
        texts = {row.attrs["data-conversation"]: row.text for row in rows}
        assert "Handed over to the team" in texts[scene.handed]
        assert "A human agent replied" in texts[scene.human]
        counts = section.find("table", cls="reconcile-counts").find_all("td")
        assert [cell.text for cell in counts] == ["5", "3", "2"]
        csv_link = tree.find("a", cls="csv-link").attrs["href"]
        download = web.http.get(csv_link)
        assert download.status_code == 200
        assert scene.handed in download.text and scene.human in download.text
    finally:
        web.close()
    agent, _token = new_agent(scene.world, "agent", "Ivo")
    plain = sign_in(scene.world.findesk, agent)
    try:
        assert plain.http.get("/inbox/reports/reconciliation").status_code == 403
    finally:
        plain.close()


def test_the_command_line_reports_them_as_csv_and_json(scene: Scene, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "data")
    cli.env["FINDESK_DATABASE_URL"] = scene.world.findesk.database_url
    as_json = cli.run(
        "intercom", "reconcile", "--since", scene.day, "--until", scene.day, "--format", "json"
    )
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["totals"]["disputed"] == 2
    as_csv = cli.run(
        "intercom", "reconcile", "--since", scene.day, "--until", scene.day, "--format", "csv"
    )
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert {r["conversation_id"] for r in rows} == {scene.handed, scene.human}
    table = cli.run("intercom", "reconcile", "--since", scene.day, "--until", scene.day)
    assert table.returncode == 0, table.stderr
    assert "5 Fin resolution(s)" in table.stdout and "2 disputed" in table.stdout
    assert scene.handed in table.stdout and scene.human in table.stdout


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_page_reads_at_phone_width_in_light_and_dark(scene: Scene, browser, scheme) -> None:  # type: ignore[no-untyped-def]
    """In Chromium at 375 px: nothing wider than the screen, the disagreements there, and no
    serious accessibility violation (contrast included) in either colour scheme."""
    from support.a11y import assert_accessible

    context = browser.new_context(viewport={"width": 375, "height": 800}, color_scheme=scheme)
    try:
        page = context.new_page()
        page.goto(f"{scene.world.findesk.base_url}/login")
        page.get_by_label("Email").fill(scene.admin.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("Password").press("Enter")
        page.wait_for_url("**/inbox**")
        page.goto(
            f"{scene.world.findesk.base_url}/inbox/reports/reconciliation"
            f"?start={scene.day}&end={scene.day}"
        )
        assert page.locator("tr.disagreement").count() == 2
        assert page.get_by_role("link", name=scene.handed).is_visible()
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        assert_accessible(page, f"reconciliation page ({scheme})")
    finally:
        context.close()
