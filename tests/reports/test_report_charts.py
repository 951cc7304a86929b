"""The reports page's SVG charts, from hand-built reports: a bar per reason as long as its
count says, escaped labels, no inline style (the CSP forbids it), named for screen readers."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date

from support.reports import EVIL_REASON, sample_report

from findesk.reports import charts
from findesk.reports.schemas import Count, Measures, Period

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))  # fails on anything that is not well-formed XML


def test_one_bar_per_reason_with_lengths_in_proportion() -> None:
    report = sample_report()
    svg = parse(charts.bar_chart(report.handover_reasons, "Handover reasons"))
    bars = svg.findall(f".//{SVG}rect[@class='chart-bar']")
    assert [b.get("data-count") for b in bars] == ["9", "6", "3"]
    widths = [float(b.get("width") or 0) for b in bars]
    assert widths[0] > widths[1] > widths[2] > 0
    assert abs(widths[1] / widths[0] - 6 / 9) < 0.01
    assert abs(widths[2] / widths[0] - 3 / 9) < 0.01
    titles = [t.text for t in svg.iter(f"{SVG}title")]
    assert titles == ["Asked for a human: 9", "No answer found: 6", f"{EVIL_REASON}: 3"]


def test_labels_are_escaped_and_nothing_is_styled_inline() -> None:
    report = sample_report()
    rendered = [
        charts.bar_chart(report.handover_reasons, "Handover <reasons>"),
        charts.bar_chart(report.channels, "Channels"),
        charts.histogram(report.response_times, "Response times"),
        charts.time_series(report.series),
    ]
    for markup in rendered:
        text = str(markup)
        assert "<script>" not in text
        assert "style=" not in text
        svg = parse(text)
        assert svg.get("role") == "img"
        assert svg.get("aria-label")
        assert svg.get("viewBox", "").startswith("0 0 ")
        assert svg.get("width") is None  # scales with its box
    assert "&lt;script&gt;" in str(rendered[0])
    assert parse(rendered[0]).get("aria-label") == "Handover <reasons>"


def test_the_histogram_has_a_column_per_bin_in_order() -> None:
    report = sample_report()
    svg = parse(charts.histogram(report.response_times, "Response times"))
    bars = svg.findall(f".//{SVG}rect[@class='chart-bar']")
    assert [b.get("data-count") for b in bars] == ["2", "5", "4", "2", "1", "0", "0"]
    heights = [float(b.get("height") or 0) for b in bars]
    assert heights[1] == max(heights) and heights[5] == 0
    assert abs(heights[0] / heights[1] - 2 / 5) < 0.01
    xs = [float(b.get("x") or 0) for b in bars]
    assert xs == sorted(xs)


def test_the_time_series_has_a_point_per_period_and_series() -> None:
    report = sample_report()
    svg = parse(charts.time_series(report.series))
    points = svg.findall(f".//{SVG}circle")
    by_series: dict[str, list[tuple[int, float]]] = {}
    for p in points:
        by_series.setdefault(p.get("data-series") or "", []).append(
            (int(p.get("data-value") or -1), float(p.get("cy") or 0))
        )
    assert {k: [v for v, _ in items] for k, items in by_series.items()} == {
        "conversations": [10, 20, 5],
        "fin": [6, 12, 1],
        "handover": [4, 8, 4],
    }
    # Higher numbers are drawn higher up (smaller y).
    conversations = by_series["conversations"]
    assert conversations[1][1] < conversations[0][1] < conversations[2][1]
    assert len(svg.findall(f".//{SVG}polyline")) == 3


def test_a_single_period_and_no_data_still_draw() -> None:
    one = [Period(start=date(2026, 1, 5), measures=Measures(conversations=3))]
    assert len(parse(charts.time_series(one, "week")).findall(f".//{SVG}circle")) == 3
    for empty in (
        charts.time_series([]),
        charts.bar_chart([], "Reasons"),
        charts.histogram([Count(key="0", label="under 1 min", count=0)], "Times"),
    ):
        assert "No data" in str(empty)
        assert parse(empty).get("aria-label", "").endswith("no data")


def test_axis_tops_are_round_numbers() -> None:
    assert [charts.nice_max(v) for v in (0, 1, 3, 7, 11, 20, 26, 480)] == [
        1,
        1,
        5,
        10,
        20,
        20,
        50,
        500,
    ]
