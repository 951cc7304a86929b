"""Runs the conformance checks against a helpdesk and builds the report.

Every result has a level: ``required`` (the contract says so: a failure fails the run) or
``recommended`` (findesk's stronger choices: reported apart, failing the run only when strict).
A required check that passes but misses one of findesk's choices gives a second result,
``<name>.recommended``, at the recommended level.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import httpx

from findesk.conformance.checks import (
    CHECKS,
    NOTES,
    Check,
    Config,
    Context,
    Exchange,
    Failed,
    Level,
    Skipped,
    context,
)

Outcome = Literal["passed", "failed", "skipped"]
LEVELS: tuple[Level, ...] = ("required", "recommended")


@dataclass(frozen=True)
class Result:
    """One check's outcome, why, and the request that showed it."""

    name: str
    outcome: Outcome
    reason: str
    request: Exchange | None = None
    level: Level = "required"
    rule: str = ""  # the check's rule in words (its description)
    variant: str = ""  # the contract variant the run used: rest or posts-only

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "variant": self.variant,
            "level": self.level,
            "rule": self.rule,
            "outcome": self.outcome,
            "reason": self.reason,
            "request": asdict(self.request) if self.request else None,
        }


@dataclass
class Report:
    variant: str
    base_url: str
    results: list[Result] = field(default_factory=list)
    strict: bool = False  # a recommended failure fails the run too

    def count(self, outcome: Outcome, level: Level | None = None) -> int:
        return sum(
            1 for r in self.results if r.outcome == outcome and (level is None or r.level == level)
        )

    @property
    def ok(self) -> bool:
        """No required check failed (and, when strict, no recommended one either)."""
        return self.count("failed", None if self.strict else "required") == 0

    def result(self, name: str) -> Result:
        return next(r for r in self.results if r.name == name)

    def failures(self, level: Level | None = None) -> dict[str, Result]:
        return {
            r.name: r
            for r in self.results
            if r.outcome == "failed" and (level is None or r.level == level)
        }

    def summary(self) -> str:
        parts = [
            f"{level}: {self.count('passed', level)} passed, {self.count('failed', level)} failed"
            for level in LEVELS
        ]
        skipped = self.count("skipped")
        line = "; ".join(parts) + (f"; {skipped} skipped" if skipped else "")
        return f"{line} => {'PASS' if self.ok else 'FAIL'}" + (" (strict)" if self.strict else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "base_url": self.base_url,
            "passed": self.count("passed"),
            "failed": self.count("failed"),
            "skipped": self.count("skipped"),
            "levels": {
                level: {
                    "passed": self.count("passed", level),
                    "failed": self.count("failed", level),
                    "skipped": self.count("skipped", level),
                }
                for level in LEVELS
            },
            "strict": self.strict,
            "ok": self.ok,
            "summary": self.summary(),
            "results": [r.to_dict() for r in self.results],
        }


def run_checks(config: Config, checks: Iterable[Check] = CHECKS) -> Iterator[Result]:
    """Each check's result as soon as it is known; the checks share one token and some data."""
    for item, result in _run_checks(config, checks):
        yield replace(result, rule=item.description, variant=config.variant)


def _run_checks(config: Config, checks: Iterable[Check]) -> Iterator[tuple[Check, Result]]:
    with context(config) as ctx:
        for item in checks:
            level = item.level_in(config)
            if item.variant is not None and item.variant != config.variant:
                skipped = f"only for the {item.variant} variant"
                yield item, Result(item.name, "skipped", skipped, None, level)
                continue
            ctx.last = None
            notes: list[tuple[str, Exchange | None]] = []
            token = NOTES.set(notes)
            try:
                result = _run_one(item, ctx, level)
            finally:
                NOTES.reset(token)
            if notes and level == "recommended" and result.outcome != "skipped":
                exchange = notes[0][1]
                reason = _joined(notes)
                if result.outcome == "failed":
                    reason, exchange = f"{reason}; {result.reason}", result.request
                result = Result(item.name, "failed", reason, exchange or ctx.last, level)
            yield item, result
            if notes and level == "required":
                exchange = notes[0][1]
                yield (
                    item,
                    Result(
                        f"{item.name}.recommended",
                        "failed",
                        _joined(notes),
                        exchange,
                        "recommended",
                    ),
                )


def _joined(notes: list[tuple[str, Exchange | None]]) -> str:
    return "; ".join(dict.fromkeys(reason for reason, _ in notes))


def _run_one(item: Check, ctx: Context, level: Level) -> Result:
    try:
        item.run(ctx)
    except Failed as failure:
        return Result(item.name, "failed", failure.reason, failure.exchange or ctx.last, level)
    except Skipped as skip:
        return Result(item.name, "skipped", skip.reason, ctx.last, level)
    except httpx.HTTPError as exc:
        reason = f"no answer: {type(exc).__name__}: {exc}"
        return Result(item.name, "failed", reason, ctx.last, level)
    except Exception as exc:  # a helpdesk answering nonsense must not stop the run
        reason = f"unexpected answer: {type(exc).__name__}: {exc}"
        return Result(item.name, "failed", reason, ctx.last, level)
    return Result(item.name, "passed", item.description, ctx.last, level)


def run(
    config: Config,
    checks: Iterable[Check] = CHECKS,
    on_result: Callable[[Result], None] | None = None,
    strict: bool = False,
) -> Report:
    report = Report(variant=config.variant, base_url=config.base_url, strict=strict)
    for result in run_checks(config, checks):
        report.results.append(result)
        if on_result is not None:
            on_result(result)
    return report
