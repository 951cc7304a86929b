"""Reports of a conformance run for CI: JUnit XML and one self-contained HTML file.

JUnit: one ``<testsuite>`` per variant, one ``<testcase>`` per result (``classname``
``conformance.<variant>.<level>``, ``name`` the check). A failed required check is a
``<failure>`` (its reason as the message; the rule, the reason and the request and response that
decided it in the body); a skipped check is ``<skipped>`` with its reason. A failed recommended
check is a ``<skipped message="warning: …">`` (so the build stays green and the warning is listed)
unless the run was ``--strict``, when it is a ``<failure>`` like a required one.

HTML: everything the helpdesk answered is untrusted, so every value goes through Jinja2's
autoescaping, and a Content-Security-Policy forbids scripts and any request the page could make.
"""

from __future__ import annotations

import contextlib
import platform
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import jinja2

from findesk.conformance.checks import Config, Exchange, context
from findesk.conformance.runner import LEVELS, Report, Result

EXIT_CODES = {
    0: "every required check passed (with --strict: every check)",
    1: "a check failed",
    2: "usage error (a missing or invalid option)",
    3: "the helpdesk could not be reached (no answer from the token URL or the base URL)",
    4: "the helpdesk refused the client credentials (the token endpoint answered 400 or 401)",
}


def _variants(report: Report) -> list[str]:
    """The variants run, in order (and any other a result names)."""
    seen = dict.fromkeys([*report.variants, *(r.variant or report.variant for r in report.results)])
    return [v for v in seen if any((r.variant or report.variant) == v for r in report.results)] or [
        report.variant
    ]


def _summary(report: Report, variant: str) -> str:
    return report.summary(variant) if report.several else report.summary()


def _verdict(result: Result, strict: bool) -> str:
    """PASS, FAIL, WARN (a recommended failure, not strict) or SKIP."""
    if result.outcome == "passed":
        return "PASS"
    if result.outcome == "skipped":
        return "SKIP"
    return "FAIL" if result.level == "required" or strict else "WARN"


def _exchange_text(exchange: Exchange | None) -> str:
    if exchange is None:
        return "(no request)"
    sent = f"\n{exchange.body}" if exchange.body else ""
    return f"{exchange.method} {exchange.url}{sent}\n-> {exchange.status}\n{exchange.response}"


def _details(result: Result) -> str:
    return (
        f"rule: {result.rule or result.name}\n"
        f"level: {result.level}\n"
        f"reason: {result.reason}\n\n"
        f"{_exchange_text(result.request)}"
    )


# --- JUnit XML ------------------------------------------------------------------------------


def junit_xml(report: Report, timestamp: float | None = None) -> ET.ElementTree[ET.Element]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp or time.time()))
    root = ET.Element("testsuites", name="findesk conformance")
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for variant in _variants(report):
        results = [r for r in report.results if (r.variant or report.variant) == variant]
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"conformance ({variant})",
            timestamp=stamp,
            hostname=platform.node() or "localhost",
            time="0",
            errors="0",
        )
        properties = ET.SubElement(suite, "properties")
        for name, text in (
            ("base_url", report.base_url),
            ("variant", variant),
            ("strict", str(report.strict).lower()),
            ("summary", _summary(report, variant)),
        ):
            ET.SubElement(properties, "property", name=name, value=text)
        counts = {"tests": 0, "failures": 0, "skipped": 0}
        for result in results:
            counts["tests"] += 1
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"conformance.{variant}.{result.level}",
                name=result.name,
                time="0",
            )
            verdict = _verdict(result, report.strict)
            if verdict == "FAIL":
                counts["failures"] += 1
                failure = ET.SubElement(
                    case, "failure", message=result.reason, type=f"{result.level} check failed"
                )
                failure.text = _details(result)
            elif verdict == "WARN":
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=f"warning: {result.reason}")
                ET.SubElement(case, "system-out").text = _details(result)
            elif verdict == "SKIP":
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=result.reason)
            else:
                ET.SubElement(
                    case, "system-out"
                ).text = f"rule: {result.rule or result.name}\nlevel: {result.level}"
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("errors", "0")
    root.set("time", "0")
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(report: Report, path: Path) -> None:
    junit_xml(report).write(path, encoding="utf-8", xml_declaration=True)


