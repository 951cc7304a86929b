"""Record a conformance session (redacted) and replay it against another helpdesk.

``findesk conformance --record FILE`` writes JSON lines: a header (what was recorded, against
which URLs), then one line per exchange in the order the answers came: ``method``, ``url``,
``headers``, ``body``, ``status``, ``response_headers``, ``response``, and ``batch`` (calls that
were in flight at the same time share a batch: the suite's concurrent repeats).

Nothing secret is written. The client secret becomes ``{{client_secret}}``, the client id in a
token request ``{{client_id}}``, each access token the helpdesk issued ``{{access_token:N}}``
(wherever it appears), HTTP Basic credentials ``Basic {{client_id}}:{{client_secret}}``, a valid
``X-Fin-Signature`` ``{{signature}}``, and any other secret (a wrong secret, a bogus token or a
wrong signature sent on purpose, ``X-Webhook-Key``, cookies) ``{{redacted}}``. The placeholders
keep what replay needs: which call used the right credentials, which token, which signature was
right. Signing timestamps are replayed at the same distance from the start (a stale one stays
stale, a replayed signature a replay).

``findesk replay FILE --against URL`` re-issues every call against another helpdesk (with its own
credentials), concurrently where the calls were concurrent, and compares each status and JSON
body with the recorded one. Ids the recorded answers created are mapped to the ids the new
answers give (learned from the responses, in order), so later calls reach the new objects; the
suite's unique ``conf-…`` values get new ones (so a replay against the same helpdesk creates new
objects too); timestamps are not compared. Every difference is reported.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, urlencode

import httpx

from findesk.conformance.checks import OBSERVERS, Config
from findesk.fin_api.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureScheme,
    matching_digest,
    signature_headers,
    signed_string,
)

FORMAT = 1
REDACTED = "{{redacted}}"
CLIENT_ID = "{{client_id}}"
CLIENT_SECRET = "{{client_secret}}"  # noqa: S105
SIGNATURE = "{{signature}}"  # a valid signature: replay signs the call again
WRONG_SIGNATURE = "0" * 64  # what replay sends for a signature that was wrong on purpose
TOKEN = re.compile(r"\{\{access_token:(\d+)\}\}")
# Headers whose value is a secret (any header whose name says so, too).
SECRET_HEADERS = {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-webhook-key"}
SECRET_HEADER_WORDS = ("signature", "secret", "token", "api-key", "apikey", "password")
# Body fields (JSON or form) whose value is a secret.
SECRET_FIELDS = {
    "client_secret",
    "access_token",
    "refresh_token",
    "id_token",
    "password",
    "secret",
    "webhook_key",
    "signing_secret",
}
SIGNATURE_HEADERS = {SIGNATURE_HEADER.lower(), TIMESTAMP_HEADER.lower()}
SKIPPED_HEADERS = {"host", "content-length", "connection", "accept-encoding", "transfer-encoding"}
# The suite's unique values (checks.unique): replaced by new ones on replay.
UNIQUE = re.compile(r"conf-[a-z]+-[0-9a-f]{16}")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$")
LARGE = 64 * 1024  # bodies larger than this are stored gzipped (base64)
MIN_SECRET = 6  # shorter values are not substituted in free text (too likely to collide)


def _secret_header(name: str) -> bool:
    lower = name.lower()
    return lower in SECRET_HEADERS or any(word in lower for word in SECRET_HEADER_WORDS)


def _is_placeholder(value: str) -> bool:
    return value.startswith("{{") and value.endswith("}}")


# --- recording ------------------------------------------------------------------------------


class Recorder:
    """Writes every exchange it is given to ``out`` as a redacted JSON line (thread-safe)."""

    def __init__(self, out: IO[str], config: Config) -> None:
        self.out = out
        self.config = config
        self.tokens: dict[str, str] = {}  # access token issued -> its placeholder
        self._lock = threading.Lock()
        self._seq = 0
        self._batch = 0
        self._batch_end = float("-inf")
        header = {
            "findesk_conformance_record": FORMAT,
            "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "recorded_at_epoch": int(time.time()),  # signing timestamps are replayed from it
            "base_url": config.base_url.rstrip("/"),
            "token_url": config.token_url,
            "variant": config.variant,
        }
        self.out.write(json.dumps(header) + "\n")

    # what the helpdesk issued: learned from every answer before anything is written
    def _learn_tokens(self, data: Any) -> None:
        if isinstance(data, dict):
            token = data.get("access_token")
            if isinstance(token, str) and token and token not in self.tokens:
                self.tokens[token] = f"{{{{access_token:{len(self.tokens) + 1}}}}}"
            for value in data.values():
                self._learn_tokens(value)
        elif isinstance(data, list):
            for item in data:
                self._learn_tokens(item)

    def __call__(self, response: httpx.Response) -> None:
        request = response.request
        end = time.monotonic()
        try:
            start = end - response.elapsed.total_seconds()
        except RuntimeError:  # a transport that never timed it (a test double)
            start = end
        try:
            sent = request.content
        except httpx.RequestNotRead:
            sent = b""
        received = response.content
        with self._lock:
            self._learn_tokens(_json_or_none(received))
            if start >= self._batch_end:
                self._batch += 1
            self._batch_end = max(self._batch_end, end) if start < self._batch_end else end
            self._seq += 1
            headers = self._headers(request.headers, request=True)
            if SIGNATURE_HEADER.lower() in headers and self._signed_right(request, sent):
                headers[SIGNATURE_HEADER.lower()] = SIGNATURE
            record = {
                "seq": self._seq,
                "batch": self._batch,
                "method": request.method,
                "url": self._url(str(request.url)),
                "headers": headers,
                **self._body("body", sent),
                "status": response.status_code,
                "response_headers": self._headers(response.headers, request=False),
                **self._body("response", received),
            }
            line = self._scrub(json.dumps(record, ensure_ascii=False))
            self.out.write(line + "\n")
            self.out.flush()

    def _signed_right(self, request: httpx.Request, content: bytes) -> bool:
        """Whether the call carries a valid signature with the run's signing secret (replay
        signs it again), rather than a wrong one sent on purpose (replay sends a wrong one)."""
        secret = self.config.signing_secret
        if not secret:
            return False
        url = request.url
        message = signed_string(
            self.config.signature_scheme,
            request.headers.get(TIMESTAMP_HEADER, ""),
            request.method,
            url.path,
            url.query.decode("ascii"),
            content,
        )
        return matching_digest(secret, message, request.headers[SIGNATURE_HEADER]) is not None

    # --- redaction ------------------------------------------------------------------------------

    def _known(self) -> dict[str, str]:
        """Secret values known by value -> their placeholder."""
        known = dict(self.tokens)
        if len(self.config.client_secret) >= MIN_SECRET:
            known[self.config.client_secret] = CLIENT_SECRET
        signing = self.config.signing_secret
        if signing and len(signing) >= MIN_SECRET:
            known[signing] = REDACTED
        return known

    def _scrub(self, text: str) -> str:
        """Every known secret value in ``text`` replaced by its placeholder."""
        for value, placeholder in sorted(self._known().items(), key=lambda kv: -len(kv[0])):
            text = text.replace(value, placeholder)
            escaped = json.dumps(value)[1:-1]
            if escaped != value:
                text = text.replace(escaped, placeholder)
        return text

    def _field(self, key: str, value: Any) -> Any:
        if not isinstance(value, str):
            return REDACTED if key.lower() in SECRET_FIELDS and value is not None else value
        lower = key.lower()
        if lower == "client_id" and value == self.config.client_id:
            return CLIENT_ID
        if lower not in SECRET_FIELDS:
            return value
        if value == self.config.client_secret:
            return CLIENT_SECRET
        return self.tokens.get(value) or (value if _is_placeholder(value) else REDACTED)

    def _redact_json(self, data: Any) -> Any:
        if isinstance(data, dict):
            return {
                k: self._field(k, v) if not isinstance(v, dict | list) else self._redact_json(v)
                for k, v in data.items()
            }
        if isinstance(data, list):
            return [self._redact_json(item) for item in data]
        return data

    def _redact_pairs(self, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(k, str(self._field(k, v))) for k, v in pairs]

    def _url(self, url: str) -> str:
        parsed = httpx.URL(url)
        if not parsed.query:
            return url
        pairs = parse_qsl(parsed.query.decode(), keep_blank_values=True)
        redacted = self._redact_pairs(pairs)
        if redacted == pairs:
            return url
        return str(parsed.copy_with(query=urlencode(redacted, safe="{}:").encode()))

    def _authorization(self, value: str) -> str:
        scheme, _, credentials = value.partition(" ")
        if scheme.lower() == "bearer":
            return f"Bearer {self.tokens.get(credentials.strip(), REDACTED)}"
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return f"Basic {REDACTED}"
            user, _, password = decoded.partition(":")
            user = CLIENT_ID if user == self.config.client_id else REDACTED
            password = CLIENT_SECRET if password == self.config.client_secret else REDACTED
            return f"Basic {user}:{password}"
        return REDACTED

    def _headers(self, headers: httpx.Headers, request: bool) -> dict[str, str]:
        kept: dict[str, str] = {}
        for name, value in headers.multi_items():
            lower = name.lower()
            if request and lower in SKIPPED_HEADERS:
                continue
            if lower == "authorization":
                value = self._authorization(value)
            elif lower in SIGNATURE_HEADERS:
                value = REDACTED if lower == SIGNATURE_HEADER.lower() else value
            elif _secret_header(lower):
                value = REDACTED
            kept[lower] = f"{kept[lower]}, {value}" if lower in kept else value
        return kept

    def _body(self, key: str, raw: bytes) -> dict[str, Any]:
        if not raw:
            return {key: None}
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return {key: None, f"{key}_base64": base64.b64encode(raw).decode()}
        data = _json_or_none(raw)
        if isinstance(data, dict | list):
            redacted = self._redact_json(data)
            if redacted != data:
                text = json.dumps(redacted, ensure_ascii=False, separators=(",", ":"))
        elif "=" in text and not text.lstrip().startswith(("{", "[")):
            pairs = parse_qsl(text, keep_blank_values=True)
            if pairs and any(k.lower() in SECRET_FIELDS or k == "client_id" for k, _ in pairs):
                text = urlencode(self._redact_pairs(pairs), safe="{}:")
        if len(text) > LARGE:  # e.g. the oversized body of a 413 check: kept, compressed
            packed = gzip.compress(self._scrub(text).encode(), mtime=0)
            return {key: None, f"{key}_gzip_base64": base64.b64encode(packed).decode()}
        return {key: text}


@contextmanager
def recording(path: Path, config: Config) -> Iterator[Recorder]:
    """Every exchange of the conformance runs made inside the block is written to ``path``."""
    with path.open("w", encoding="utf-8") as out:
        recorder = Recorder(out, config)
        token = OBSERVERS.set((*OBSERVERS.get(), recorder))
        try:
            yield recorder
        finally:
            OBSERVERS.reset(token)


def stored_text(row: dict[str, Any], key: str) -> str | None:
    """The recorded body (``body``) or answer (``response``) of an exchange, as text."""
    if row.get(f"{key}_gzip_base64"):
        return gzip.decompress(base64.b64decode(row[f"{key}_gzip_base64"])).decode()
    value = row.get(key)
    return None if value is None else str(value)


def _json_or_none(raw: bytes | str | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


# --- replaying ------------------------------------------------------------------------------


class RecordError(ValueError):
    """The file is not a recorded session."""


def load(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and the exchanges of a recorded session."""
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordError(f"cannot read {path}: {exc}") from None
    try:
        rows = [json.loads(line) for line in lines]
    except ValueError as exc:
        raise RecordError(f"{path} is not JSON lines: {exc}") from None
    if not rows or not isinstance(rows[0], dict) or "findesk_conformance_record" not in rows[0]:
        raise RecordError(f"{path} is not a session written by findesk conformance --record")
    if rows[0]["findesk_conformance_record"] != FORMAT:
        raise RecordError(f"{path} has format {rows[0]['findesk_conformance_record']}")
    exchanges = rows[1:]
    for row in exchanges:
        if not isinstance(row, dict) or not {"method", "url", "status"} <= row.keys():
            raise RecordError(f"{path}: an exchange without method, url and status: {row!r}")
    return rows[0], exchanges


