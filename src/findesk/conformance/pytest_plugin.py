"""The conformance suite inside your own pytest run: each check becomes a test item.

Enable it in a ``conftest.py`` (it has no auto-loading entry point)::

    pytest_plugins = ["findesk.conformance.pytest_plugin"]

and configure it in ``pytest.ini`` / ``pyproject.toml`` (``[pytest]``), on the command line or in
the environment (the command line wins, then the environment, then the ini file):

Each setting ``<name>`` is an ini value ``conformance_<name>``, an option
``--conformance-<name>`` (``_`` as ``-``) or an environment variable
``FINDESK_CONFORMANCE_<NAME>``: ``base_url``, ``token_url``, ``client_id``, ``client_secret``,
``variant``, ``token_format``, ``fin_agent_id``, ``token_auth``, ``signing_secret``,
``signature_scheme`` and ``strict`` (the flag ``--conformance-strict``).

Without a base URL the plugin adds nothing. ``conformance_variant`` is ``rest``, ``posts-only``
or both (``rest posts-only``): one item per check and variant, ``conformance::<check>[<variant>]``.
A failed required check fails its item (the reason, the rule and the request and response that
showed it); a failed recommended one (findesk's stronger choice, or the ``.recommended`` finding
of a required check) is a :class:`ConformanceWarning` in the warnings summary and the item passes,
unless strict; a skipped check is skipped. The checks share one access token and some data,
so they run in order, one after the other.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from findesk.conformance.checks import CHECKS, Check, Config
from findesk.conformance.reports import _exchange_text
from findesk.conformance.runner import Report, Result, run_checks

SETTINGS = {
    "base_url": "Base URL of the helpdesk's Fin API, e.g. https://h/api/fin",
    "token_url": "The helpdesk's OAuth token endpoint",
    "client_id": "OAuth client id Fin uses",
    "client_secret": "OAuth client secret Fin uses (better in the environment)",
    "variant": "rest, posts-only, or both (rest posts-only)",
    "token_format": "Token request body: json or form",
    "fin_agent_id": "Agent that represents Fin (default: the first agent)",
    "token_auth": "Where Fin sends the client credentials: body or basic",
    "signing_secret": "The HMAC key Fin signs with (better in the environment)",
    "signature_scheme": "What is signed: body (as Fin sends) or bound",
}
VARIANTS = ("rest", "posts-only")
RUN_KEY = pytest.StashKey["dict[str, _VariantRun]"]()


class ConformanceWarning(UserWarning):
    """A recommended check failed: findesk's stronger choice, not the contract."""


class ConformanceFailure(Exception):
    """A check failed: shown as its reason and evidence, not as a traceback."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "the Fin Custom Helpdesk conformance suite")
    for name, help_text in SETTINGS.items():
        group.addoption(f"--conformance-{name.replace('_', '-')}", dest=f"conformance_{name}",
                        default=None, help=help_text)  # fmt: skip
        parser.addini(f"conformance_{name}", help_text, default=None)
    help_strict = "Recommended checks fail their items too"
    group.addoption("--conformance-strict", dest="conformance_strict", action="store_true",
                    default=None, help=help_strict)  # fmt: skip
    parser.addini("conformance_strict", help_strict, type="bool", default=False)


def _setting(config: pytest.Config, name: str) -> str | None:
    value = config.getoption(f"conformance_{name}", None)
    if value is None:
        value = os.environ.get(f"FINDESK_CONFORMANCE_{name.upper()}")
    if value is None:
        value = config.getini(f"conformance_{name}")
    return str(value).strip() if value not in (None, "") else None


def _strict(config: pytest.Config) -> bool:
    if config.getoption("conformance_strict", None):
        return True
    env = os.environ.get("FINDESK_CONFORMANCE_STRICT")
    if env is not None:
        return env.strip().lower() in ("1", "true", "yes", "on")
    return bool(config.getini("conformance_strict"))


def configs(config: pytest.Config) -> list[Config]:
    """The suite's configuration for each variant; empty when the plugin is not configured."""
    base_url = _setting(config, "base_url")
    if base_url is None:
        return []
    missing = [n for n in ("token_url", "client_id", "client_secret") if not _setting(config, n)]
    if missing:
        names = ", ".join(f"conformance_{n}" for n in missing)
        raise pytest.UsageError(f"the conformance plugin needs {names} (ini, option or env)")
    variants = (_setting(config, "variant") or "rest").replace(",", " ").split()
    if "both" in variants:
        variants = list(VARIANTS)
    token_format = _setting(config, "token_format") or "json"
    token_auth = _setting(config, "token_auth") or "body"
    scheme = _setting(config, "signature_scheme") or "body"
    if (
        any(v not in VARIANTS for v in variants)
        or token_format not in ("json", "form")
        or token_auth not in ("body", "basic")
        or scheme not in ("body", "bound")
    ):
        raise pytest.UsageError(
            "conformance_variant must be rest, posts-only or both; conformance_token_format "
            "json or form; conformance_token_auth body or basic; conformance_signature_scheme "
            "body or bound"
        )
    return [
        Config(
            base_url=base_url,
            token_url=str(_setting(config, "token_url")),
            client_id=str(_setting(config, "client_id")),
            client_secret=str(_setting(config, "client_secret")),
            variant="rest" if variant == "rest" else "posts-only",
            token_format="json" if token_format == "json" else "form",  # noqa: S105
            fin_agent_id=_setting(config, "fin_agent_id"),
            token_auth="basic" if token_auth == "basic" else "body",  # noqa: S105
            signing_secret=_setting(config, "signing_secret"),
            signature_scheme="bound" if scheme == "bound" else "body",
        )
        for variant in dict.fromkeys(variants)
    ]