# --- HTML -----------------------------------------------------------------------------------

TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; form-action 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Conformance report: {{ verdict }} ({{ base_url }})</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1d1d1f; background: #fff; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
.meta { color: #555; margin-top: 0; }
.verdict { display: inline-block; padding: .2rem .7rem; border-radius: .3rem; color: #fff;
           font-weight: 700; }
.verdict.PASS { background: #1a7f37; } .verdict.FAIL { background: #cf222e; }
table.summary { border-collapse: collapse; margin: 1rem 0; }
table.summary th, table.summary td { border: 1px solid #d0d7de; padding: .3rem .7rem;
                                      text-align: right; }
table.summary th:first-child, table.summary td:first-child { text-align: left; }
.check { border: 1px solid #d0d7de; border-left-width: .4rem; border-radius: .3rem;
         margin: .5rem 0; padding: .4rem .8rem; }
.check.PASS { border-left-color: #1a7f37; } .check.FAIL { border-left-color: #cf222e; }
.check.WARN { border-left-color: #bf8700; } .check.SKIP { border-left-color: #8c959f; }
.check summary { cursor: pointer; }
.tag { font-size: .8rem; font-weight: 700; padding: .05rem .4rem; border-radius: .2rem;
       margin-right: .4rem; color: #fff; }
.tag.PASS { background: #1a7f37; } .tag.FAIL { background: #cf222e; }
.tag.WARN { background: #9a6700; } .tag.SKIP { background: #6e7781; }
.level { font-size: .8rem; color: #555; border: 1px solid #d0d7de; border-radius: .2rem;
         padding: 0 .3rem; margin-left: .4rem; }
.name { font-family: ui-monospace, monospace; font-weight: 600; }
dl { display: grid; grid-template-columns: 8rem 1fr; gap: .2rem .8rem; margin: .5rem 0; }
dt { color: #555; } dd { margin: 0; }
pre { background: #f6f8fa; padding: .5rem; border-radius: .3rem; white-space: pre-wrap;
      word-break: break-all; margin: 0; font-size: .85rem; }
</style>
</head>
<body>
<h1>Fin Custom Helpdesk conformance <span class="verdict {{ verdict }}">{{ verdict }}</span></h1>
<p class="meta">{{ base_url }} · {{ generated }}{% if strict %} · strict{% endif %}</p>
{% for line in summaries %}<p>{{ line }}</p>
{% endfor %}
<table class="summary">
<tr><th>Variant</th><th>Level</th><th>Passed</th><th>Failed</th><th>Warnings</th>
<th>Skipped</th></tr>
{% for row in counts %}
<tr><td>{{ row.variant }}</td><td>{{ row.level }}</td><td>{{ row.PASS }}</td>
<td>{{ row.FAIL }}</td><td>{{ row.WARN }}</td><td>{{ row.SKIP }}</td></tr>
{% endfor %}
</table>
<p>Required checks are what the contract says: a failure fails the run. Recommended checks are
findesk's stronger choices: a failure is a warning{% if strict %} (here a failure: the run was
strict){% endif %}.</p>
{% for variant in variants %}
<h2>Variant: {{ variant.name }}</h2>
{% for item in variant.results %}
<details class="check {{ item.verdict }}"{% if item.verdict in ("FAIL", "WARN") %} open{% endif %}>
<summary><span class="tag {{ item.verdict }}">{{ item.verdict }}</span><span class="name">{{
item.result.name }}</span><span class="level">{{ item.result.level }}</span></summary>
<dl>
<dt>Rule</dt><dd>{{ item.result.rule or item.result.name }}</dd>
<dt>Reason</dt><dd>{{ item.result.reason }}</dd>
{% if item.result.request %}
<dt>Request</dt><dd><pre>{{ item.result.request.method }} {{ item.result.request.url }}
{%- if item.result.request.body %}
{{ item.result.request.body }}{% endif %}</pre></dd>
<dt>Response</dt><dd><pre>{{ item.result.request.status }}
{{ item.result.request.response }}</pre></dd>
{% endif %}
</dl>
</details>
{% endfor %}
{% endfor %}
</body>
</html>
"""

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)


def html_report(report: Report, timestamp: float | None = None) -> str:
    verdicts = ("PASS", "FAIL", "WARN", "SKIP")
    variants: list[dict[str, Any]] = []
    counts: list[dict[str, Any]] = []
    for variant in _variants(report):
        items: list[dict[str, Any]] = [
            {"result": r, "verdict": _verdict(r, report.strict)}
            for r in report.results
            if (r.variant or report.variant) == variant
        ]
        order = {"FAIL": 0, "WARN": 1, "SKIP": 2, "PASS": 3}
        variants.append(
            {"name": variant, "results": sorted(items, key=lambda i: order[i["verdict"]])}
        )
        for level in LEVELS:
            row: dict[str, Any] = {"variant": variant, "level": level}
            for verdict in verdicts:
                row[verdict] = sum(
                    1 for i in items if i["verdict"] == verdict and i["result"].level == level
                )
            counts.append(row)
    return _ENV.from_string(TEMPLATE).render(
        verdict="PASS" if report.ok else "FAIL",
        base_url=report.base_url,
        generated=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp or time.time())),
        strict=report.strict,
        summaries=report.summaries(),
        counts=counts,
        variants=variants,
    )


def write_html(report: Report, path: Path) -> None:
    path.write_text(html_report(report), encoding="utf-8")


def write_reports(report: Report, junit: Path | None, html: Path | None) -> list[Path]:
    """Writes the reports asked for; returns their paths."""
    written = []
    if junit is not None:
        write_junit(report, junit)
        written.append(junit)
    if html is not None:
        write_html(report, html)
        written.append(html)
    return written


def merged(reports: Iterable[Report]) -> Report:
    """One report holding the results of several runs (e.g. both variants)."""
    reports = list(reports)
    first = reports[0]
    variants = list(dict.fromkeys(v for r in reports for v in r.variants))
    combined = Report(
        variant=variants[0] if len(variants) == 1 else "both",
        base_url=first.base_url,
        strict=first.strict,
        variants=variants,
    )
    for report in reports:
        combined.results.extend(report.results)
    return combined


# --- before the run: can the suite run at all? -------------------------------------------------


def preflight(config: Config) -> tuple[int, Result] | None:
    """An exit code (3 or 4) and why, when the helpdesk cannot be reached or refuses the
    credentials; None when the run can go ahead (anything else is for the checks to judge)."""
    with context(config) as ctx:
        try:
            response = ctx.request_token()
        except httpx.HTTPError as exc:
            reason = f"cannot reach the token URL {config.token_url}: {type(exc).__name__}: {exc}"
            return 3, _setup_failure("helpdesk.reachable", reason, config, None)
        error = None
        with contextlib.suppress(ValueError, AttributeError):
            error = response.json().get("error")
        if response.status_code == 401 or (
            response.status_code == 400 and error in ("invalid_client", "unauthorized_client")
        ):
            reason = f"the token endpoint refused the client credentials ({response.status_code})"
            return 4, _setup_failure("token.credentials", reason, config, Exchange.of(response))
        try:
            ctx.http().get("/agents")
        except httpx.HTTPError as exc:
            reason = f"cannot reach the base URL {config.base_url}: {type(exc).__name__}: {exc}"
            return 3, _setup_failure("helpdesk.reachable", reason, config, None)
    return None


def _setup_failure(name: str, reason: str, config: Config, exchange: Exchange | None) -> Result:
    rule = "the suite can reach the helpdesk and get an access token with the given credentials"
    return Result(name, "failed", reason, exchange, "required", rule, config.variant)
