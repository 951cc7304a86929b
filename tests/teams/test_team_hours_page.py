"""The admin teams page's business-hours form: time zone, weekly hours and holidays saved (CSRF
checked, admins only), refused input shown as an error, and "Open now" / "Opens Mon 09:00" on
the page. Both backends, real HTTP, forms as a browser sends them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from inbox.web_support import Person, Web, new_agent, sign_in, start_server
from sqlalchemy import select
from support.server import LiveServer

from findesk.kit.timeutil import utcnow
from findesk.teams.models import Team

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LABELS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
PAGE = "/inbox/admin/teams"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live = start_server(request, request.param, Path(tmp_path_factory.mktemp("hours-page")))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def boss(server: LiveServer) -> Person:
    return new_agent(server, "Hana Hours", role="admin")


@pytest.fixture(scope="module")
def admin_web(server: LiveServer, boss: Person) -> Iterator[Web]:
    web = sign_in(server, boss)
    yield web
    web.close()


def team_named(server: LiveServer, name: str) -> Team:
    with server.db.read_session() as session:
        team = session.scalars(select(Team).where(Team.name == name)).one()
        session.expunge(team)
        return team


def new_team(server: LiveServer, web: Web, name: str) -> Team:
    assert web.post(PAGE, {"name": name}).status_code == 303
    return team_named(server, name)


def test_admins_set_business_hours_and_the_page_says_when_the_team_opens(
    server: LiveServer, admin_web: Web
) -> None:
    team = new_team(server, admin_web, "Night shift")
    section = admin_web.page(PAGE).find("section", data_team_id=team.id)
    assert section.find("p", cls="team-status").text.strip() == "Open now"  # no hours yet

    opens = utcnow() + timedelta(days=2)
    day = DAYS[opens.weekday()]
    form = {d: "" for d in DAYS} | {
        "timezone": "UTC",
        day: "10:00-11:00, 14:00-24:00",
        "holidays": "2030-12-25\n2030-01-01",
    }
    assert admin_web.post(f"{PAGE}/{team.id}/hours", form).status_code == 303
    saved = team_named(server, "Night shift")
    assert saved.timezone == "UTC"
    assert saved.business_hours == {day: [["10:00", "11:00"], ["14:00", "24:00"]]}
    assert saved.holidays == ["2030-01-01", "2030-12-25"]
    page = admin_web.page(PAGE)
    assert "Business hours saved." in page.find("p", cls="notice").text
    section = page.find("section", data_team_id=team.id)
    status = section.find("p", cls="team-status")
    assert status.text.strip() == f"Opens {LABELS[opens.weekday()]} 10:00"
    assert status.attrs["data-open"] == "false"
    # The form shows what is saved.
    day_input = section.find("input", id=f"{day}-{team.id}")
    assert day_input.attrs["value"] == "10:00-11:00, 14:00-24:00"

    # Refused input: an error, nothing changed.
    bad = form | {day: "17:00-09:00"}
    admin_web.post(f"{PAGE}/{team.id}/hours", bad)
    assert "ends before it starts" in admin_web.page(PAGE).find("p", cls="error").text
    admin_web.post(f"{PAGE}/{team.id}/hours", form | {"timezone": "Atlantis/Capital"})
    assert "Unknown time zone" in admin_web.page(PAGE).find("p", cls="error").text
    admin_web.post(f"{PAGE}/{team.id}/hours", form | {day: "nine to five"})
    assert "HH:MM-HH:MM" in admin_web.page(PAGE).find("p", cls="error").text
    assert team_named(server, "Night shift").business_hours == saved.business_hours

    # Always open: the hours go.
    assert admin_web.post(f"{PAGE}/{team.id}/hours", form | {"always_open": "1"}).status_code == (
        303
    )
    assert team_named(server, "Night shift").business_hours is None
    section = admin_web.page(PAGE).find("section", data_team_id=team.id)
    assert section.find("p", cls="team-status").text.strip() == "Open now"


def test_only_admins_with_the_csrf_token_change_hours(server: LiveServer, admin_web: Web) -> None:
    team = new_team(server, admin_web, "Guarded")
    form = {"timezone": "UTC", "mon": "09:00-17:00"}
    forged = admin_web.post(f"{PAGE}/{team.id}/hours", form, csrf=False)
    assert forged.status_code == 403
    person = new_agent(server, "Al Agent")
    web = sign_in(server, person)
    try:
        assert web.post(f"{PAGE}/{team.id}/hours", form).status_code == 403
    finally:
        web.close()
    assert team_named(server, "Guarded").business_hours is None
