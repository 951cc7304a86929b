"""Reconciliation: the Fin resolutions Intercom counts (its Reporting Data Export, stored by
``service``) against findesk's own evidence.

A stored row is joined to findesk's conversation by its external reference (findesk's
conversation id), else by ``conversations.object_id`` = Intercom's conversation id. A row
counts as a Fin resolution when its ``fin_ai_agent_resolution_state`` is one of
``FIN_RESOLVED``. Each is **confirmed** unless findesk's durable history or messages contradict
it, then **disputed**, with the evidence:

* ``handover``: the conversation was handed over (a ``handover`` history row), whenever;
* ``human_reply``: a human agent wrote a public reply in it, whenever;
* ``came_back``: the end user wrote after Fin's resolution, or opened another conversation
  (as the reports count a reopen), within ``FINDESK_REPORTS_REOPEN_WINDOW_DAYS``. Fin's
  resolution is the last public message of Fin's before Intercom's resolution time (Intercom
  gives whole seconds: before it plus one second), or Fin's last public message when Intercom
  gives no time;
* ``missing``: findesk has no such conversation.

Days are those the conversations started on, in ``FINDESK_REPORTS_TIMEZONE``; every day of the
range is listed (a range longer than ``LISTED_DAYS``: only the days with exported rows; a range
that ends before it starts: none).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from findesk.intercom_export import repository
from findesk.intercom_export.models import IntercomReportRow
from findesk.intercom_export.service import CONVERSATION
from findesk.kit.settings import Settings
from findesk.kit.timeutil import as_utc, isoformat, utcnow

EARLIEST = date(1970, 1, 1)
LATEST = date(9999, 12, 30)
LISTED_DAYS = 400  # a longer range lists only the days that have exported rows
FIN_RESOLVED = frozenset({"assumed_resolution", "confirmed_resolution", "resolved"})
EvidenceKind = Literal["handover", "human_reply", "came_back", "missing"]
EVIDENCE_LABELS: dict[str, str] = {
    "handover": "Handed over to the team",
    "human_reply": "A human agent replied",
    "came_back": "The end user came back",
    "missing": "findesk has no such conversation",
}
CSV_COLUMNS = (
    "day",
    "intercom_conversation_id",
    "external_reference",
    "conversation_id",
    "intercom_claim",
    "intercom_resolved_at",
    "evidence",
    "evidence_at",
    "detail",
)


@dataclass(frozen=True)
class Evidence:
    kind: EvidenceKind
    at: datetime | None
    detail: str

    @property
    def label(self) -> str:
        return EVIDENCE_LABELS[self.kind]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "label": self.label,
            "at": isoformat(self.at) if self.at is not None else None,
            "detail": self.detail,
        }


@dataclass
class Disagreement:
    day: date
    intercom_conversation_id: str | None
    external_reference: str | None
    conversation_id: str | None  # findesk's, when found
    claim: str  # Intercom's resolution state
    claimed_at: datetime | None
    evidence: list[Evidence]

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "intercom_conversation_id": self.intercom_conversation_id,
            "external_reference": self.external_reference,
            "conversation_id": self.conversation_id,
            "intercom_claim": self.claim,
            "intercom_resolved_at": isoformat(self.claimed_at) if self.claimed_at else None,
            "evidence": [e.to_dict() for e in self.evidence],
        }


@dataclass
class DayReconciliation:
    day: date
    intercom_fin_resolutions: int = 0
    confirmed: int = 0
    disputed: int = 0
    disagreements: list[Disagreement] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "intercom_fin_resolutions": self.intercom_fin_resolutions,
            "confirmed": self.confirmed,
            "disputed": self.disputed,
            "disagreements": [d.to_dict() for d in self.disagreements],
        }


@dataclass
class Reconciliation:
    start: date
    end: date
    timezone: str
    reopen_window_days: int
    computed_at: datetime
    days: list[DayReconciliation]
    exported_rows: int  # Intercom's rows in the range (all, not only Fin's resolutions)

    @property
    def intercom_fin_resolutions(self) -> int:
        return sum(d.intercom_fin_resolutions for d in self.days)

    @property
    def confirmed(self) -> int:
        return sum(d.confirmed for d in self.days)

    @property
    def disputed(self) -> int:
        return sum(d.disputed for d in self.days)

    @property
    def disagreements(self) -> list[Disagreement]:
        return [item for d in self.days for item in d.disagreements]

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "timezone": self.timezone,
            "reopen_window_days": self.reopen_window_days,
            "computed_at": isoformat(self.computed_at),
            "exported_rows": self.exported_rows,
            "totals": {
                "intercom_fin_resolutions": self.intercom_fin_resolutions,
                "confirmed": self.confirmed,
                "disputed": self.disputed,
            },
            "days": [d.to_dict() for d in self.days],
        }


def reconcile(session: Session, settings: Settings, start: date, end: date) -> Reconciliation:
    """The days ``start`` to ``end`` (both included, in the reports' time zone)."""
    zone = ZoneInfo(settings.reports_timezone)
    window = timedelta(days=settings.reports_reopen_window_days)
    # Any dates may be asked for; nothing was exported before 1970 or after 9999.
    first, last = max(start, EARLIEST), min(end, LATEST)
    rows: Sequence[IntercomReportRow] = []
    if first <= last:
        lower = datetime.combine(first, time(), tzinfo=zone)
        upper = datetime.combine(last + timedelta(days=1), time(), tzinfo=zone)
        rows = repository.rows_between(session, CONVERSATION, lower, upper)
    days: dict[date, DayReconciliation] = {}
    if first <= last and (last - first).days < LISTED_DAYS:
        days = {
            first + timedelta(days=n): DayReconciliation(first + timedelta(days=n))
            for n in range((last - first).days + 1)
        }
    claims = [r for r in rows if (r.fin_resolution_state or "") in FIN_RESOLVED]
    by_id, by_object = repository.conversations_by_reference(
        session,
        [r.external_reference for r in claims if r.external_reference],
        [r.intercom_conversation_id for r in claims if r.intercom_conversation_id],
    )

    def findesk_id(row: IntercomReportRow) -> str | None:
        if row.external_reference and row.external_reference in by_id:
            return by_id[row.external_reference]
        if row.intercom_conversation_id:
            return by_object.get(row.intercom_conversation_id)
        return None

    found = sorted({cid for cid in map(findesk_id, claims) if cid is not None})
    handed: dict[str, list[datetime]] = defaultdict(list)
    for handed_id, at in repository.handovers(session, found):
        handed[handed_id].append(as_utc(at))
    messages: dict[str, list[tuple[str, bool, str | None, datetime]]] = defaultdict(list)
    for message_of, author_type, by_fin, name, at in repository.public_messages(session, found):
        messages[message_of].append((author_type, by_fin, name, as_utc(at)))
    opened: dict[str, list[datetime]] = defaultdict(list)
    for of, at in repository.others_opened(session, found):
        opened[of].append(as_utc(at))

    for row in claims:
        assert row.started_at is not None  # rows_between picked it by started_at
        day = as_utc(row.started_at).astimezone(zone).date()
        tally = days.setdefault(day, DayReconciliation(day))
        tally.intercom_fin_resolutions += 1
        cid = findesk_id(row)
        claimed_at = as_utc(row.fin_resolved_at) if row.fin_resolved_at else None
        evidence: list[Evidence] = []
        if cid is None:
            evidence.append(
                Evidence(
                    "missing",
                    None,
                    f"no conversation {row.external_reference or row.intercom_conversation_id}",
                )
            )
        else:
            evidence.extend(
                Evidence("handover", at, "Fin handed the conversation over") for at in handed[cid]
            )
            history = messages[cid]
            evidence.extend(
                Evidence("human_reply", at, f"{name or 'An agent'} replied")
                for author_type, by_fin, name, at in history
                if author_type == "agent" and not by_fin
            )
            fin_times = [
                at for author_type, by_fin, _n, at in history if author_type == "agent" and by_fin
            ]
            if claimed_at is not None:
                fin_times = [at for at in fin_times if at < claimed_at + timedelta(seconds=1)]
            anchor = max(fin_times, default=claimed_at)
            if anchor is not None:
                back = [
                    at
                    for author_type, _b, _n, at in history
                    if author_type == "end_user" and anchor < at <= anchor + window
                ]
                if back:
                    evidence.append(
                        Evidence(
                            "came_back",
                            back[0],
                            f"the end user wrote {len(back)} message(s) after Fin's resolution",
                        )
                    )
                again = sorted(at for at in opened[cid] if anchor < at <= anchor + window)
                if again:
                    evidence.append(
                        Evidence(
                            "came_back",
                            again[0],
                            "the end user opened another conversation after Fin's resolution",
                        )
                    )
        if evidence:
            tally.disputed += 1
            evidence.sort(key=lambda e: (e.at is None, e.at or datetime.min))
            tally.disagreements.append(
                Disagreement(
                    day=day,
                    intercom_conversation_id=row.intercom_conversation_id,
                    external_reference=row.external_reference,
                    conversation_id=cid,
                    claim=row.fin_resolution_state or "",
                    claimed_at=claimed_at,
                    evidence=evidence,
                )
            )
        else:
            tally.confirmed += 1
    return Reconciliation(
        start=start,
        end=end,
        timezone=settings.reports_timezone,
        reopen_window_days=settings.reports_reopen_window_days,
        computed_at=utcnow(),
        days=[days[day] for day in sorted(days)],
        exported_rows=len(rows),
    )


def to_csv(result: Reconciliation) -> str:
    """One line per piece of evidence of each disagreement (``CSV_COLUMNS``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for item in result.disagreements:
        for evidence in item.evidence:
            writer.writerow(
                [
                    item.day.isoformat(),
                    item.intercom_conversation_id or "",
                    item.external_reference or "",
                    item.conversation_id or "",
                    item.claim,
                    isoformat(item.claimed_at) if item.claimed_at else "",
                    evidence.kind,
                    isoformat(evidence.at) if evidence.at else "",
                    evidence.detail,
                ]
            )
    return out.getvalue()
