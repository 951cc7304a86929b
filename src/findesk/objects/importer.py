"""Importing instances of a custom object type from CSV or JSON Lines
(``findesk objects import TYPE FILE``).

* **CSV**: a header row naming ``external_id``, optionally ``external_created_at`` and
  ``external_updated_at`` (unix seconds), and any of the type's attributes; an empty cell leaves
  the attribute out.
* **JSON Lines**: one object a line, shaped as the API's create-or-update body
  (``external_id``, ``external_created_at``, ``external_updated_at``, ``custom_attributes``).

Each row is checked as the API checks a request; a bad row is reported (its line number and
why) and the others are imported. Good rows are upserted by external id a batch at a time, one
transaction and one ``INSERT … ON CONFLICT DO UPDATE`` statement per batch; an existing
instance gets the row's attributes (a row is the whole record), its id and links stay.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from findesk.kit.db import Database
from findesk.kit.errors import Problem
from findesk.kit.http import check_json_value
from findesk.kit.timeutil import utcnow
from findesk.objects import service
from findesk.objects.models import ObjectType
from findesk.objects.service import RowError

BATCH_ROWS = 2000
TIME_COLUMNS = ("external_created_at", "external_updated_at")


class ImportRefused(Exception):
    """The whole file cannot be imported (no such type, a header naming no attribute…)."""


@dataclass
class ImportReport:
    imported: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "failed": len(self.errors),
            "errors": [{"line": e.line, "reason": e.reason} for e in self.errors],
        }


def file_format(path: Path, given: str | None = None) -> str:
    if given is not None:
        if given not in ("csv", "jsonl"):
            raise ImportRefused("The format must be csv or jsonl.")
        return given
    if path.suffix.lower() == ".csv":
        return "csv"
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    raise ImportRefused(f"Cannot tell the format of {path.name}: name it .csv or .jsonl.")


def _lines(stream: BinaryIO, progress: Callable[[int], None]) -> Iterator[str]:
    """The file's lines as text, reporting the bytes read so far."""
    done = 0
    for raw in stream:
        done += len(raw)
        progress(done)
        yield raw.decode("utf-8-sig" if done == len(raw) else "utf-8", errors="strict")


Parsed = tuple[int, Any]  # (line number, the row as the API's body, or a ValueError)


def _csv_rows(lines: Iterator[str], object_type: ObjectType) -> Iterator[Parsed]:
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        return
    attributes = {a["name"] for a in object_type.attributes}
    known = {"external_id", *TIME_COLUMNS, *attributes}
    unknown = [name for name in header if name not in known]
    if "external_id" not in header:
        raise ImportRefused("The header row has no external_id column.")
    if unknown:
        raise ImportRefused(
            f"`{object_type.identifier}` has no attribute "
            + ", ".join(f"`{name}`" for name in unknown)
            + " (a column of the header row)."
        )
    if len(set(header)) != len(header):
        raise ImportRefused("The header row names a column twice.")
    last = reader.line_num
    for cells in reader:
        line, last = last + 1, reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            yield line, ValueError(f"{len(cells)} cells for {len(header)} columns")
            continue
        body: dict[str, Any] = {"custom_attributes": {}}
        try:
            for name, cell in zip(header, cells, strict=True):
                if name == "external_id":
                    body[name] = cell
                elif name in TIME_COLUMNS:
                    if cell.strip():
                        body[name] = int(cell)
                elif cell != "":
                    body["custom_attributes"][name] = cell
        except ValueError:
            yield line, ValueError(f"{name}: must be unix seconds")
            continue
        yield line, body


def _jsonl_rows(lines: Iterator[str]) -> Iterator[Parsed]:
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except ValueError:
            yield number, ValueError("not valid JSON")
            continue
        if not isinstance(row, dict):
            yield number, ValueError("not a JSON object")
            continue
        problem = check_json_value(row)
        yield number, (ValueError(problem) if problem else row)


def import_file(
    db: Database,
    identifier: str,
    path: Path,
    *,
    fmt: str | None = None,
    batch_rows: int = BATCH_ROWS,
    on_progress: Callable[[int], None] = lambda done: None,
    on_error: Callable[[RowError], None] = lambda error: None,
) -> ImportReport:
    """Import the file's rows; ``on_progress`` hears the bytes read, ``on_error`` each bad row.
    ``ImportRefused`` if the file cannot be imported at all (nothing is)."""
    kind = file_format(path, fmt)
    with db.read_session() as session:
        try:
            object_type = service.get_type(session, identifier)
        except Problem as exc:
            raise ImportRefused(exc.detail) from None
        session.expunge(object_type)
    report = ImportReport()
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        with db.transaction() as session:
            service.upsert_rows(session, batch)
        report.imported += len(batch)
        batch.clear()

    with path.open("rb") as stream:
        lines = _lines(stream, on_progress)
        rows = _csv_rows(lines, object_type) if kind == "csv" else _jsonl_rows(lines)
        now = utcnow()
        try:
            for line, row in rows:
                try:
                    if isinstance(row, ValueError):
                        raise row
                    batch.append(service.check_row(object_type, row, now=now))
                except ValueError as exc:
                    error = RowError(line, str(exc))
                    report.errors.append(error)
                    on_error(error)
                    continue
                if len(batch) >= batch_rows:
                    flush()
                    now = utcnow()
        except UnicodeDecodeError:
            raise ImportRefused(
                f"The file is not UTF-8 text; stopped there, after {report.imported} rows."
            ) from None
    if batch:
        flush()
    return report
