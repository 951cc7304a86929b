"""Charts as server-side SVG: no script, no CDN, nothing the strict CSP refuses.

Colours come from classes (``.chart-…`` in ``inbox.css``), which read the inbox's CSS
variables, so dark mode recolours them; no ``style=`` attribute anywhere (the CSP forbids
inline styles). Each chart scales with its box (``viewBox``), names itself for screen readers
(``role="img"`` and ``aria-label``) and gives every mark a ``<title>`` tooltip. Every text,
including the reasons and channels Fin and end users supply, is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from findesk.reports.schemas import Count, Period

WIDTH = 640
FONT = 13
LABEL_CHARS = 60  # a label is cut here (the tooltip and the table keep it whole)


@dataclass(frozen=True)
class Series:
    key: str  # the CSS class suffix: chart-line-<key>
    label: str
    values: list[int]


def nice_max(value: float) -> int:
    """The axis's top: the smallest 1, 2, 2.5 or 5 times a power of ten at or above ``value``
    (at least 1)."""
    if value <= 1:
        return 1
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return max(1, math.ceil(step * power))
    return math.ceil(10 * power)  # pragma: no cover - the loop always returns


def _ticks(top: int) -> list[int]:
    """Up to five evenly spaced whole values from 0 to ``top``."""
    parts = 4 if top % 4 == 0 else 5 if top % 5 == 0 else 2 if top % 2 == 0 else 1
    return sorted({round(top * i / parts) for i in range(parts + 1)})


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def _svg(kind: str, height: float, label: str, body: list[str]) -> Markup:
    # Every text in ``body`` and ``label`` was escaped where it was put in.
    return Markup(  # noqa: S704
        f'<svg class="chart chart-{kind}" viewBox="0 0 {WIDTH} {_num(height)}" role="img" '
        f'aria-label="{escape(label)}" preserveAspectRatio="xMidYMid meet" '
        f'xmlns="http://www.w3.org/2000/svg">' + "".join(body) + "</svg>"
    )


def _empty(kind: str, label: str) -> Markup:
    return _svg(
        kind,
        60,
        f"{label}: no data",
        [f'<text class="chart-empty" x="{WIDTH / 2}" y="35" text-anchor="middle">No data</text>'],
    )


def _y_axis(top: int, left: float, right: float, y0: float, plot_h: float) -> list[str]:
    body = []
    for tick in _ticks(top):
        y = y0 - plot_h * tick / top
        body.append(
            f'<line class="chart-grid" x1="{_num(left)}" x2="{_num(right)}" '
            f'y1="{_num(y)}" y2="{_num(y)}"/>'
            f'<text class="chart-tick" x="{_num(left - 6)}" y="{_num(y + 4)}" '
            f'text-anchor="end">{tick}</text>'
        )
    body.append(
        f'<line class="chart-axis" x1="{_num(left)}" x2="{_num(right)}" '
        f'y1="{_num(y0)}" y2="{_num(y0)}"/>'
    )
    return body


def time_series(periods: Sequence[Period], bucket: str = "day") -> Markup:
    """Conversations, Fin-resolved and handed over per period: a line each, a point per period
    (with its numbers as a tooltip), a legend above."""
    noun = "week" if bucket == "week" else "day"
    label = f"Conversations, resolved by Fin and handed over, per {noun}"
    if not periods:
        return _empty("series", label)
    series = [
        Series("conversations", "Conversations", [p.measures.conversations for p in periods]),
        Series("fin", "Resolved by Fin", [p.measures.fin_resolved for p in periods]),
        Series("handover", "Handed over", [p.measures.handed_over for p in periods]),
    ]
    top = nice_max(max(max(s.values) for s in series))
    left, right, legend_h, plot_top, plot_h = 48.0, WIDTH - 24.0, 28.0, 40.0, 200.0
    y0 = plot_top + plot_h
    height = y0 + 34
    step = (right - left) / max(1, len(periods) - 1) if len(periods) > 1 else 0.0

    def x_of(i: int) -> float:
        return left + step * i if len(periods) > 1 else (left + right) / 2

    body = _y_axis(top, left, right, y0, plot_h)
    legend_x = left
    for s in series:
        body.append(
            f'<rect class="chart-key chart-fill-{s.key}" x="{_num(legend_x)}" y="8" '
            f'width="12" height="12"/><text class="chart-label" x="{_num(legend_x + 17)}" '
            f'y="{_num(legend_h - 9)}">{escape(s.label)}</text>'
        )
        legend_x += 34 + 10 * len(s.label)
    shown = max(1, math.ceil(len(periods) / 7))  # at most about 7 date labels
    for i, period in enumerate(periods):
        if i % shown == 0:
            body.append(
                f'<text class="chart-tick" x="{_num(x_of(i))}" y="{_num(y0 + 20)}" '
                f'text-anchor="middle">{period.start.strftime("%b %-d")}</text>'
            )
    for s in series:
        points = [(x_of(i), y0 - plot_h * v / top) for i, v in enumerate(s.values)]
        if len(points) > 1:
            path = " ".join(f"{_num(x)},{_num(y)}" for x, y in points)
            body.append(f'<polyline class="chart-line chart-line-{s.key}" points="{path}"/>')
        for (x, y), period, value in zip(points, periods, s.values, strict=True):
            body.append(
                f'<circle class="chart-point chart-fill-{s.key}" data-series="{s.key}" '
                f'data-value="{value}" cx="{_num(x)}" cy="{_num(y)}" r="3.5">'
                f"<title>{period.start.isoformat()}: {escape(s.label)} {value}</title></circle>"
            )
    return _svg("series", height, label, body)


def bar_chart(counts: Sequence[Count], label: str) -> Markup:
    """Horizontal bars, one per count, longest for the largest; each label above its bar (so
    long reasons fit a phone) and the number at the bar's end."""
    if not counts:
        return _empty("bars", label)
    top = max(c.count for c in counts) or 1
    row_h, bar_h, pad = 46.0, 18.0, 6.0
    left, right = 8.0, WIDTH - 64.0
    body = []
    for i, c in enumerate(counts):
        y = pad + i * row_h
        width = (right - left) * c.count / top
        text = escape(c.label)
        body.append(
            f'<g class="chart-row"><title>{text}: {c.count}</title>'
            f'<text class="chart-label" x="{_num(left)}" y="{_num(y + 14)}">'
            f"{escape(_short(c.label))}</text>"
            f'<rect class="chart-bar" data-key="{escape(c.key)}" data-count="{c.count}" '
            f'x="{_num(left)}" y="{_num(y + 20)}" width="{_num(width)}" height="{_num(bar_h)}"/>'
            f'<text class="chart-value" x="{_num(left + width + 6)}" '
            f'y="{_num(y + 20 + bar_h - 4)}">{c.count}</text></g>'
        )
    return _svg("bars", pad * 2 + row_h * len(counts), label, body)


