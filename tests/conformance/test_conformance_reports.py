"""The conformance suite's reports for CI (JUnit XML, HTML) and its exit codes, from real runs
against findesk and against findesk with one rule broken (the ``Breaker`` of test_conformance)."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from support.server import LiveServer, free_port
from test_conformance import RESPONSE_REWRITES, Breaker
from test_conformance import broken as broken  # the fixture: findesk behind a Breaker

from findesk.conformance.checks import Config
from findesk.conformance.reports import html_report, junit_xml, merged
from findesk.conformance.runner import run

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def conformance(
    base_url: str, client_id: str, secret: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable, "-m", "findesk", "conformance",
            "--base-url", f"{base_url}/api/fin", "--token-url", f"{base_url}/oauth/token",
            "--client-id", client_id, "--client-secret", secret, *extra,
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def run_cli(live: LiveServer, *extra: str) -> subprocess.CompletedProcess[str]:
    client_id, secret = live.new_oauth_client("conformance")
    return conformance(live.base_url, client_id, secret, *extra)


def cases(tree: ET.Element, variant: str | None = None) -> dict[str, ET.Element]:
    """The testcases by name (of the variant's testsuite, when given)."""
    if variant is not None:
        (tree,) = [s for s in tree.iter("testsuite") if s.get("name") == f"conformance ({variant})"]
    return {case.get("name", ""): case for case in tree.iter("testcase")}


class Tags(HTMLParser):
    """Every element and attribute a browser would build from the page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(name for name, _ in attrs)


def parsed(page: str) -> Tags:
    tags = Tags()
    tags.feed(page)
    return tags


# --- a passing run ------------------------------------------------------------------------------


def test_reports_of_a_passing_run(server: LiveServer, tmp_path: Path) -> None:
    junit, html = tmp_path / "conformance.xml", tmp_path / "conformance.html"
    done = run_cli(server, "--variant", "rest", "--junit", str(junit), "--html", str(html))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Wrote {junit}" in done.stdout and f"Wrote {html}" in done.stdout
    passed = sum(line.startswith("PASS ") for line in done.stdout.splitlines())
    skipped = sum(line.startswith("SKIP ") for line in done.stdout.splitlines())

    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    assert root.get("tests") == str(passed + skipped) and root.get("failures") == "0"
    assert root.get("skipped") == str(skipped)
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "conformance (rest)" and suite.get("tests") == str(passed + skipped)
    by_name = cases(root)
    assert by_name["user.get_unknown"].get("classname") == "conformance.rest.required"
    assert by_name["conversation.create_concurrent"].get("classname") == (
        "conformance.rest.recommended"
    )
    assert not list(root.iter("failure"))
    out = by_name["token.bad_secret"].findtext("system-out") or ""
    assert "rule: a wrong client secret gives no token" in out
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["base_url"] == f"{server.base_url}/api/fin"
    assert properties["summary"].endswith("=> PASS")

    page = html.read_text()
    assert '<span class="verdict PASS">PASS</span>' in page
    assert "required: " in page and "=&gt; PASS" in page  # the summary line, escaped
    assert "a wrong client secret gives no token" in page  # the rule in words
    assert page.count('<details class="check PASS"') == passed
    tags = parsed(page)  # one file: nothing to fetch from anywhere
    assert not {"script", "link", "img", "iframe"} & set(tags.tags)
    assert not {"src", "href"} & set(tags.attributes)


def test_one_report_holds_both_variants(server: LiveServer) -> None:
    client_id, secret = server.new_oauth_client()
    reports = [
        run(
            Config(
                base_url=f"{server.base_url}/api/fin",
                token_url=f"{server.base_url}/oauth/token",
                client_id=client_id,
                client_secret=secret,
                variant="rest" if variant == "rest" else "posts-only",
            )
        )
        for variant in ("rest", "posts-only")
    ]
    both = merged(reports)
    root = junit_xml(both).getroot()
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"conformance (rest)", "conformance (posts-only)"}
    assert int(root.get("tests", "0")) == len(reports[0].results) + len(reports[1].results)
    posts_only = cases(suites["conformance (posts-only)"])
    assert posts_only["envelope.success"].get("classname") == "conformance.posts-only.required"
    assert posts_only["envelope.success"].find("skipped") is None
    # a posts-only check in the REST run is skipped with its reason
    skipped = cases(suites["conformance (rest)"])["envelope.success"].find("skipped")
    assert skipped is not None and skipped.get("message") == "only for the posts-only variant"
    page = html_report(both)
    assert "<h2>Variant: rest</h2>" in page and "<h2>Variant: posts-only</h2>" in page
    assert "<td>posts-only</td><td>required</td>" in page


# --- a broken helpdesk --------------------------------------------------------------------------


def _hostile(obj: dict[str, Any]) -> None:
    """A conversation whose status is markup (a required failure that quotes it)."""
    if obj.get("status") == "open" and "user" in obj:
        obj["status"] = HOSTILE
        obj["title"] = HOSTILE


@pytest.fixture
def hostile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(RESPONSE_REWRITES, "hostile", _hostile)


def _cli_broken(
    broken: tuple[LiveServer, Breaker], mode: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    live, breaker = broken
    breaker.mode = mode
    try:
        return run_cli(live, *extra)
    finally:
        breaker.mode = None


@pytest.mark.usefixtures("hostile")
def test_reports_show_a_failing_check_and_keep_its_answer_inert(
    broken: tuple[LiveServer, Breaker], tmp_path: Path
) -> None:
    junit, html = tmp_path / "conformance.xml", tmp_path / "conformance.html"
    done = _cli_broken(broken, "hostile", "--junit", str(junit), "--html", str(html))
    assert done.returncode == 1, done.stdout + done.stderr
    base_url = broken[0].base_url

    root = ET.parse(junit).getroot()
    assert int(root.get("failures", "0")) >= 1
    assert {s.get("name") for s in root.iter("testsuite")} == {
        "conformance (rest)",
        "conformance (posts-only)",
    }  # the default run covers both variants findesk serves: one report
    for variant, path in (("rest", "conversation"), ("posts-only", "create_conversation")):
        failure = cases(root, variant)["conversation.create"].find("failure")
        assert failure is not None
        assert failure.get("message", "").startswith("conversation.status must be one of")
        assert failure.get("type") == "required check failed"
        body = failure.text or ""
        assert f"POST {base_url}/api/fin/{path}" in body
        assert "-> 201" in body and HOSTILE in body  # the answer that decided it, as text
        assert "rule: Create conversation" in body

    page = html.read_text()
    assert '<span class="verdict FAIL">FAIL</span>' in page
    assert '<details class="check FAIL" open>' in page
    assert "conversation.status must be one of" in page
    assert f"POST {base_url}/api/fin/conversation" in page
    # the helpdesk's markup is shown as text, never as markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    tags = parsed(page)
    assert "script" not in tags.tags and "img" not in tags.tags
    assert not [name for name in tags.attributes if name.startswith("on")]
    assert "default-src 'none'" in page  # and a policy that would stop it anyway


def test_a_recommended_failure_is_a_warning_in_junit_unless_strict(
    broken: tuple[LiveServer, Breaker], tmp_path: Path
) -> None:
    lenient_xml, strict_xml = tmp_path / "lenient.xml", tmp_path / "strict.xml"
    rest = ("--variant", "rest")  # (posts-only: the Breaker drops after_id from the body)
    lenient = _cli_broken(broken, "no_after_id", *rest, "--junit", str(lenient_xml))
    strict = _cli_broken(broken, "no_after_id", *rest, "--strict", "--junit", str(strict_xml))
    assert lenient.returncode == 0, lenient.stdout
    assert strict.returncode == 1, strict.stdout

    lenient_root = ET.parse(lenient_xml).getroot()
    assert lenient_root.get("failures") == "0"  # the CI build stays green
    case = cases(lenient_root, "rest")["messages.after_id.recommended"]
    assert case.get("classname") == "conformance.rest.recommended"
    warning = case.find("skipped")
    assert warning is not None and warning.get("message", "").startswith("warning: expected only")
    assert "GET " in (case.findtext("system-out") or "")

    strict_root = ET.parse(strict_xml).getroot()
    failure = cases(strict_root, "rest")["messages.after_id.recommended"].find("failure")
    assert failure is not None and failure.get("message", "").startswith("expected only")
    assert failure.get("type") == "recommended check failed"
    assert "after_id=" in (failure.text or "")
    assert strict_root.get("failures") == "1"


# --- exit codes ---------------------------------------------------------------------------------


def test_usage_errors_exit_2() -> None:
    bad_variant = conformance("http://127.0.0.1:9", "c", "s", "--variant", "soap")
    assert bad_variant.returncode == 2, bad_variant.stdout + bad_variant.stderr
    assert "--variant must be rest, posts-only, both or auto" in bad_variant.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "findesk", "conformance", "--base-url", "http://127.0.0.1:9"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert missing.returncode == 2, missing.stderr


def test_an_unreachable_helpdesk_exits_3_with_a_report(tmp_path: Path) -> None:
    junit = tmp_path / "conformance.xml"
    nobody = f"http://127.0.0.1:{free_port()}"
    done = conformance(nobody, "c", "s", "--junit", str(junit))
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"cannot reach the token URL {nobody}/oauth/token" in done.stderr
    failure = cases(ET.parse(junit).getroot())["helpdesk.reachable"].find("failure")
    assert failure is not None and "cannot reach" in failure.get("message", "")


def test_refused_credentials_exit_4(server: LiveServer, tmp_path: Path) -> None:
    client_id, _ = server.new_oauth_client()
    html = tmp_path / "conformance.html"
    done = conformance(server.base_url, client_id, "not-the-secret", "--html", str(html))
    assert done.returncode == 4, done.stdout + done.stderr
    assert "refused the client credentials (401)" in done.stderr
    assert not [line for line in done.stdout.splitlines() if line.startswith("PASS")]
    page = html.read_text()
    assert "token.credentials" in page and f"POST {server.base_url}/oauth/token" in page