@dataclass(frozen=True)
class Target:
    """The helpdesk a session is replayed against, with its own credentials."""

    base_url: str
    token_url: str
    client_id: str
    client_secret: str
    signing_secret: str | None = field(default=None, repr=False)
    signature_scheme: SignatureScheme = "body"
    timeout: float = 30.0


@dataclass(frozen=True)
class Difference:
    seq: int
    method: str
    path: str
    what: str

    def __str__(self) -> str:
        return f"#{self.seq} {self.method} {self.path}: {self.what}"


def _id_key(key: str) -> bool:
    return key == "id" or key.endswith("_id")


class Replayer:
    """Re-issues recorded exchanges against ``target`` and reports how the answers differ."""

    def __init__(self, header: dict[str, Any], target: Target) -> None:
        self.header = header
        self.target = target
        self.ids: dict[str, str] = {}  # recorded id -> the new helpdesk's id
        self.tokens: dict[str, str] = {}  # access token placeholder -> new token
        self.uniques: dict[str, str] = {}  # the suite's unique values -> fresh ones
        self.replayed = 0
        self.answered = 0  # exchanges the helpdesk answered (whatever the answer)
        self._lock = threading.Lock()
        # Signing timestamps keep their distance from the recording's start: a stale one stays
        # stale, a replayed signature (the same timestamp twice) stays a replay.
        recorded_at = header.get("recorded_at_epoch")
        self.shift = int(time.time()) - recorded_at if isinstance(recorded_at, int) else 0
        self._http = httpx.Client(timeout=target.timeout)
        self.origins = {
            str(header.get("token_url", "")): target.token_url,
            str(header.get("base_url", "")).rstrip("/"): target.base_url.rstrip("/"),
        }

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Replayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- mapping recorded values to the new helpdesk's ----------------------------------------

    def _unique(self, match: re.Match[str]) -> str:
        old = match.group(0)
        if old not in self.uniques:
            prefix = old.rsplit("-", 1)[0]
            self.uniques[old] = f"{prefix}-{uuid.uuid4().hex[:16]}"
        return self.uniques[old]

    def _text(self, text: str) -> str:
        """Placeholders, the suite's unique values and long ids of ``text`` mapped."""
        text = text.replace(CLIENT_SECRET, self.target.client_secret)
        text = text.replace(CLIENT_ID, self.target.client_id)
        text = TOKEN.sub(lambda m: self.tokens.get(m.group(0), REDACTED), text)
        text = UNIQUE.sub(self._unique, text)
        for old, new in sorted(self.ids.items(), key=lambda kv: -len(kv[0])):
            if len(old) >= MIN_SECRET:
                text = text.replace(old, new)
        return text

    def _value(self, key: str, value: Any) -> Any:
        if isinstance(value, str):
            if value in self.ids:
                return self.ids[value]
            return self._text(value)
        if _id_key(key) and isinstance(value, int) and not isinstance(value, bool):
            mapped = self.ids.get(str(value))
            return value if mapped is None else (int(mapped) if mapped.isdigit() else mapped)
        return value

    def _json(self, data: Any, key: str = "") -> Any:
        if isinstance(data, dict):
            return {k: self._json(v, k) for k, v in data.items()}
        if isinstance(data, list):
            return [self._json(item, key) for item in data]
        return self._value(key, data)

    def _url(self, url: str) -> str:
        for old, new in sorted(self.origins.items(), key=lambda kv: -len(kv[0])):
            if old and url.startswith(old):
                url = new + url[len(old) :]
                break
        parsed = httpx.URL(url)
        path = "/".join(self.ids.get(part, self._text(part)) for part in parsed.path.split("/"))
        pairs = parse_qsl(parsed.query.decode(), keep_blank_values=True)
        query = urlencode([(k, str(self._value(k, v))) for k, v in pairs]).encode()
        return str(parsed.copy_with(path=path, query=query or None))

    def _body(self, row: dict[str, Any]) -> bytes:
        if row.get("body_base64"):
            return base64.b64decode(row["body_base64"])
        text = stored_text(row, "body")
        if not text:
            return b""
        data = _json_or_none(text)
        if isinstance(data, dict | list):
            return json.dumps(self._json(data), ensure_ascii=False).encode()
        content_type = str(row.get("headers", {}).get("content-type", ""))
        if "x-www-form-urlencoded" in content_type:
            pairs = parse_qsl(str(text), keep_blank_values=True)
            return urlencode([(k, str(self._value(k, v))) for k, v in pairs]).encode()
        return self._text(str(text)).encode()

    def _authorization(self, value: str) -> str:
        scheme, _, credentials = value.partition(" ")
        if scheme.lower() == "basic":
            user, _, password = credentials.partition(":")
            user = self.target.client_id if user == CLIENT_ID else "redacted"
            password = self.target.client_secret if password == CLIENT_SECRET else "redacted"
            return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        return self._text(value)

    def request(self, row: dict[str, Any]) -> httpx.Request:
        headers: dict[str, str] = {}
        recorded = dict(row.get("headers") or {})
        for name, value in recorded.items():
            if name in SIGNATURE_HEADERS:
                continue
            if name == "authorization":
                headers[name] = self._authorization(str(value))
            elif value == REDACTED:
                headers[name] = "redacted"
            else:
                headers[name] = self._text(str(value))
        url = self._url(str(row["url"]))
        content = self._body(row)
        signature = recorded.get(SIGNATURE_HEADER.lower())
        stamp = recorded.get(TIMESTAMP_HEADER.lower())
        if stamp is not None:
            stamp = str(int(stamp) + self.shift) if str(stamp).isdigit() else str(stamp)
            headers[TIMESTAMP_HEADER] = stamp
        if signature is not None:
            headers[SIGNATURE_HEADER] = WRONG_SIGNATURE
            secret = self.target.signing_secret
            if signature == SIGNATURE and secret and stamp is not None and stamp.isdigit():
                headers.update(
                    signature_headers(
                        secret, str(row["method"]), url, content,
                        scheme=self.target.signature_scheme, timestamp=int(stamp),
                    )
                )  # fmt: skip
        return self._http.build_request(str(row["method"]), url, headers=headers, content=content)

    # --- sending and comparing ------------------------------------------------------------------

    def _send(self, request: httpx.Request) -> httpx.Response | str:
        try:
            response = self._http.send(request)
        except httpx.HTTPError as exc:
            return f"no answer: {type(exc).__name__}: {exc}"
        with self._lock:
            self.answered += 1
        return response

    def replay(self, exchanges: list[dict[str, Any]]) -> Iterator[Difference]:
        """Each difference, exchange by exchange (a batch of concurrent calls at once)."""
        for batch in _batches(exchanges):
            requests = [self.request(row) for row in batch]  # mapped in order, then sent
            if len(batch) == 1:
                answers = [self._send(requests[0])]
            else:
                with ThreadPoolExecutor(max_workers=len(batch)) as pool:
                    answers = list(pool.map(self._send, requests))
            self.replayed += len(batch)
            yield from self._compare_batch(batch, answers)

    def _compare_batch(
        self, rows: list[dict[str, Any]], answers: list[httpx.Response | str]
    ) -> Iterator[Difference]:
        first = rows[0]
        where = (int(first.get("seq", 0)), str(first["method"]), httpx.URL(first["url"]).path)
        failed = [a for a in answers if isinstance(a, str)]
        if failed:
            yield Difference(*where, failed[0])
            return
        responses = [a for a in answers if isinstance(a, httpx.Response)]
        if len(rows) > 1:
            recorded = Counter(int(r["status"]) for r in rows)
            now = Counter(r.status_code for r in responses)
            if recorded != now:
                yield Difference(*where, f"statuses {_counts(recorded)}, now {_counts(now)}")
            # compare the bodies status by status, in order (learning the new ids)
            pairs = [
                (row, response)
                for status in sorted(recorded.keys() & now.keys())
                for row, response in zip(
                    [r for r in rows if int(r["status"]) == status],
                    [r for r in responses if r.status_code == status],
                    strict=False,
                )
            ]
        else:
            pairs = list(zip(rows, responses, strict=True))
        for row, response in pairs:
            where = (int(row.get("seq", 0)), str(row["method"]), httpx.URL(row["url"]).path)
            for what in self.compare(row, response):
                yield Difference(*where, what)

    def compare(self, row: dict[str, Any], response: httpx.Response) -> list[str]:
        """What differs between the recorded answer and ``response`` (learning new ids)."""
        problems: list[str] = []
        if int(row["status"]) != response.status_code:
            problems.append(f"status {row['status']}, now {response.status_code}")
        recorded_text = stored_text(row, "response") or ""
        recorded = _json_or_none(recorded_text)
        now = _json_or_none(response.content)
        recorded_is_json = recorded is not None or recorded_text.strip() == "null"
        now_is_json = now is not None or response.text.strip() == "null"
        if recorded_is_json and now_is_json:
            self._learn(recorded, now)
            problems.extend(self._diff(recorded, now, "$"))
        elif recorded_is_json != now_is_json:
            kinds = ("JSON" if recorded_is_json else "not JSON", "JSON" if now_is_json else "not")
            problems.append(f"body was {kinds[0]}, now {kinds[1]} JSON: {response.text[:200]!r}")
        return problems

    def _learn(self, recorded: Any, now: Any, key: str = "") -> None:
        """recorded id -> new id, wherever an id field holds a value not yet mapped."""
        if isinstance(recorded, dict) and isinstance(now, dict):
            for k, value in recorded.items():
                if k in now:
                    self._learn(value, now[k], k)
            token = recorded.get("access_token")
            if isinstance(token, str) and TOKEN.fullmatch(token):
                fresh = now.get("access_token")
                if isinstance(fresh, str):
                    self.tokens[token] = fresh
        elif isinstance(recorded, list) and isinstance(now, list):
            for old, new in zip(recorded, now, strict=False):
                self._learn(old, new, key)
        elif _id_key(key) and _scalar_id(recorded) and _scalar_id(now):
            old, new = str(recorded), str(now)
            if old not in self.ids and new not in self.ids.values() and not TOKEN.match(old):
                self.ids[old] = new

    def _diff(self, recorded: Any, now: Any, path: str, key: str = "") -> list[str]:
        if isinstance(recorded, dict) and isinstance(now, dict):
            problems = []
            for k, value in recorded.items():
                if k not in now:
                    problems.append(f"{path}.{k}: missing now (was {_short(value)})")
                else:
                    problems.extend(self._diff(value, now[k], f"{path}.{k}", k))
            problems.extend(
                f"{path}.{k}: new field {_short(now[k])}" for k in now if k not in recorded
            )
            return problems
        if isinstance(recorded, list) and isinstance(now, list):
            problems = []
            if len(recorded) != len(now):
                problems.append(f"{path}: {len(recorded)} items, now {len(now)}")
            for i, (old, new) in enumerate(zip(recorded, now, strict=False)):
                problems.extend(self._diff(old, new, f"{path}[{i}]", key))
            return problems
        if key == "access_token" and isinstance(recorded, str) and TOKEN.fullmatch(recorded):
            return [] if isinstance(now, str) and now else [f"{path}: no access token now"]
        if _is_timestamp(key, recorded) and _is_timestamp(key, now):
            return []
        expected = self._value(key, recorded)
        if expected == now:
            return []
        if _id_key(key) and _scalar_id(recorded) and str(recorded) in self.ids:
            return [f"{path}: {_short(now)}, expected {_short(expected)} (recorded {recorded!r})"]
        return [f"{path}: {_short(recorded)}, now {_short(now)}"]


def _scalar_id(value: Any) -> bool:
    return (isinstance(value, str) and value != "") or (
        isinstance(value, int) and not isinstance(value, bool)
    )


def _is_timestamp(key: str, value: Any) -> bool:
    if isinstance(value, str):
        return bool(TIMESTAMP.match(value))
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return numeric and (key.endswith("_at") or key in ("timestamp", "expires_at"))


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else f"{text[:limit]}…"


def _counts(counter: Counter[int]) -> str:
    return ", ".join(f"{n} x {status}" for status, n in sorted(counter.items()))


def _batches(exchanges: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in exchanges:
        if batch and row.get("batch") != batch[0].get("batch"):
            yield batch
            batch = []
        batch.append(row)
    if batch:
        yield batch
