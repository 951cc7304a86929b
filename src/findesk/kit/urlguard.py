"""Where findesk may send a request to a URL someone gave it (outbound webhooks today): public
addresses only, so that nobody can aim the server at the company's network or the cloud's
metadata service. Loopback is allowed only when the caller says so (a setting for tests and
development); private, link-local and reserved addresses never are.

Callers check a URL when it is given and again before every request, so that a name that later
resolves inward is refused then.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from findesk.kit.errors import Invalid


class RefusedURL(Exception):
    pass


def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise RefusedURL(f"cannot resolve {host!r}: {exc}") from None
    found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if address not in found:
            found.append(address)
    return found


def check(url: str, *, allow_loopback: bool) -> None:
    """Raise ``RefusedURL`` unless ``url`` is http(s) to public addresses only."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RefusedURL("the URL must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise RefusedURL("the URL must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise RefusedURL("the URL's port is not valid") from None
    for address in _addresses(parts.hostname, port):
        if address.is_loopback and allow_loopback:
            continue
        if not address.is_global or address.is_multicast:
            raise RefusedURL(f"{parts.hostname} resolves to a non-public address ({address})")


def checked(url: str, *, allow_loopback: bool, field: str = "url") -> str:
    """``check`` for input: a refused URL is a 422 naming the field."""
    try:
        check(url, allow_loopback=allow_loopback)
    except RefusedURL as exc:
        raise Invalid(
            f"The URL is refused: {exc}.",
            errors=[{"loc": [field], "msg": str(exc), "type": "url_refused"}],
        ) from None
    return url
