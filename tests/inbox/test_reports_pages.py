"""The reports page (/inbox/reports) and its CSV, on both backends, through the real sign-in:
administrators see cards, charts and the same numbers as tables; agents are refused; a bad
question gets a clear message and a 400; every CSV parses and guards against formulas."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from support.reports import (
    EVIL_REASON,
    FORMULA_TAG,
    HandBuilt,
    serve_hand_built,
    stop_hand_built,
)
from support.server import LiveServer
from web_support import Node, Web, client, new_agent, parse_html, sign_in

from findesk.reports.schemas import ReportQuery


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[Web]:
    signed_in = sign_in(server, new_agent(server, "Ann Admin", role="admin"))
    yield signed_in
    signed_in.close()


@pytest.fixture
def hand_built(server: LiveServer) -> Iterator[HandBuilt]:
    hand = serve_hand_built(server)
    yield hand
    stop_hand_built(server)


def cards(page: Node) -> dict[str, str]:
    return {
        li.find("span", "report-card-label").text: li.find("strong").text
        for li in page.find_all("li", "report-card")
    }


def rows(table: Node) -> list[list[str]]:
    return [
        [cell.text for cell in tr.iter() if cell.tag in ("th", "td")]
        for tr in table.find("tbody").find_all("tr")
    ]


def read_csv(response_text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response_text)))


def test_the_admin_sees_the_last_30_days_by_default(admin: Web) -> None:
    """With the engine's numbers (whatever they are today): the form holds the last 30 days,
    every card, chart and table is there, and the page links to the reconciliation."""
    page = admin.page("/inbox/reports")
    assert page.find("h1").text == "Reports"
    start = date.fromisoformat(page.find("input", name="start").attrs["value"])
    end = date.fromisoformat(page.find("input", name="end").attrs["value"])
    assert end - start == timedelta(days=29)
    assert set(cards(page)) >= {
        "Conversations",
        "Fin resolution rate",
        "Handover rate",
        "Time to take-over",
        "Time to first human reply",
        "Resolution time",
        "Reopen rate",
        "Durable Fin resolutions",
        "CSAT Fin only",
        "CSAT Human-handled",
    }
    assert len(page.find_all("svg", role="img")) == 4
    assert page.find("a", href="/inbox/reports/reconciliation")
    assert "as of" in page.find("p", "report-as-of").text
    links = {a.attrs["href"].split("?")[1].split("&")[0] for a in page.find_all("a", "csv-link")}
    assert links == {
        f"view={v}"
        for v in (
            *("totals", "series", "handover_reasons", "channels"),
            *("response_times", "agents", "csat", "conversations"),
        )
    }
    assert admin.page("/inbox/admin").find("a", href="/inbox/reports")


def test_the_page_shows_a_reports_numbers_as_cards_charts_and_tables(
    admin: Web, hand_built: HandBuilt
) -> None:
    response = admin.get("/inbox/reports", start="2026-11-02", end="2026-11-04", tag="billing")
    assert response.status_code == 200
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    assert EVIL_REASON not in response.text  # the reason from Fin is shown, escaped
    page = parse_html(response.text)
    shown = cards(page)
    assert shown["Conversations"] == "35"
    assert shown["Fin resolution rate"] == "54.3 %"
    assert shown["Handover rate"] == "45.7 %"
    assert shown["Time to take-over"] == "2 min 30 s"
    assert shown["Time to first human reply"] == "7 min"
    assert shown["Resolution time"] == "1 h 30 min"
    assert shown["Reopen rate"] == "10.5 %"
    assert shown["Durable Fin resolutions"] == "17"
    assert shown["CSAT Fin only"] == "4.00" and shown["CSAT Human-handled"] == "4.50"
    assert "as of 14:37" in page.find("p", "report-as-of").text
    series = rows(page.find("table", id="series-table"))
    assert [r[:4] for r in series] == [
        ["2026-11-02", "10", "6", "4"],
        ["2026-11-03", "20", "12", "8"],
        ["2026-11-04", "5", "1", "4"],
    ]
    tables = page.find_all("table", "report-table")
    reasons = rows(tables[1])
    assert reasons == [["Asked for a human", "9"], ["No answer found", "6"], [EVIL_REASON, "3"]]
    agents = rows(page.find("table", id="agents-table"))
    assert agents[0] == ["Ada Agent", "10", "25", "9", "5 min", "9", "4.50 (4)"]
    assert agents[1][4] == "n/a"  # an average of nothing
    reason_bars = [
        r for r in page.find_all("svg")[1].iter() if r.tag == "rect" and "chart-bar" in r.classes
    ]
    assert [r.attrs["data-count"] for r in reason_bars] == ["9", "6", "3"]
    assert hand_built.asked[-1] == ReportQuery(
        start=date(2026, 11, 2), end=date(2026, 11, 4), tag="billing"
    )
    # The form keeps the question; the CSV links ask it again.
    assert page.find("input", name="tag").attrs["value"] == "billing"
    series_csv = page.find_all("a", "csv-link")[1]
    assert "start=2026-11-02" in series_csv.attrs["href"]
    assert "tag=billing" in series_csv.attrs["href"]


def test_the_filters_reach_the_report(admin: Web, hand_built: HandBuilt) -> None:
    admin.page(
        "/inbox/reports",
        start="2026-01-05",
        end="2026-03-01",
        bucket="week",
        agent="agt_x",
        channel="email",
        reason="no_answer",
        team="team_1",
    )
    assert hand_built.asked[-1] == ReportQuery(
        start=date(2026, 1, 5),
        end=date(2026, 3, 1),
        bucket="week",
        agent_id="agt_x",
        channel="email",
        reason="no_answer",
        team_id="team_1",
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "2026-03-02", "end": "2026-03-01"}, "The end date is before the start date."),
        ({"start": "2023-01-01", "end": "2026-01-01"}, "at most two years"),
        ({"start": "2026-02-30"}, "is not a date"),
        ({"end": "yesterday"}, "is not a date"),
        ({"bucket": "month"}, "Group by day or by week."),
    ],
)
def test_a_bad_question_is_a_400_with_a_message(
    admin: Web, params: dict[str, str], message: str
) -> None:
    response = admin.get("/inbox/reports", **params)
    assert response.status_code == 400
    page = parse_html(response.text)
    assert message in page.find("p", "error").text
    assert page.find("form", "report-filters")  # the form is still there to fix it
    assert not page.find_all("li", "report-card")
    refused = admin.get("/inbox/reports.csv", view="series", **params)
    assert refused.status_code == 400 and message in refused.text


def test_an_agent_is_refused_and_a_stranger_is_sent_to_sign_in(
    server: LiveServer, web: Web
) -> None:
    for path in ("/inbox/reports", "/inbox/reports.csv?view=totals"):
        response = web.get(path)
        assert response.status_code == 403, path
        assert "Only administrators" in response.text
        assert "report-card" not in response.text
    with client(server) as stranger:
        response = stranger.get("/inbox/reports")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")
        assert stranger.get("/inbox/reports.csv?view=agents").status_code in (303, 401)


EXPECTED_HEADERS = {
    "totals": ["start", "end", "conversations", "fin_resolved"],
    "series": ["period_start", "conversations", "fin_resolved"],
    "handover_reasons": ["key", "label", "count"],
    "channels": ["key", "label", "count"],
    "response_times": ["key", "label", "count"],
    "agents": ["agent_id", "name", "conversations"],
    "csat": ["label", "ratings", "average", "score_1"],
    "conversations": ["id", "created_at", "channel", "handover_reason", "tag"],
}


@pytest.mark.parametrize("view", list(EXPECTED_HEADERS))
def test_every_view_downloads_as_csv(admin: Web, hand_built: HandBuilt, view: str) -> None:
    response = admin.get("/inbox/reports.csv", view=view, start="2026-11-02", end="2026-11-04")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    disposition = response.headers["content-disposition"]
    assert f'filename="findesk-{view.replace("_", "-")}-2026-11-02-2026-11-04.csv"' in disposition
    table = read_csv(response.text)
    header, body = table[0], table[1:]
    assert header[: len(EXPECTED_HEADERS[view])] == EXPECTED_HEADERS[view]
    expected_rows = {
        "totals": 1,
        "series": 3,
        "handover_reasons": 3,
        "channels": 2,
        "response_times": 7,
        "agents": 2,
        "csat": 2,
        "conversations": 2,
    }[view]
    assert len(body) == expected_rows
    assert all(len(row) == len(header) for row in body)


def test_csv_cells_cannot_run_as_formulas(admin: Web, hand_built: HandBuilt) -> None:
    channels = read_csv(admin.get("/inbox/reports.csv", view="channels").text)
    assert channels[2][:2] == ["'" + FORMULA_TAG, "'" + FORMULA_TAG]
    assert channels[1] == ["messenger", "Messenger", "30"]
    agents = read_csv(admin.get("/inbox/reports.csv", view="agents").text)
    assert agents[2][1] == "'-Bob"
    conversations = read_csv(admin.get("/inbox/reports.csv", view="conversations").text)
    assert conversations[1] == ["conv_1", "2026-11-02T09:00:00.000Z", "messenger", "", "'@SUM(A1)"]
    series = read_csv(admin.get("/inbox/reports.csv", view="series").text)
    rate = series[0].index("fin_resolution_rate")
    assert series[1][rate] == "0.6"  # numbers stay numbers


def test_an_unknown_view_is_a_400(admin: Web) -> None:
    response = admin.get("/inbox/reports.csv", view="everything")
    assert response.status_code == 400
    assert "Unknown view" in response.text
