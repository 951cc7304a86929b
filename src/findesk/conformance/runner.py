"""Runs the conformance checks against a helpdesk and builds the report.

Every result has a level: ``required`` (the contract says so: a failure fails the run) or
``recommended`` (findesk's stronger choices: reported apart, failing the run only when strict).
A required check that passes but misses one of findesk's choices gives a second result,
``<name>.recommended``, at the recommended level.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import httpx

# Imported for their registrations: the signing and bad-input checks join CHECKS.
from findesk.conformance import input_checks, signing_checks  # noqa: F401
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
from findesk.fin_api.client import FinApiClient, Variant

VARIANTS: tuple[Variant, ...] = ("rest", "posts-only")

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
    """One run's results: of one variant, or of several (``variants``: each result says which
    one it ran in). With several, ``failures()`` keys are ``"<name> [<variant>]"``."""

    variant: str  # the variant, or "both" when the run covered several
    base_url: str
    results: list[Result] = field(default_factory=list)
    strict: bool = False  # a recommended failure fails the run too
    variants: list[str] = field(default_factory=list)  # the variants run, in order

    def __post_init__(self) -> None:
        if not self.variants:
            self.variants = [self.variant]

    @property
    def several(self) -> bool:
        return len(self.variants) > 1

    def _of(self, variant: str | None) -> list[Result]:
        return [r for r in self.results if variant is None or r.variant == variant]

    def count(
        self, outcome: Outcome, level: Level | None = None, variant: str | None = None
    ) -> int:
        return sum(
            1
            for r in self._of(variant)
            if r.outcome == outcome and (level is None or r.level == level)
        )

    @property
    def ok(self) -> bool:
        """No required check failed (and, when strict, no recommended one either)."""
        return self.count("failed", None if self.strict else "required") == 0

    def ok_in(self, variant: str) -> bool:
        return self.count("failed", None if self.strict else "required", variant) == 0

    def result(self, name: str, variant: str | None = None) -> Result:
        """The result of check ``name`` (in ``variant``; default: the first variant run)."""
        wanted = variant or self.variants[0]
        return next(r for r in self.results if r.name == name and r.variant in (wanted, ""))

    def label(self, result: Result) -> str:
        """The result's name, with its variant when the report covers several."""
        return f"{result.name} [{result.variant}]" if self.several else result.name

    def failures(self, level: Level | None = None, variant: str | None = None) -> dict[str, Result]:
        return {
            self.label(r): r
            for r in self._of(variant)
            if r.outcome == "failed" and (level is None or r.level == level)
        }

    def summary(self, variant: str | None = None) -> str:
        parts = [
            f"{level}: {self.count('passed', level, variant)} passed, "
            f"{self.count('failed', level, variant)} failed"
            for level in LEVELS
        ]
        skipped = self.count("skipped", variant=variant)
        ok = self.ok if variant is None else self.ok_in(variant)
        line = "; ".join(parts) + (f"; {skipped} skipped" if skipped else "")
        return f"{line} => {'PASS' if ok else 'FAIL'}" + (" (strict)" if self.strict else "")

    def summaries(self) -> list[str]:
        """One line per variant (when several were run), then the whole run's line."""
        lines = [f"{v}: {self.summary(v)}" for v in self.variants] if self.several else []
        return [*lines, self.summary()]

    def _counts(self, variant: str | None = None) -> dict[str, Any]:
        return {
            "passed": self.count("passed", variant=variant),
            "failed": self.count("failed", variant=variant),
            "skipped": self.count("skipped", variant=variant),
            "levels": {
                level: {
                    "passed": self.count("passed", level, variant),
                    "failed": self.count("failed", level, variant),
                    "skipped": self.count("skipped", level, variant),
                }
                for level in LEVELS
            },
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "variants": list(self.variants),
            "base_url": self.base_url,
            **self._counts(),
            "by_variant": {
                v: {**self._counts(v), "ok": self.ok_in(v), "summary": self.summary(v)}
                for v in self.variants
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
    variants: Sequence[Variant] | None = None,
) -> Report:
    """Every check in ``config.variant``, or in each of ``variants`` one after the other (one
    report; each result says its variant)."""
    chosen = list(variants or [config.variant])
    report = Report(
        variant=chosen[0] if len(chosen) == 1 else "both",
        base_url=config.base_url,
        strict=strict,
        variants=list(chosen),
    )
    listed = list(checks)
    for variant in chosen:
        for result in run_checks(replace(config, variant=variant), listed):
            report.results.append(result)
            if on_result is not None:
                on_result(result)
    return report


def served_variants(config: Config) -> list[Variant]:
    """The variants the helpdesk serves, found by one read in each (Get agents with a token);
    none when neither answers."""
    found: list[Variant] = []
    with context(config) as ctx:
        try:
            token = ctx.token
        except Skipped:
            return []
        for variant in VARIANTS:
            api = FinApiClient(ctx.http(headers={"Authorization": f"Bearer {token}"}), variant)
            try:
                reply = api.get_agents()
            except httpx.HTTPError:
                continue
            if reply.ok and isinstance(reply.data, list):
                found.append(variant)
    return found