@dataclass
class _VariantRun:
    """One variant's run, advanced check by check as the items ask for their results."""

    config: Config
    strict: bool
    results: dict[str, list[Result]] = field(default_factory=dict)
    report: Report | None = None
    _results: Iterator[Result] | None = None

    def results_of(self, check: str, selected: list[Check]) -> list[Result]:
        if self._results is None:
            self._results = run_checks(self.config, selected)
            self.report = Report(self.config.variant, self.config.base_url, strict=self.strict)
        # A required check's ".recommended" finding comes right after it: read on until the
        # next check's result (kept for its item) or the end.
        while not self._done(check):
            result = next(self._results, None)
            if result is None:
                break
            assert self.report is not None
            self.report.results.append(result)
            self.results.setdefault(_check_of(result.name), []).append(result)
        return self.results.get(check, [])

    def _done(self, check: str) -> bool:
        if check not in self.results:
            return False
        later = list(self.results)
        return later.index(check) < len(later) - 1


def _check_of(name: str) -> str:
    return name.removesuffix(".recommended")


class ConformanceItem(pytest.Item):
    def __init__(self, *, check: Check, run: _VariantRun, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.run = run
        self.add_marker(pytest.mark.conformance)

    def runtest(self) -> None:
        selected = [
            item.check
            for item in self.session.items
            if isinstance(item, ConformanceItem) and item.run is self.run
        ]
        results = self.run.results_of(self.check.name, selected)
        if not results:
            raise ConformanceFailure(f"{self.check.name}: the suite gave no result")
        failures: list[str] = []
        for result in results:
            self.user_properties.append((f"{result.name}.outcome", result.outcome))
            self.user_properties.append((f"{result.name}.level", result.level))
            if result.outcome != "failed":
                continue
            text = _failure_text(result)
            if result.level == "required" or self.run.strict:
                failures.append(text)
            else:
                warnings.warn(ConformanceWarning(text), stacklevel=1)
        if failures:
            raise ConformanceFailure("\n\n".join(failures))
        main = results[0]
        if main.outcome == "skipped":
            pytest.skip(main.reason)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ConformanceFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"conformance: {self.name}"


def _failure_text(result: Result) -> str:
    return (
        f"{result.name} ({result.level}, {result.variant}): {result.reason}\n"
        f"rule: {result.rule}\n{_exchange_text(result.request)}"
    )


class ConformanceCollector(pytest.Collector):
    def __init__(self, *, configs: list[Config], strict: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.configs = configs
        self.strict = strict

    def collect(self) -> list[pytest.Item]:
        items: list[pytest.Item] = []
        for config in self.configs:
            run = _VariantRun(config, self.strict)
            self.config.stash.setdefault(RUN_KEY, {})[config.variant] = run
            for check in CHECKS:
                if check.variant is not None and check.variant != config.variant:
                    continue  # the other variant's check: not an item here
                items.append(
                    ConformanceItem.from_parent(
                        self, name=f"{check.name}[{config.variant}]", check=check, run=run
                    )
                )
        return items


CONFIGS_KEY = pytest.StashKey["list[Config]"]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance: a check of the Fin conformance suite")
    config.stash[CONFIGS_KEY] = configs(config)  # a setting missing or wrong: a usage error now


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """The checks are added after the project's own tests (before -k and -m select)."""
    found = config.stash.get(CONFIGS_KEY, [])
    if not found:
        return
    collector = ConformanceCollector.from_parent(
        session, name="conformance", nodeid="conformance", configs=found, strict=_strict(config)
    )
    # Reported as collected (the "collected N items" count), then added to the run.
    report = collector.ihook.pytest_make_collect_report(collector=collector)
    session.ihook.pytest_collectreport(report=report)
    items.extend(item for item in report.result if isinstance(item, pytest.Item))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    runs = config.stash.get(RUN_KEY, {})
    for variant, run in runs.items():
        if run.report is not None:
            terminalreporter.write_line(f"findesk conformance ({variant}): {run.report.summary()}")
