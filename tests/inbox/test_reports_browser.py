"""The reports page in a real Chromium, at phone width (375 px) and on a desktop (1280 px), in
the light and the dark colour scheme: no horizontal scroll on the phone, every chart drawn and
coloured from the scheme's variables, no accessibility violation. (The README's screenshots come
from the end-to-end test, with real numbers: tests/reports/test_reports_e2e.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from playwright.sync_api import Browser, expect
from support.a11y import assert_accessible
from support.reports import sample_report
from support.server import LiveServer
from web_support import Person, new_agent, signed_in_page, start_server

from findesk.reports.filters import ReportSource, report_source
from findesk.reports.schemas import Measures, Period, Report, ReportQuery

START = date(2026, 11, 2)
DAYS = 28


def month_report(query: ReportQuery) -> Report:
    """Four weeks of a plausible team: more on weekdays, Fin resolving a bit over half."""
    periods = []
    for i in range(DAYS):
        n = 40 + (i * 7) % 13 - (18 if i % 7 >= 5 else 0)
        fin = n * 55 // 100 + i % 3
        periods.append(
            Period(
                start=START + timedelta(days=i),
                measures=Measures(conversations=n, fin_resolved=fin, handed_over=n - fin - 2),
            )
        )
    return sample_report(query).model_copy(update={"series": periods})


@pytest.fixture(scope="module")
def reports_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, Person]]:
    live = start_server(request, "sqlite", tmp_path_factory.mktemp("reports-browser"))
    admin = new_agent(live, "Ann Admin", role="admin")
    month = ReportSource(
        build=lambda _session, _settings, query: month_report(query), refresh=lambda *_: None
    )
    live.app.dependency_overrides[report_source] = lambda: month
    yield live, admin
    live.stop()


END = START + timedelta(days=DAYS - 1)
URL = f"/inbox/reports?start={START.isoformat()}&end={END.isoformat()}"


@pytest.mark.parametrize("width", [375, 1280])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_reports_page_fits_and_draws_its_charts(
    browser: Browser, reports_server: tuple[LiveServer, Person], width: int, scheme: str
) -> None:
    live, admin = reports_server
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    try:
        page = signed_in_page(context, live, admin)
        page.goto(f"{live.base_url}{URL}")
        expect(page.get_by_role("heading", name="Reports", exact=True)).to_be_visible()
        expect(page.locator("li.report-card")).to_have_count(10)
        charts = page.locator("svg.chart")
        expect(charts).to_have_count(4)
        for i in range(4):
            chart = charts.nth(i)
            chart.scroll_into_view_if_needed()
            expect(chart).to_be_visible()
            box = chart.bounding_box()
            assert box is not None and box["width"] > 0.6 * min(width, 736) - 80
            assert box["x"] >= 0 and box["x"] + box["width"] <= width
        expect(page.locator("svg.chart-series circle")).to_have_count(3 * DAYS)
        page.evaluate("window.scrollTo(0, 0)")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{overflow}px of horizontal scroll at {width}px"
        # The charts take their colours from the scheme: bars and text differ from the page's
        # background, and the dark scheme's text is light.
        bar, text, background = page.evaluate(
            """() => [getComputedStyle(document.querySelector('.chart-bar')).fill,
                      getComputedStyle(document.querySelector('.chart text')).fill,
                      getComputedStyle(document.body).backgroundColor]"""
        )
        assert bar != background and text != background
        brightness = sum(int(c) for c in text[text.index("(") + 1 : -1].split(",")[:3])
        assert (brightness > 400) == (scheme == "dark"), text
        assert_accessible(page, f"the reports page at {width}px, {scheme}")
    finally:
        context.close()
