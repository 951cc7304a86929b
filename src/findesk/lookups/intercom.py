"""Lookups published to Intercom as Data Connectors (``findesk connectors sync``, the admin
page's "Sync to Intercom"): the connector sync (``findesk.connectors``) with findesk's lookups
as its definitions.

Each connector Intercom holds carries its own token, labelled ``INTERCOM_TOKEN_LABEL``. findesk
keeps only hashes, so when the sync creates or recreates a connector it mints a new token; the
lookup's earlier Intercom tokens are revoked in the same transaction, so a connector that was
deleted on Intercom's side leaves no live credential behind. Tokens an admin issued by hand are
left alone.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from findesk.connectors.schemas import ConnectorDefinition
from findesk.connectors.service import ConnectorSyncSummary, Progress, sync_connectors
from findesk.kit.db import Database
from findesk.kit.settings import Settings
from findesk.lookups import service

INTERCOM_TOKEN_LABEL = "Intercom Data Connector"  # noqa: S105 (a label, not a secret)


def mint_token(session: Session, lookup_id: str) -> str:
    """A fresh token for the lookup's connector; the earlier connector tokens stop working."""
    for token in service.tokens_of(session, lookup_id):
        if token.label == INTERCOM_TOKEN_LABEL and token.revoked_at is None:
            service.revoke_token(session, token.id)
    return service.issue_token(session, lookup_id, INTERCOM_TOKEN_LABEL)[1]


def sync(
    db: Database, settings: Settings, progress: Progress | None = None, **options: Any
) -> ConnectorSyncSummary:
    """One sync of every enabled lookup with Intercom's Data Connectors."""

    def definitions(session: Session) -> list[ConnectorDefinition]:
        return service.connector_definitions(session, settings.base_url)

    return sync_connectors(db, settings, definitions, mint_token, progress, **options)
