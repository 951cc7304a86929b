"""Importing a folder of Markdown files as articles (``findesk kb import``).

Each file may open with YAML front matter (``title``, ``url``, ``state``, ``locale``,
``slug``; other keys, as static-site generators write them, are ignored). The title falls back
to the first ``# Heading`` (taken out of the body), then to the file name. The slug, from the
front matter or the file's path in the folder, is the key: importing the folder again updates
the articles it made instead of adding copies. What a file does not say is left as it is on
an existing article (a new one is a draft in English, unless told otherwise).

Each file is imported in its own transaction: a bad file is reported and loses nothing else.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from sqlalchemy.orm import Session

from findesk.kit.db import Database
from findesk.kit.errors import Problem
from findesk.knowledge import repository, service
from findesk.knowledge.markdown import slugify

SUFFIXES = (".md", ".markdown")
FRONT_MATTER_KEYS = ("title", "url", "state", "locale", "slug")
# Room for front matter on top of the largest body the service takes.
MAX_FILE_BYTES = service.MAX_BODY + 64 * 1024

Outcome = Literal["created", "updated", "unchanged", "failed"]
OUTCOMES: tuple[Outcome, ...] = ("created", "updated", "unchanged", "failed")

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_H1 = re.compile(r"^ {0,3}#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_FRONT_MATTER_END = ("---", "...")


class BadFile(Exception):
    """A file that cannot be imported; the message says why, for the person who wrote it."""


@dataclass
class ArticleFile:
    """What one file says."""

    path: str  # relative to the imported folder, with forward slashes
    slug: str
    title: str
    body: str
    url: str | None = None
    url_given: bool = False
    state: str | None = None
    locale: str | None = None


@dataclass
class FileResult:
    path: str
    outcome: Outcome
    article_id: str | None = None
    slug: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "outcome": self.outcome,
            "article_id": self.article_id,
            "slug": self.slug,
            "error": self.error,
        }


@dataclass
class ImportReport:
    files: list[FileResult] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {name: sum(1 for f in self.files if f.outcome == name) for name in OUTCOMES}

    @property
    def ok(self) -> bool:
        return all(f.outcome != "failed" for f in self.files)


# --- finding and reading files ----------------------------------------------------------------


def find_files(root: Path) -> list[Path]:
    """Markdown files under ``root`` (or ``root`` itself), in a stable order; hidden folders
    and files (``.git``, ``.obsidian``) are skipped, and symlinked folders not followed."""
    if root.is_file():
        return [root]
    found: list[Path] = []
    for folder, folders, files in os.walk(root):
        folders[:] = sorted(d for d in folders if not d.startswith("."))
        found.extend(
            Path(folder) / name
            for name in sorted(files)
            if not name.startswith(".") and name.lower().endswith(SUFFIXES)
        )
    return found


def relative_name(path: Path, root: Path) -> str:
    base = root.parent if root.is_file() else root
    return path.relative_to(base).as_posix()


def read_file(path: Path, name: str) -> ArticleFile:
    """Parse one file; raises ``BadFile``."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise BadFile(f"the file is larger than {MAX_FILE_BYTES // 1024} KiB")
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadFile("the file is not UTF-8 text") from None
    except OSError as exc:
        raise BadFile(f"cannot read the file ({exc.strerror or exc})") from None
    return parse(text, name)


def parse(text: str, name: str) -> ArticleFile:
    """An article from the text of the file at ``name`` (its path in the folder)."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    meta, body = _split_front_matter(text)
    title = _text_value(meta, "title")
    if title is None or not title.strip():
        heading, body = _take_title_heading(body)
        title = heading or _title_from_name(name)
    slug_source = _text_value(meta, "slug") or str(Path(name).with_suffix(""))
    state = _text_value(meta, "state")
    if state is not None and state not in ("draft", "published", "archived"):
        raise BadFile(f"state must be draft, published or archived, not {state!r}")
    return ArticleFile(
        path=name,
        slug=slugify(slug_source),
        title=title,
        body=body.strip(),
        url=_text_value(meta, "url"),
        url_given="url" in meta,
        state=state,
        locale=_text_value(meta, "locale"),
    )


def _split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        return {}, text
    for number, line in enumerate(lines[1:], start=1):
        if line.rstrip() in _FRONT_MATTER_END:
            raw, body = "\n".join(lines[1:number]), "\n".join(lines[number + 1 :])
            break
    else:
        raise BadFile("the front matter opened with --- is never closed with ---")
    try:
        meta = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 2})" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BadFile(f"bad YAML front matter{line}: {problem}") from None
    if meta is None:
        return {}, body
    if not isinstance(meta, dict):
        raise BadFile("the front matter must be YAML keys and values (title: ...)")
    return meta, body


def _text_value(meta: dict[str, Any], key: str) -> str | None:
    value = meta.get(key)
    if value is None:
        return None
    if key == "title" and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        # YAML reads `locale: no` as false and `title: 2024-01-01` as a date.
        raise BadFile(f"{key} must be text, not {_yaml_kind(value)} (put it in quotes)")
    return value


def _yaml_kind(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _take_title_heading(body: str) -> tuple[str | None, str]:
    """The first level-1 ATX heading outside code blocks, and the body without it."""
    lines = body.split("\n")
    fence: str | None = None
    for number, line in enumerate(lines):
        opened = _FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = None
            continue
        if opened:
            fence = opened.group(1)
            continue
        heading = _H1.match(line)
        if heading:
            return heading.group(1).strip(), "\n".join(lines[:number] + lines[number + 1 :])
    return None, body


def _title_from_name(name: str) -> str:
    words = re.sub(r"[-_\s]+", " ", Path(name).stem).strip() or "Untitled"
    return words[0].upper() + words[1:]


# --- writing articles -------------------------------------------------------------------------


def import_article(
    session: Session,
    item: ArticleFile,
    *,
    default_state: str | None = None,
    default_locale: str | None = None,
) -> tuple[Outcome, str]:
    """Create or update the article keyed by the file's slug; returns the outcome and its id.

    ``default_state`` and ``default_locale`` apply where the file does not say; left as None,
    a new article is a draft in English and an existing one keeps its own."""
    state = item.state or default_state
    locale = item.locale or default_locale
    existing = repository.get_by_slug(session, item.slug)
    if existing is None:
        draft = service.ArticleDraft(
            title=item.title,
            body=item.body,
            body_format="markdown",
            locale=locale,
            state=state,
            slug=item.slug,
        )
        if item.url_given:
            draft.url = item.url
        return "created", service.create_article(session, draft, author_id=None).id

    draft = service.ArticleDraft()
    if existing.title != " ".join(item.title.split()):
        draft.title = item.title
    if existing.body_source != item.body or existing.body_format != "markdown":
        draft.body, draft.body_format = item.body, "markdown"
    if item.url_given and existing.url != ((item.url or "").strip() or None):
        draft.url = item.url
    if locale is not None and existing.locale != locale.strip():
        draft.locale = locale
    if state is not None and existing.state != state:
        draft.state = state
    if draft == service.ArticleDraft():
        return "unchanged", existing.id  # not even touched: no new edit time, nothing for Fin
    return "updated", service.update_article(session, existing.id, draft).id


def import_folder(
    db: Database,
    root: Path,
    *,
    default_state: str | None = None,
    default_locale: str | None = None,
    on_result: Callable[[FileResult], None] | None = None,
    files: list[Path] | None = None,
) -> ImportReport:
    """Import every Markdown file under ``root`` (or ``files``, found there before), one
    transaction per file."""
    report = ImportReport()
    seen: dict[str, str] = {}  # slug -> the file that used it in this run
    for path in find_files(root) if files is None else files:
        result = _import_one(db, path, root, seen, default_state, default_locale)
        report.files.append(result)
        if on_result is not None:
            on_result(result)
    return report


def _import_one(
    db: Database,
    path: Path,
    root: Path,
    seen: dict[str, str],
    default_state: str | None,
    default_locale: str | None,
) -> FileResult:
    name = relative_name(path, root)
    slug: str | None = None
    try:
        item = read_file(path, name)
        slug = item.slug
        if slug in seen:
            raise BadFile(f"its slug {slug!r} is also {seen[slug]}'s; give one a `slug:`")
        seen[slug] = name
        with db.transaction() as session:
            outcome, article_id = import_article(
                session, item, default_state=default_state, default_locale=default_locale
            )
    except BadFile as exc:
        return FileResult(name, "failed", slug=slug, error=str(exc))
    except Problem as exc:
        return FileResult(name, "failed", slug=slug, error=exc.detail)
    except Exception as exc:  # one file's surprise must not stop the others
        return FileResult(name, "failed", slug=slug, error=f"{type(exc).__name__}: {exc}")
    return FileResult(name, outcome, article_id=article_id, slug=slug)
