"""Runs the conformance checks against a helpdesk and builds the report."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import httpx

from findesk.conformance.checks import CHECKS, Check, Config, Exchange, Failed, Skipped, context

Outcome = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True)
class Result:
    """One check's outcome, why, and the request that showed it."""

    name: str
    outcome: Outcome
    reason: str
    request: Exchange | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "outcome": self.outcome,
            "reason": self.reason,
            "request": asdict(self.request) if self.request else None,
        }


@dataclass
class Report:
    variant: str
    base_url: str
    results: list[Result] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0

    def result(self, name: str) -> Result:
        return next(r for r in self.results if r.name == name)

    def failures(self) -> dict[str, Result]:
        return {r.name: r for r in self.results if r.outcome == "failed"}

    def summary(self) -> str:
        line = f"{self.count('passed')} passed, {self.count('failed')} failed"
        skipped = self.count("skipped")
        return f"{line}, {skipped} skipped" if skipped else line

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "base_url": self.base_url,
            "passed": self.count("passed"),
            "failed": self.count("failed"),
            "skipped": self.count("skipped"),
            "ok": self.ok,
            "summary": self.summary(),
            "results": [r.to_dict() for r in self.results],
        }


def run_checks(config: Config, checks: Iterable[Check] = CHECKS) -> Iterator[Result]:
    """Each check's result as soon as it is known; the checks share one token and some data."""
    with context(config) as ctx:
        for item in checks:
            if item.variant is not None and item.variant != config.variant:
                yield Result(item.name, "skipped", f"only for the {item.variant} variant")
                continue
            ctx.last = None
            try:
                item.run(ctx)
            except Failed as failure:
                yield Result(item.name, "failed", failure.reason, failure.exchange or ctx.last)
            except Skipped as skip:
                yield Result(item.name, "skipped", skip.reason, ctx.last)
            except httpx.HTTPError as exc:
                reason = f"no answer: {type(exc).__name__}: {exc}"
                yield Result(item.name, "failed", reason, ctx.last)
            except Exception as exc:  # a helpdesk answering nonsense must not stop the run
                reason = f"unexpected answer: {type(exc).__name__}: {exc}"
                yield Result(item.name, "failed", reason, ctx.last)
            else:
                yield Result(item.name, "passed", item.description, ctx.last)


def run(
    config: Config,
    checks: Iterable[Check] = CHECKS,
    on_result: Callable[[Result], None] | None = None,
) -> Report:
    report = Report(variant=config.variant, base_url=config.base_url)
    for result in run_checks(config, checks):
        report.results.append(result)
        if on_result is not None:
            on_result(result)
    return report
