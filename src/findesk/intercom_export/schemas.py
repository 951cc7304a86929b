"""The reconciliation report's JSON shape (``GET /api/v1/reports/reconciliation``)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel


class EvidenceOut(BaseModel):
    kind: str  # handover | human_reply | came_back | missing
    label: str
    at: datetime | None
    detail: str


class DisagreementOut(BaseModel):
    day: date
    intercom_conversation_id: str | None
    external_reference: str | None
    conversation_id: str | None  # findesk's, when it has the conversation
    intercom_claim: str  # Intercom's Fin resolution state
    intercom_resolved_at: datetime | None
    evidence: list[EvidenceOut]


class ReconciliationDayOut(BaseModel):
    day: date
    intercom_fin_resolutions: int
    confirmed: int
    disputed: int
    disagreements: list[DisagreementOut]


class ReconciliationTotalsOut(BaseModel):
    intercom_fin_resolutions: int
    confirmed: int
    disputed: int


class ReconciliationOut(BaseModel):
    start: date
    end: date
    timezone: str
    reopen_window_days: int
    computed_at: datetime
    exported_rows: int
    totals: ReconciliationTotalsOut
    days: list[ReconciliationDayOut]
