"""The accessibility check of a page in the browser: axe-core (the copy vendored in the
axe-playwright-python wheel; nothing is fetched) run in the page as it is, its serious and
critical violations returned as lines a person can act on."""

from __future__ import annotations

from axe_playwright_python.base import AXE_SCRIPT
from playwright.sync_api import Page

BLOCKING = frozenset({"serious", "critical"})


def blocking_violations(page: Page) -> list[str]:
    """One line per element that breaks a serious or critical axe rule (WCAG 2.x A and AA and
    axe's best practices): the rule, what it asks and where."""
    # Evaluated through the DevTools protocol, so the page's CSP does not stop it.
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SCRIPT)
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{rule['id']} ({rule['impact']}): {rule['help']} | {' '.join(map(str, node['target']))}"
        f" | {node['html'][:160]}"
        for rule in results["violations"]
        if rule["impact"] in BLOCKING
        for node in rule["nodes"]
    ]


def assert_accessible(page: Page, what: str) -> None:
    found = blocking_violations(page)
    assert not found, f"{what} ({page.url}):\n" + "\n".join(found)
