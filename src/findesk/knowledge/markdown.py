"""Article bodies: Markdown or HTML in, the contract's sanitised HTML out."""

from __future__ import annotations

import re
import unicodedata

from markdown_it import MarkdownIt

from findesk.kit import html

# CommonMark with tables off and raw HTML on: raw HTML is sanitised with everything else.
_markdown = MarkdownIt("commonmark", {"html": True, "linkify": False})


def render(source: str, body_format: str) -> str:
    """The sanitised HTML of a body written in ``body_format`` (``markdown`` or ``html``)."""
    rendered = _markdown.render(source) if body_format == "markdown" else source
    return html.sanitize(rendered)


def slugify(title: str, limit: int = 80) -> str:
    """``"Reset your password!"`` → ``"reset-your-password"`` (ASCII, for URLs)."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug[:limit].rstrip("-") or "article"
