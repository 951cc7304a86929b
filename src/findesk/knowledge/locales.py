"""The languages of Intercom's help centre (spec 8: ``translated_content``'s keys), and how a
language tag findesk stored maps to one of them."""

from __future__ import annotations

# Each with its own name, as a language switcher shows it.
LOCALES: dict[str, str] = {
    "ar": "العربية",
    "bg": "Български",
    "bs": "Bosanski",
    "ca": "Català",
    "cs": "Čeština",
    "da": "Dansk",
    "de": "Deutsch",
    "el": "Ελληνικά",
    "en": "English",
    "es": "Español",
    "et": "Eesti",
    "fi": "Suomi",
    "fr": "Français",
    "he": "עברית",
    "hr": "Hrvatski",
    "hu": "Magyar",
    "id": "Bahasa Indonesia",
    "it": "Italiano",
    "ja": "日本語",
    "ko": "한국어",
    "lt": "Lietuvių",
    "lv": "Latviešu",
    "mn": "Монгол",
    "nb": "Norsk bokmål",
    "nl": "Nederlands",
    "pl": "Polski",
    "pt": "Português",
    "ro": "Română",
    "ru": "Русский",
    "sl": "Slovenščina",
    "sr": "Српски",
    "sv": "Svenska",
    "tr": "Türkçe",
    "vi": "Tiếng Việt",
    "pt-BR": "Português (Brasil)",
    "zh-CN": "简体中文",
    "zh-TW": "繁體中文",
}
DEFAULT = "en"
RIGHT_TO_LEFT = frozenset({"ar", "he"})
_BY_LOWER = {code.lower(): code for code in LOCALES}
# Language tags that name one of Intercom's locales by another spelling.
_ALIASES = {
    "no": "nb",
    "nn": "nb",
    "iw": "he",
    "in": "id",
    "zh": "zh-CN",
    "zh-hans": "zh-CN",
    "zh-sg": "zh-CN",
    "zh-hant": "zh-TW",
    "zh-hk": "zh-TW",
    "zh-mo": "zh-TW",
}


def exact(value: str) -> str | None:
    """Intercom's code for ``value`` when it is one, whatever its case (``pt-br`` → ``pt-BR``)."""
    return _BY_LOWER.get(value.strip().lower())


def intercom_locale(tag: str) -> str | None:
    """The Intercom locale a stored language tag is written in: itself, an alias, or its
    language (``fr-CA`` → ``fr``, ``pt-PT`` → ``pt``); None when Intercom has no such language."""
    lowered = tag.strip().lower().replace("_", "-")
    if lowered in _BY_LOWER:
        return _BY_LOWER[lowered]
    parts = lowered.split("-")
    for length in range(len(parts), 0, -1):
        prefix = "-".join(parts[:length])
        if prefix in _ALIASES:
            return _ALIASES[prefix]
        if prefix in _BY_LOWER:
            return _BY_LOWER[prefix]
    return None


def is_english(tag: str) -> bool:
    return tag.strip().lower().split("-")[0] == "en"


def supported_list() -> str:
    return ", ".join(LOCALES)


def negotiate(accept_language: str | None, available: set[str]) -> str | None:
    """The most preferred of ``available`` (Intercom codes) per an ``Accept-Language`` header."""
    if not accept_language:
        return None
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate(accept_language.split(",")[:50]):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0 or not tag.strip() or tag.strip() == "*":
            continue
        ranked.append((-quality, index, tag.strip()))
    for _, _, tag in sorted(ranked):
        locale = intercom_locale(tag)
        if locale is not None and locale in available:
            return locale
    return None
