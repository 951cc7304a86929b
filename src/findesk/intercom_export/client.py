"""A small client of Intercom's Reporting Data Export API (spec 5), on the same HTTP client as
the other Intercom jobs (``knowledge.content_api.ContentApiClient``: bearer token,
``Intercom-Version``, 429s waited out until ``X-RateLimit-Reset`` or ``Retry-After``, transient
failures retried)."""

from __future__ import annotations

import csv
import gzip
import io
from typing import Any

from findesk.knowledge.content_api import ContentApiClient, ContentApiError

OCTET_STREAM = "application/octet-stream"
GZIP_MAGIC = b"\x1f\x8b"


class ReportingClient:
    def __init__(self, client: ContentApiClient, app_id: str, client_id: str) -> None:
        self.client = client
        self.app_id = app_id
        self.client_id = client_id

    def datasets(self) -> list[dict[str, Any]]:
        body = ContentApiClient._json(
            self.client.request("GET", "/export/reporting_data/get_datasets")
        )
        data = body.get("data")
        return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []

    def enqueue(
        self, dataset_id: str, attribute_ids: list[str], start_time: int, end_time: int
    ) -> dict[str, Any]:
        """A new job. Not retried on a transient failure: a lost answer may have made a job
        already (a 429 is waited out and sent again: it made none)."""
        return ContentApiClient._json(
            self.client.request(
                "POST",
                "/export/reporting_data/enqueue",
                {
                    "dataset_id": dataset_id,
                    "attribute_ids": attribute_ids,
                    "start_time": start_time,
                    "end_time": end_time,
                },
                retry=False,
            )
        )

    def job(self, job_identifier: str) -> dict[str, Any]:
        return ContentApiClient._json(
            self.client.request(
                "GET",
                f"/export/reporting_data/{job_identifier}",
                params={
                    "app_id": self.app_id,
                    "client_id": self.client_id,
                    "job_identifier": job_identifier,
                },
            )
        )

    def download(self, job_identifier: str) -> bytes:
        """The job's file, gunzipped when it is gzip (Intercom serves it compressed)."""
        response = self.client.request(
            "GET",
            f"/download/reporting_data/{job_identifier}",
            params={"app_id": self.app_id, "job_identifier": job_identifier},
            headers={"Accept": OCTET_STREAM},
        )
        content = response.content
        if content.startswith(GZIP_MAGIC):
            try:
                return gzip.decompress(content)
            except (OSError, EOFError) as exc:
                raise ContentApiError(f"the export file is not valid gzip: {exc}") from exc
        return content


def parse_csv(content: bytes) -> list[dict[str, str]]:
    """The file's rows, keyed by column; a qualified column (``standard.conversation_id``,
    Preview's form) by its plain id."""
    text = content.decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return []
    keys = [column.rsplit(".", 1)[-1].strip() for column in header]
    return [dict(zip(keys, row, strict=False)) for row in reader if any(row)]
