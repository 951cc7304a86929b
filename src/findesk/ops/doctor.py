"""``findesk doctor``: check a deployment the way Fin will meet it, and say what to fix.

It calls findesk from outside, as Fin does: the public URL, the token endpoint with the OAuth
client entered in Fin's settings, each read operation with that token (signed when a signing
secret is configured), and, with ``write``, each write operation on a clearly named test user
and conversation. Then it checks that Fin's webhook, as configured, can be reached with its key.

Every URL it calls comes from findesk's own configuration or from the operator's command line,
never from a caller, so no private-address guard applies (unlike URLs that end users send us):
pointing it at a private address is the operator's choice, and the report says when Fin could
not follow.

The calls reuse the conformance suite's client (:mod:`findesk.conformance.checks`): the same
token requests, the same wire-format validation, the same recorded evidence.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
import urllib.request
import uuid
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import SplitResult, urlsplit

import httpx

from findesk.conformance.checks import (
    Config,
    Context,
    Exchange,
    TokenFormat,
    shape_problems,
    snippet,
)
from findesk.fin_api.client import FinApiClient, Reply, Variant
from findesk.fin_api.signing import SignatureScheme, signature_headers
from findesk.kit.logs import redact_url
from findesk.kit.settings import REGION_HOSTS, WEBHOOK_PATH

if TYPE_CHECKING:
    from findesk.kit.settings import Settings

Status = Literal["ok", "warn", "fail", "skip"]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
INTERCOM_REGIONS = {str(urlsplit(url).hostname): region for region, url in REGION_HOSTS.items()}
DOCTOR_TAG = "findesk-doctor"
NOT_A_PERSON = "findesk doctor (test, not a customer)"


@dataclass(frozen=True)
class Finding:
    """One check: what was found and, unless all is well, what to do about it."""

    name: str
    status: Status
    detail: str
    fix: str = ""
    request: Exchange | None = None

    def line(self) -> str:
        label = "FAIL" if self.status == "fail" else self.status
        fix = f". Fix: {self.fix}" if self.fix else ""
        return f"{label:<5} {self.name:<20} {self.detail.rstrip('.')}{fix}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["request"] = asdict(self.request) if self.request else None
        return data


@dataclass
class Report:
    base_url: str
    findings: list[Finding] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for f in self.findings if f.status == status)

    @property
    def ok(self) -> bool:
        return self.count("fail") == 0

    def summary(self) -> str:
        return (
            f"{self.count('ok')} ok, {self.count('warn')} warning(s), "
            f"{self.count('fail')} failed, {self.count('skip')} skipped"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "ok": self.ok,
            "summary": self.summary(),
            "checks": [f.to_dict() for f in self.findings],
        }


@dataclass(frozen=True)
class Deployment:
    """What findesk's settings say about how Fin meets it."""

    public_base_url: str | None  # FINDESK_PUBLIC_BASE_URL as set (None: http://HOST:PORT)
    default_base_url: str
    webhook_target: str | None
    webhook_key: str | None
    region: str
    signing_secret: str | None
    signature_scheme: SignatureScheme
    fin_agent_email: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Deployment:
        key, secret = settings.fin_webhook_key, settings.fin_signing_secret
        return cls(
            public_base_url=settings.public_base_url,
            default_base_url=settings.base_url,
            webhook_target=settings.fin_webhook_target,
            webhook_key=key.get_secret_value() if key else None,
            region=settings.fin_region,
            signing_secret=secret.get_secret_value() if secret else None,
            signature_scheme=settings.fin_signature_scheme,
            fin_agent_email=settings.fin_agent_email,
        )

    @property
    def faces_intercom(self) -> bool:
        """The webhook goes to Intercom itself: Fin runs on Intercom's servers, on the internet."""
        return urlsplit(self.webhook_target or "").hostname in INTERCOM_REGIONS


@dataclass(frozen=True)
class Options:
    """What the operator asked for on the command line."""

    base_url: str  # findesk's public URL, as Fin calls it (the Fin API is under /api/fin)
    client_id: str | None = None
    client_secret: str | None = None
    variant: Variant = "rest"
    token_format: TokenFormat = "json"  # noqa: S105 (Intercom's default token request body)
    conversation_id: str | None = None  # a real one to read (and to sync, with send_webhook)
    write: bool = False
    send_webhook: bool = False
    timeout: float = 10.0


