"""HTML sanitising to the set the Fin contract allows (spec 4.4).

Allowed: p, h1, h2, b, i, a, img, br, code, ul, ol, li. h3-h6 become h2, strong/em become b/i;
anything else is dropped (its text kept, except script/style whose content goes too).
"""

from __future__ import annotations

import html as _html
import re

import nh3

from findesk.kit.text import without_controls

ALLOWED_TAGS = {"p", "h1", "h2", "b", "i", "a", "img", "br", "code", "ul", "ol", "li"}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}}
URL_SCHEMES = {"http", "https", "mailto"}
_RENAMES = {"h3": "h2", "h4": "h2", "h5": "h2", "h6": "h2", "strong": "b", "em": "i"}
_RENAME_RE = re.compile(r"<(/?)(h[3-6]|strong|em)(?=[\s/>])", re.IGNORECASE)


def sanitize(html: str) -> str:
    html = without_controls(html)  # NUL and the like: not text, and not storable
    renamed = _RENAME_RE.sub(lambda m: f"<{m.group(1)}{_RENAMES[m.group(2).lower()]}", html)
    return nh3.clean(
        renamed,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    ).strip()


def to_text(html: str) -> str:
    """The visible text of (already sanitised) HTML, for search and previews."""
    text = nh3.clean(html.replace("<br>", "\n").replace("</p>", "</p>\n"), tags=set())
    return _html.unescape(text).strip()


def is_blank(html: str | None) -> bool:
    """True when sanitised HTML shows nothing: no text and no image."""
    if not html:
        return True
    return not to_text(html) and "<img" not in html