def histogram(counts: Sequence[Count], label: str) -> Markup:
    """Adjacent columns, one per bin in order (the response-time distribution)."""
    if not counts or not any(c.count for c in counts):
        return _empty("histogram", label)
    top = nice_max(max(c.count for c in counts))
    left, right, plot_top, plot_h = 48.0, WIDTH - 12.0, 12.0, 180.0
    y0 = plot_top + plot_h
    width = (right - left) / len(counts)
    body = _y_axis(top, left, right, y0, plot_h)
    for i, c in enumerate(counts):
        x = left + i * width
        h = plot_h * c.count / top
        body.append(
            f'<g class="chart-column"><title>{escape(c.label)}: {c.count}</title>'
            f'<rect class="chart-bar" data-key="{escape(c.key)}" data-count="{c.count}" '
            f'x="{_num(x + 1)}" y="{_num(y0 - h)}" width="{_num(width - 2)}" height="{_num(h)}"/>'
            f'<text class="chart-tick" y="{_num(y0 + 18)}" text-anchor="middle">'
            + "".join(
                f'<tspan x="{_num(x + width / 2)}" dy="{18 if n else 0}">{escape(line)}</tspan>'
                for n, line in enumerate(_two_lines(_short(c.label)))
            )
            + "</text></g>"
        )
    return _svg("histogram", y0 + 46, label, body)


def _two_lines(label: str) -> list[str]:
    """A bin's label on at most two lines (narrow columns): "under 1 min" → "under", "1 min"."""
    words = label.split()
    if len(words) < 2:
        return [label]
    best = min(
        range(1, len(words)),
        key=lambda i: abs(len(" ".join(words[:i])) - len(" ".join(words[i:]))),
    )
    return [" ".join(words[:best]), " ".join(words[best:])]