class _Signer(httpx.Auth):
    """Signs each call as Fin does. With the ``body`` scheme two calls with the same body (or
    query) in one second sign the same string, and findesk accepts a signature once: such a
    call waits for the next second, as a real second call from Fin would come later."""

    requires_request_body = True

    def __init__(self, secret: str, scheme: SignatureScheme) -> None:
        self.secret, self.scheme = secret, scheme
        self._second = 0
        self._signed: set[bytes] = set()  # what the body scheme signed in that second

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.scheme == "body":
            payload = request.url.query if request.method == "GET" else request.content
            while int(time.time()) == self._second and payload in self._signed:
                time.sleep(0.05)
            if int(time.time()) != self._second:
                self._second, self._signed = int(time.time()), set()
            self._signed.add(payload)
        request.headers.update(
            signature_headers(
                self.secret, request.method, request.url, request.content, scheme=self.scheme
            )
        )
        yield request


def _addresses(host: str, port: int) -> list[IpAddress]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IpAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def _proxy_for(parts: SplitResult) -> str | None:
    """The proxy the environment (``HTTPS_PROXY``, ``NO_PROXY``…) sets for this URL, as httpx
    and so the notifier would use it."""
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(parts.netloc.rsplit("@", 1)[-1]):
        return None
    return proxy


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def _problem_detail(reply: Reply | httpx.Response) -> str:
    """The ``detail`` (or OAuth ``error``) of an error answer, for the report."""
    response = reply.response if isinstance(reply, Reply) else reply
    try:
        body = response.json()
    except ValueError:
        return snippet(response.content, 120)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]  # the posts-only envelope
    if isinstance(body, dict):
        for key in ("detail", "error_description", "error", "title"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return snippet(response.content, 120)


class Doctor:
    def __init__(
        self, options: Options, deployment: Deployment, on_finding: Callable[[Finding], None]
    ) -> None:
        self.options = options
        self.deployment = deployment
        self.base = options.base_url.rstrip("/")
        self.report = Report(self.base)
        self.on_finding = on_finding
        self.ctx = Context(
            Config(
                base_url=f"{self.base}/api/fin",
                token_url=f"{self.base}/oauth/token",
                client_id=options.client_id or "",
                client_secret=options.client_secret or "",
                variant=options.variant,
                token_format=options.token_format,
                timeout=options.timeout,
            )
        )
        self.token: str | None = None
        self.api: FinApiClient | None = None
        self.fin_agent_id: str | None = None
        self._agents: Reply | None = None  # the first call with the token (see ``signing``)

    def add(
        self, name: str, status: Status, detail: str, fix: str = "", evidence: bool = True
    ) -> Finding:
        finding = Finding(name, status, detail, fix, self.ctx.last if evidence else None)
        self.report.findings.append(finding)
        self.on_finding(finding)
        return finding

    def run(self) -> Report:
        try:
            reachable = self.public_url() and self.ready()
            if reachable and self.token_endpoint() and self.signing():
                self.reads()
                self.writes()
            else:
                why = "the public URL" if not reachable else "the checks above"
                self.add("Fin operations", "skip", f"not tried: fix {why} first", evidence=False)
            self.webhook()
        finally:
            self.revoke_token()
            self.ctx.close()
        return self.report

    # --- the public URL ----------------------------------------------------------------------

    def public_url(self) -> bool:
        name, url = "public URL", self.base
        parts = urlsplit(url)
        set_it = "set FINDESK_PUBLIC_BASE_URL (or pass --base-url) to the https URL Fin calls"
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            self.add(name, "fail", f"{url!r} is not an http(s) base URL", set_it)
            return False
        try:
            addresses = _addresses(parts.hostname, _port(parts))
        except (OSError, UnicodeError) as exc:
            self.add(name, "fail", f"{parts.hostname} does not resolve ({exc})", set_it)
            return False
        shown = ", ".join(map(str, addresses))
        loopback = all(a.is_loopback for a in addresses)
        hidden = [a for a in addresses if not a.is_global]
        configured = (self.deployment.public_base_url or "").rstrip("/")
        if self.deployment.faces_intercom and hidden:
            # A name that resolves to a private address here may still resolve to a public one
            # on the internet (split DNS); an address, or loopback, cannot.
            named = not loopback and not _is_address(parts.hostname)
            self.add(
                name,
                "warn" if named else "fail",
                f"{url} resolves {'here ' if named else ''}to {hidden[0]}, which Fin cannot "
                "reach: it calls from Intercom's servers, on the internet",
                "make sure public DNS gives Fin a public address"
                if named
                else "serve findesk on a public address (a reverse proxy with TLS in front of "
                f"`findesk serve`) and {set_it}",
            )
        elif parts.scheme != "https" and not loopback:
            self.add(
                name,
                "fail" if self.deployment.faces_intercom else "warn",
                f"{url} is not https: Fin's calls carry its access token and customers' data",
                f"put TLS in front of findesk (a reverse proxy) and {set_it}",
            )
        elif configured and configured != url:
            self.add(
                name,
                "warn",
                f"FINDESK_PUBLIC_BASE_URL is {configured}, but Fin is to call {url}: the links "
                "findesk gives Fin (attachments, help articles) use the former",
                "make FINDESK_PUBLIC_BASE_URL the URL Fin calls",
            )
        elif not configured and not loopback:
            self.add(
                name,
                "warn",
                f"FINDESK_PUBLIC_BASE_URL is not set: the links findesk gives Fin (attachments, "
                f"help articles) use {self.deployment.default_base_url}",
                f"set FINDESK_PUBLIC_BASE_URL={url}",
            )
        elif loopback:
            self.add(
                name,
                "ok",
                f"{url} ({shown}): loopback, for the Fin emulator on this machine; Fin itself "
                "needs a public https URL",
            )
        else:
            self.add(name, "ok", f"{url} ({shown})")
        return True

    def ready(self) -> bool:
        name, url = "findesk ready", f"{self.base}/readyz"
        http = self.ctx.http(base_url="/")
        try:
            response = http.get(url)
        except httpx.ConnectError as exc:
            tls = isinstance(exc.__context__, ssl.SSLError) or "SSL" in str(exc)
            fix = (
                "Fin needs a certificate for this host name that a public CA signed"
                if tls
                else "start findesk (`findesk serve`) and open the port to Fin: check the "
                "firewall and the reverse proxy"
            )
            self.add(name, "fail", f"GET {url}: {type(exc).__name__}: {exc}", fix, False)
            return False
        except httpx.HTTPError as exc:
            self.add(name, "fail", f"GET {url}: {type(exc).__name__}: {exc}", "", False)
            return False
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 200:
            parts = body.items() if isinstance(body, dict) else []
            checks = ", ".join(f"{k} {v}" for k, v in parts if k != "status")
            self.add(name, "ok", f"GET {url} answered 200 ({checks})")
            return True
        if response.status_code == 503 and isinstance(body, dict):
            self.add(
                name,
                "fail",
                f"GET {url} answered 503: {body}",
                "findesk cannot serve: see its log (database unreachable, or its notifier stopped)",
            )
            return True  # it answers: the calls below tell more
        self.add(
            name,
            "fail",
            f"GET {url} answered {response.status_code}: is this findesk?",
            "point the URL at findesk; a reverse proxy must pass every path (/oauth/token, "
            "/api/fin/…) through unchanged",
        )
        return False

    # --- the token endpoint and request signatures -----------------------------------------

    def token_endpoint(self) -> bool:
        name, url = "token endpoint", self.ctx.config.token_url
        if not self.options.client_id or not self.options.client_secret:
            self.add(
                name,
                "fail",
                "no OAuth client to ask for a token with",
                "give the client id and secret entered in Fin's Deployment settings "
                "(--client-id, --client-secret-stdin; `findesk clients list` shows the ids, "
                "`findesk clients create NAME` makes a new client)",
                evidence=False,
            )
            return False
        fmt = self.options.token_format
        try:
            response = self.ctx.request_token()
        except httpx.HTTPError as exc:
            self.add(name, "fail", f"POST {url}: {type(exc).__name__}: {exc}", "", False)
            return False
        try:
            body = response.json()
        except ValueError:
            body = None
        status = response.status_code
        if status == 401:
            self.add(
                name,
                "fail",
                f"POST {url} answered 401 ({_problem_detail(response)}): findesk does not "
                f"know this client id and secret",
                "enter the id and secret of a live client, here and in Fin's Deployment "
                "settings: `findesk clients list` shows the clients (and which are revoked), "
                "`findesk clients create NAME` makes a new one",
            )
            return False
        if status != 200 or not isinstance(body, dict):
            fix = "wait and try again (too many failed attempts)" if status == 429 else ""
            self.add(
                name, "fail", f"POST {url} answered {status}: {_problem_detail(response)}", fix
            )
            return False
        token, kind, expires_in = (
            body.get("access_token"),
            body.get("token_type"),
            body.get("expires_in"),
        )
        problems = []
        if not isinstance(token, str) or not token:
            problems.append("no access_token")
        if str(kind).lower() != "bearer":
            problems.append(f"token_type {kind!r}, not 'Bearer'")
        if not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in <= 0:
            problems.append(f"expires_in {expires_in!r}, not a positive integer")
        if problems:
            self.add(name, "fail", f"POST {url}: {'; '.join(problems)}")
            return False
        self.token = str(token)
        self.add(name, "ok", f"POST {url} ({fmt} body) issued a Bearer token for {expires_in} s")
        return True

    def _api(self, signed: bool = True) -> FinApiClient:
        api = self.ctx.api_with({"Authorization": f"Bearer {self.token}"})
        secret = self.deployment.signing_secret
        if signed and secret:
            api.http.auth = _Signer(secret, self.deployment.signature_scheme)
        return api

    def signing(self) -> bool:
        """The first call with the token, signed when a signing secret is set here; when it
        is, an unsigned call must be refused."""
        name = "request signing"
        self.api = self._api()
        try:
            reply = self.api.get_agents()
        except httpx.HTTPError as exc:
            self.add(name, "fail", f"Get agents: {type(exc).__name__}: {exc}")
            return False
        self._agents = reply
        secret = self.deployment.signing_secret
        if reply.status == 401 and secret:
            self.add(
                name,
                "fail",
                f"findesk refused a signed call ({_problem_detail(reply)})",
                "FINDESK_FIN_SIGNING_SECRET or FINDESK_FIN_SIGNATURE_SCHEME here differ from the "
                "server's (both must hold the HMAC key from Fin's settings), or the clocks "
                "differ by more than FINDESK_FIN_SIGNATURE_TOLERANCE_SECONDS",
            )
            return False
        if reply.status == 401:
            self.add(
                name,
                "fail",
                f"findesk refused a call with a fresh token ({_problem_detail(reply)}): it "
                "checks request signatures",
                "run doctor with FINDESK_FIN_SIGNING_SECRET (and FINDESK_FIN_SIGNATURE_SCHEME) "
                "as the server has them: the HMAC key from Fin's settings",
            )
            return False
        if not secret:
            self.add(
                name,
                "ok",
                "off (optional): with an HMAC key in Fin's settings, set the same as "
                "FINDESK_FIN_SIGNING_SECRET and findesk checks every call's X-Fin-Signature",
                evidence=False,
            )
            return True
        try:
            unsigned = self._api(signed=False).get_agents()
        except httpx.HTTPError as exc:
            self.add(name, "fail", f"an unsigned Get agents: {type(exc).__name__}: {exc}")
            return False
        if unsigned.status != 401:
            self.add(
                name,
                "fail",
                f"findesk answered {unsigned.status} to an unsigned call: it does not check "
                "signatures",
                "set FINDESK_FIN_SIGNING_SECRET on the server too (the HMAC key from Fin's "
                "settings), or unset it here",
            )
            return True
        weak = len(secret) < 16
        self.add(
            name,
            "warn" if weak else "ok",
            f"on ({self.deployment.signature_scheme} scheme): findesk accepted a signed call and "
            "refused an unsigned one"
            + (f"; the secret is short ({len(secret)} characters)" if weak else ""),
            "use a long random HMAC key in Fin's settings (and here)" if weak else "",
        )
        return True

    # --- the operations --------------------------------------------------------------------

    def _expect(
        self, name: str, reply: Reply, statuses: tuple[int, ...], kind: str | None = None
    ) -> Any:
        """The payload when the status (and the shape of ``kind``; ``kind[]`` an array of
        them) are right; else a FAIL and None."""
        if reply.status not in statuses:
            wanted = " or ".join(map(str, statuses))
            fix = "see findesk's log" if reply.status >= 500 else "run `findesk conformance`"
            detail = f"expected {wanted}, got {reply.status} ({_problem_detail(reply)})"
            self.add(name, "fail", detail, fix)
            return None
        if kind is not None:
            single = kind.removesuffix("[]")
            items = reply.data if kind.endswith("[]") else [reply.data]
            if not isinstance(items, list):
                self.add(name, "fail", f"expected an array, got {snippet(repr(items), 80)}")
                return None
            problems = [
                problem
                for i, item in enumerate(items)
                for problem in shape_problems(item, single, f"{single}[{i}]")
            ]
            if problems:
                self.add(name, "fail", "; ".join(problems[:3]), "run `findesk conformance`")
                return None
        return reply.data if reply.data is not None else {}

    def _ask(
        self,
        name: str,
        call: Callable[[], Reply],
        statuses: tuple[int, ...],
        kind: str | None = None,
    ) -> Any:
        try:
            reply = call()
        except httpx.HTTPError as exc:
            self.add(name, "fail", f"no answer: {type(exc).__name__}: {exc}")
            return None
        return self._expect(name, reply, statuses, kind)

    def reads(self) -> None:
        assert self.api is not None and self._agents is not None
        api, email = self.api, self.deployment.fin_agent_email
        agents = self._expect("get agents", self._agents, (200,), "agent[]")
        fin = next((a for a in agents or [] if a.get("email") == email), None)
        if fin is not None:
            self.fin_agent_id = str(fin["id"])
            self.add(
                "get agents",
                "ok",
                f"{len(agents)} agent(s); in Fin's setup pick {fin.get('name')} <{email}> "
                f"({fin['id']}) as the agent that represents Fin",
            )
        elif agents is not None:
            self.add(
                "get agents",
                "warn",
                f"{len(agents)} agent(s), none with FINDESK_FIN_AGENT_EMAIL ({email})",
                "run `findesk migrate` (it seeds the agent that represents Fin)",
            )
        conversation_id = self.options.conversation_id
        if conversation_id is None:
            made_up = f"doctor-unknown-{uuid.uuid4().hex[:12]}"
            for name, call in (
                ("get user", lambda: api.get_user(f"usr_{made_up}")),
                ("get conversation", lambda: api.get_conversation(f"conv_{made_up}")),
                ("get messages", lambda: api.get_messages(f"conv_{made_up}_")),
            ):
                if self._ask(name, call, (404,)) is not None:
                    detail = (
                        "404 for a made-up id, as expected (--conversation-id reads a real one)"
                    )
                    self.add(name, "ok", detail)
            return
        conversation = self._ask(
            "get conversation",
            lambda: api.get_conversation(conversation_id),
            (200,),
            "conversation",
        )
        if conversation is None:
            return
        self.add("get conversation", "ok", f"{conversation_id}: {conversation['status']}")
        user_id = str(conversation["user"]["id"])
        if self._ask("get user", lambda: api.get_user(user_id), (200,), "end_user") is not None:
            self.add("get user", "ok", f"{user_id}, the conversation's end user")
        messages = self._ask(
            "get messages", lambda: api.get_messages(conversation_id), (200,), "message[]"
        )
        if messages is not None:
            self.add("get messages", "ok", f"{len(messages)} message(s) in {conversation_id}")

    def writes(self) -> None:
        if not self.options.write:
            detail = "not tried: --write creates a test user and a closed test conversation"
            self.add("write operations", "skip", f"{detail} (tagged {DOCTOR_TAG})", evidence=False)
            return
        assert self.api is not None
        api, run = self.api, f"{DOCTOR_TAG}-{uuid.uuid4().hex[:12]}"
        create = partial(
            api.create_user,
            object_id=f"{run}-user",
            name=NOT_A_PERSON,
            attributes={DOCTOR_TAG: True},
        )
        user = self._ask("create user", create, (201,), "end_user")
        if user is None:
            return
        user_id = str(user["id"])
        self.add("create user", "ok", f"{user_id} ({NOT_A_PERSON})")
        update = partial(api.update_user, user_id, attributes={"checked": True})
        if self._ask("update user", update, (200,), "end_user") is not None:
            self.add("update user", "ok", f"{user_id}: attributes merged")
        first = {
            "message_type": "comment",
            "body": "<p>A test from findesk doctor.</p>",
            "author": {"id": user_id, "user_type": "end_user"},
            "visibility": "public",
            "object_id": f"{run}-message",
            "attachments": [],
        }
        start = partial(
            api.create_conversation,
            title=f"{NOT_A_PERSON} {run}",
            user_id=user_id,
            object_id=f"{run}-conversation",
            initial_message=first,
        )
        created = self._ask("create conversation", start, (201,))
        if created is None:
            return
        conversation = created.get("conversation") if isinstance(created, dict) else None
        problems = shape_problems(conversation, "conversation", "conversation")
        if problems or not isinstance(conversation, dict):
            self.add(
                "create conversation", "fail", "; ".join(problems[:3]), "run `findesk conformance`"
            )
            return
        conversation_id = str(conversation["id"])
        self.add("create conversation", "ok", conversation_id)
        if self.fin_agent_id is not None:
            author = {"id": self.fin_agent_id, "user_type": "agent"}
            answer = partial(
                api.create_message,
                conversation_id=conversation_id,
                message_type="comment",
                body="<p>Fin's answer, from findesk doctor.</p>",
                author=author,
                visibility="public",
                object_id=f"{run}-answer",
                attachments=[],
            )
            message = self._ask("create message", answer, (201,), "message")
            if message is not None:
                self.add("create message", "ok", f"{message['id']}, authored by the Fin agent")
        close = partial(
            api.update_conversation, conversation_id, status="closed", tags=[DOCTOR_TAG]
        )
        if self._ask("update conversation", close, (200,), "conversation") is not None:
            self.add("update conversation", "ok", f"{conversation_id} closed, tagged {DOCTOR_TAG}")

    def revoke_token(self) -> None:
        """Give the token back (RFC 7009), best effort: a client holds a bounded number."""
        if self.token is None:
            return
        try:
            self.ctx.http(base_url="/").post(
                f"{self.base}/oauth/revoke",
                data={
                    "token": self.token,
                    "client_id": self.options.client_id or "",
                    "client_secret": self.options.client_secret or "",
                },
            )
        except httpx.HTTPError:
            pass

    # --- Fin's webhook -----------------------------------------------------------------------

    def webhook(self) -> None:
        name, target, key = "webhook", self.deployment.webhook_target, self.deployment.webhook_key
        configure = (
            "set FINDESK_FIN_INTEGRATION_ID (the Identifier in Fin's Custom Helpdesk setup) "
            "and FINDESK_FIN_REGION, or the whole FINDESK_FIN_WEBHOOK_URL"
        )
        if target is None:
            self.add(
                name,
                "fail",
                "not configured: findesk cannot tell Fin that a conversation changed, so human "
                "replies never reach the end user",
                configure,
                evidence=False,
            )
            return
        if key is None:
            self.add(
                "webhook key",
                "fail",
                "FINDESK_FIN_WEBHOOK_KEY is not set: Fin refuses webhook calls without it",
                "copy the webhook key from Fin's Custom Helpdesk setup into "
                "FINDESK_FIN_WEBHOOK_KEY",
                evidence=False,
            )
        parts = urlsplit(target)
        shown = redact_url(target)  # never credentials in the URL
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.add(name, "fail", f"{shown!r} is not an http(s) URL", configure, False)
            return
        region = INTERCOM_REGIONS.get(parts.hostname)
        if region is not None:
            integration = parts.path.removeprefix(f"{WEBHOOK_PATH}/")
            if not parts.path.startswith(f"{WEBHOOK_PATH}/") or not integration.strip("/"):
                self.add(
                    name,
                    "fail",
                    f"{shown} is not Fin's conversation-event webhook "
                    f"({WEBHOOK_PATH}/{{Identifier}})",
                    configure,
                    evidence=False,
                )
                return
            if region != self.deployment.region:
                self.add(
                    name,
                    "warn",
                    f"the webhook goes to Intercom's {region} region, but FINDESK_FIN_REGION "
                    f"is {self.deployment.region} (the AI Content API uses that region's host)",
                    "make FINDESK_FIN_REGION and the webhook URL your workspace's region",
                    evidence=False,
                )
        port = _port(parts)
        where = f"{parts.hostname}:{port}"
        proxy = _proxy_for(parts)
        if proxy is not None:  # the notifier (httpx) goes through it too: probe the proxy
            self.add(
                name,
                "ok",
                f"{shown} goes through the proxy {redact_url(proxy)} (from the environment); "
                "only --send-webhook checks beyond it",
                evidence=False,
            )
            if self.options.send_webhook and key is not None:
                self.send_webhook(target, key)
            return
        try:
            addresses = _addresses(parts.hostname, port)
        except (OSError, UnicodeError) as exc:
            self.add(
                name,
                "fail",
                f"{shown}: {parts.hostname} does not resolve ({exc})",
                f"check this host's DNS and the URL: {configure}",
                evidence=False,
            )
            return
        try:
            with socket.create_connection(
                (parts.hostname, port), timeout=self.options.timeout
            ) as sock:
                if parts.scheme == "https":
                    context = httpx.create_ssl_context()
                    with context.wrap_socket(sock, server_hostname=parts.hostname):
                        pass
        except ssl.SSLError as exc:
            self.add(
                name,
                "fail",
                f"{shown}: TLS with {where} failed ({exc})",
                "the webhook host's certificate must be valid for its name",
                evidence=False,
            )
            return
        except OSError as exc:
            self.add(
                name,
                "fail",
                f"{shown}: cannot connect to {where} ({exc.strerror or exc})",
                "make sure this host can reach the webhook URL (outbound firewall, proxy), and "
                f"that the URL is right: {configure}",
                evidence=False,
            )
            return
        insecure = parts.scheme != "https" and not all(a.is_loopback for a in addresses)
        how = "DNS, TCP and TLS" if parts.scheme == "https" else "DNS and TCP"
        self.add(
            name,
            "warn" if insecure else "ok",
            f"{shown} reachable ({how})"
            + ("; not https: the webhook key travels in clear" if insecure else "")
            + ("" if self.options.send_webhook else "; --send-webhook makes a real call"),
            "use an https webhook URL" if insecure else "",
            evidence=False,
        )
        if self.options.send_webhook and key is not None:
            self.send_webhook(target, key)

    def send_webhook(self, target: str, key: str) -> None:
        """One real sync event, as the notifier sends it, for a conversation the operator named:
        Fin syncs it again, which duplicates nothing (spec 6)."""
        name, conversation_id = "webhook call", self.options.conversation_id
        if conversation_id is None:
            self.add(
                name,
                "skip",
                "needs --conversation-id: the conversation Fin is to sync",
                evidence=False,
            )
            return
        http = self.ctx.http(base_url="/")
        try:
            response = http.post(
                target,
                json={"conversation_id": conversation_id},
                headers={"X-Webhook-Key": key},
            )
        except httpx.HTTPError as exc:
            self.add(name, "fail", f"no answer: {type(exc).__name__}: {exc}", "", False)
            return
        status = response.status_code
        if 200 <= status < 300:
            self.add(
                name,
                "ok",
                f"a sync event for {conversation_id} was accepted ({status})",
                evidence=False,
            )
        elif status in (401, 403):
            self.add(
                name,
                "fail",
                f"answered {status}: the webhook key is not the one Fin expects",
                "copy the webhook key from Fin's Custom Helpdesk setup into "
                "FINDESK_FIN_WEBHOOK_KEY",
                evidence=False,
            )
        elif status == 404:
            self.add(
                name,
                "fail",
                "answered 404: no such integration",
                "check FINDESK_FIN_INTEGRATION_ID (the Identifier in Fin's setup) and "
                "FINDESK_FIN_REGION (your workspace's region)",
                evidence=False,
            )
        else:
            self.add(
                name, "fail", f"answered {status}: {snippet(response.content, 120)}", "", False
            )


def run(
    options: Options,
    deployment: Deployment,
    on_finding: Callable[[Finding], None] | None = None,
) -> Report:
    """Every check, each reported through ``on_finding`` as soon as it is known."""
    return Doctor(options, deployment, on_finding or (lambda _finding: None)).run()
