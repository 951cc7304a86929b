"""Typed settings, read from environment variables with the prefix ``FINDESK_``.

Every field here is listed in the README's settings table.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REGION_HOSTS = {
    "us": "https://api.intercom.io",
    "eu": "https://api.eu.intercom.io",
    "au": "https://api.au.intercom.io",
}
WEBHOOK_PATH = "/hooks/standalone/custom_helpdesk_conversation_event"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FINDESK_", extra="ignore")

    data_dir: Path = Field(
        default=Path(".findesk"),
        description="Folder for the SQLite database and other local data.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: a SQLite file `findesk.db` in the data folder. "
        "PostgreSQL: `postgresql+psycopg://user:pass@host/db`.",
    )
    host: str = Field(default="127.0.0.1", description="Address `findesk serve` listens on.")
    port: int = Field(default=8080, description="Port `findesk serve` listens on.")
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="App processes `findesk serve` starts, sharing its port (beyond 1: "
        "PostgreSQL only).",
    )
    emulator_port: int = Field(
        default=8090,
        description="Port of the Fin emulator: where `findesk demo` starts it and "
        "`findesk emulator` listens.",
    )
    token_ttl_seconds: int = Field(
        default=3600, ge=60, description="Lifetime of OAuth access tokens issued to Fin."
    )
    fin_signing_secret: SecretStr | None = Field(
        default=None,
        description="HMAC key from Fin's settings; when set, every Fin API call must carry a "
        "valid `X-Fin-Signature`.",
    )
    fin_signature_tolerance_seconds: int = Field(
        default=300, description="How far `X-Fin-Request-Timestamp` may be from our clock."
    )
    fin_signature_scheme: Literal["bound", "body"] = Field(
        default="bound",
        description="What `X-Fin-Signature` signs: `bound` (timestamp, method, path, sorted "
        "query and body) or `body` (timestamp and body, or sorted query for GET: spec 5's form, "
        "weaker, as it binds neither method nor path). Either way a signature is accepted once.",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, description="Largest request body accepted (413 beyond)."
    )
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A connection's request headers must arrive within this time (from its "
        "opening, or a later request's first byte); else it is closed (408 if a request began).",
    )
    body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Longest wait for the next piece of a request body; a body that stalls "
        "longer is answered 408 and its connection closed.",
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses or networks (CIDR) of reverse proxies whose "
        "`X-Forwarded-For` and `X-Forwarded-Proto` findesk believes; empty: none, the "
        "connection's own address is the client's (what sign-in throttling counts by).",
    )
    password_check_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Password checks (argon2) run at once; more sign-ins wait their turn.",
    )
    password_check_queue: int = Field(
        default=64,
        ge=0,
        description="Sign-ins that may wait for a password check; beyond, 503 at once.",
    )
    request_threads: int = Field(
        default=3,
        ge=1,
        le=256,
        description="Requests one process works on at once in its thread pool (database work "
        "holds a thread); more wait their turn. Few threads cost less CPU under Python's GIL.",
    )
    oauth_max_live_tokens: int = Field(
        default=20,
        ge=1,
        description="Live access tokens one OAuth client may hold; issuing one more revokes "
        "the oldest.",
    )
    fin_agent_email: str = Field(
        default="fin@findesk.invalid",
        description="Email of the bot agent that represents Fin (seeded on a fresh database).",
    )

    # --- the notifier: telling Fin which conversation changed (spec 6) ---------------------
    fin_webhook_url: str | None = Field(
        default=None,
        description="Full URL of Fin's conversation-event webhook; overrides region + "
        "integration id.",
    )
    fin_region: Literal["us", "eu", "au"] = Field(
        default="us",
        description="Intercom region whose hosts are used for the webhook and the AI Content "
        "API (us, eu, au).",
    )
    fin_integration_id: str | None = Field(
        default=None, description="The Identifier shown in Fin's Custom Helpdesk setup."
    )
    fin_webhook_key: SecretStr | None = Field(
        default=None, description="Webhook key from Fin's setup, sent as `X-Webhook-Key`."
    )
    notifier_in_process: bool = Field(
        default=True,
        description="Run the delivery worker inside `findesk serve` (turn off when running "
        "`findesk worker` processes).",
    )
    notifier_concurrency: int = Field(
        default=8, ge=1, le=256, description="Deliveries a worker makes at once."
    )
    notifier_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often a worker looks for due events when not woken."
    )
    notifier_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Timeout of one webhook call."
    )
    notifier_retry_window_seconds: float = Field(
        default=72 * 3600,
        gt=0,
        description="How long failed events are retried before they go to dead-letter.",
    )
    notifier_backoff_base_seconds: float = Field(
        default=1.0, gt=0, description="First retry delay; doubles each attempt, with jitter."
    )
    notifier_backoff_max_seconds: float = Field(
        default=300.0, gt=0, description="Longest delay between two attempts."
    )
    notifier_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a worker holds events it is delivering; a "
        "crashed worker's events are retried after it.",
    )
    outbox_retention_days: float = Field(
        default=7, gt=0, description="Delivered events are kept this long, then purged."
    )
    typing_throttle_seconds: float = Field(
        default=3.0,
        ge=0,
        description="At most one typing event per conversation and agent in this time.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="The server's key for the secrets it must use again (outbound webhooks' "
        "signing secrets are derived from it); at least 32 characters. Unset: a random key made "
        "once in `secret.key` in the data folder. Set it when processes run on several machines.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for `/metrics`; unset, only loopback clients may scrape.",
    )

    # --- the Fin call ledger: what Fin called, and which human replies it has fetched -------
    fin_ledger_enabled: bool = Field(
        default=True,
        description="Record every Fin API call in the ledger and mark the human replies Fin "
        "has fetched (turn off to stop recording; the latency metrics stay).",
    )
    fin_ledger_retention_days: float = Field(
        default=30,
        gt=0,
        description="Fin API calls (and replies still waiting for Fin) are kept this long, "
        "then pruned.",
    )
    lookup_calls_retention_days: float = Field(
        default=30,
        gt=0,
        description="The record of each lookup call (its inputs, answer and caller) is kept "
        "this long, then pruned.",
    )
    fin_fetch_alert_seconds: float = Field(
        default=120,
        gt=0,
        description="A human's public reply that Fin has not fetched this long after it was "
        "written is overdue: the inbox shows a banner and `/metrics` counts it.",
    )

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    # --- reports ---------------------------------------------------------------------------
    reports_timezone: str = Field(
        default="UTC",
        description="The IANA time zone reports count days and weeks in (e.g. Europe/Berlin).",
    )

    @field_validator("reports_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Berlin)") from None
        return value

    reports_reopen_window_days: int = Field(
        default=7,
        ge=1,
        le=90,
        description=(
            "Days after Fin resolves a conversation during which the end user coming back "
            "counts as a reopen (after which the resolution is durable)."
        ),
    )
    reports_refresh_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often the reports' facts are brought up to date (and how old they may "
        "be when a report is read before it refreshes them).",
    )

    # --- Teams: agents' presence --------------------------------------------------------------
    presence_away_minutes: float = Field(
        default=15.0,
        gt=0,
        description="An agent who set themselves online and has not been seen for this long "
        "counts as away: routing gives them no new conversations.",
    )

    # --- CSAT: the rating request when a conversation is resolved ---------------------------
    csat_enabled: bool = Field(
        default=True,
        description="When a human agent resolves or closes a conversation, write a message with "
        "a link to a rating page (once per conversation).",
    )
    csat_for_fin_resolved: bool = Field(
        default=False,
        description="Also ask for a rating when Fin resolves a conversation (written as the Fin "
        "bot agent).",
    )
    csat_message: str = Field(
        default="How did we do? Rate this conversation:",
        min_length=1,
        max_length=500,
        description="The text of the rating request, before the link to the rating page.",
    )
    # --- the web inbox ----------------------------------------------------------------------
    public_base_url: str | None = Field(
        default=None,
        description="How end users and Fin reach findesk (e.g. `https://help.example.com`); "
        "attachment links are built on it. Default: `http://HOST:PORT`.",
    )
    files_dir: Path | None = Field(
        default=None,
        description="Where uploaded attachments are stored; default: `files/` in the data folder.",
    )
    max_attachment_bytes: int = Field(
        default=10 * 1024 * 1024, gt=0, description="Largest file an agent may attach."
    )
    secure_cookies: bool = Field(
        default=False, description="Mark session cookies Secure (set it when serving over HTTPS)."
    )
    live_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often the inbox's live feed looks for changes made by other processes "
        "(on PostgreSQL they wake it at once; this is the fallback).",
    )
    snooze_check_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How often the waker looks for snoozed conversations whose time has come "
        "(it also sleeps until the next one is due, and a snooze set in its own process wakes "
        "it at once).",
    )
    sla_check_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How often `findesk serve` looks for SLA timers past due, to record their "
        "breach and escalate (one process at a time does it).",
    )
    live_streams_per_session: int = Field(
        default=8,
        ge=1,
        description="Live streams (the inbox's, the Messenger's) one web session may hold open; "
        "a new one beyond it closes that session's oldest.",
    )
    live_streams_max: int = Field(
        default=1000,
        ge=1,
        description="Live streams one process holds open in all; beyond it new ones get 503.",
    )

    # --- the knowledge base, published to Fin's Content Library (spec 8) --------------------
    intercom_access_token: SecretStr | None = Field(
        default=None,
        description="Intercom access token for the AI Content API; when set, published "
        "articles are kept in step with Fin's Content Library.",
    )
    intercom_api_url: str | None = Field(
        default=None,
        description="Base URL of Intercom's REST API; overrides the region's host (the Fin "
        "emulator's URL in the demo).",
    )
    intercom_version: str = Field(
        default="2.14", description="`Intercom-Version` header sent to Intercom's REST API."
    )
    intercom_article_author_id: int | None = Field(
        default=None,
        ge=1,
        description="Intercom teammate id named as the author of the help centre articles "
        "findesk publishes through the Articles API (its languages other than English); "
        "without it those are not sent.",
    )
    intercom_app_id: str | None = Field(
        default=None,
        description="Intercom workspace id (app_id), sent with Reporting Data Export job "
        "polls and downloads (`findesk intercom export`).",
    )
    intercom_client_id: str | None = Field(
        default=None,
        description="Intercom app's client id, sent with Reporting Data Export job polls "
        "(Intercom requires it).",
    )
    intercom_export_daily: bool = Field(
        default=False,
        description="In `findesk serve` (with an Intercom token), pull the previous day's "
        "Reporting Data Export once a day, for the reconciliation report.",
    )
    kb_publish_in_process: bool = Field(
        default=True,
        description="Publish article changes to Fin from inside `findesk serve` (turn off "
        "when a `findesk worker` does it).",
    )
    kb_retry_seconds: float = Field(
        default=30.0,
        gt=0,
        description="First delay before a failed publish is retried "
        "(doubles each time, up to an hour).",
    )
    # --- alerts: email and outbound webhooks (sent through the outbox) ----------------------
    smtp_host: str | None = Field(
        default=None, description="SMTP server for alert emails; unset, no email is sent."
    )
    smtp_port: int = Field(default=587, description="SMTP port (465 with `SMTP_TLS`).")
    smtp_username: str | None = Field(default=None, description="SMTP login, if any.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")
    smtp_starttls: bool = Field(default=True, description="Upgrade the SMTP connection (STARTTLS).")
    smtp_tls: bool = Field(default=False, description="Connect with TLS from the start (port 465).")
    smtp_from: str = Field(
        default="findesk@localhost", description="The From address of alert emails."
    )
    reply_email_delay_minutes: float = Field(
        default=10.0,
        gt=0,
        description="A human's reply the end user has not read after this long is emailed to them.",
    )
    reply_email_link_url: str | None = Field(
        default=None,
        description="Where an end user continues the conversation (the page with the "
        "Messenger), linked from reply emails; `{conversation_id}` is replaced. "
        "Default: the public base URL.",
    )
    webhooks_allow_loopback: bool = Field(
        default=False,
        description="Let outbound webhooks go to loopback addresses (tests, development); "
        "private and link-local ones stay refused.",
    )

    # --- findesk's own chat (the widget) and how Fin answers it -------------------------------
    chat_channel: Literal["off", "fin_agent_api", "custom_channel"] = Field(
        default="off",
        description="How Fin answers findesk's chat widget: `off` (the team answers every "
        "chat), `fin_agent_api` or `custom_channel` (Intercom's APIs, at the Intercom API URL).",
    )
    chat_identity_secret: SecretStr | None = Field(
        default=None,
        description="HMAC-SHA256 key for signed visitor identities (`user_hash` of `user_id`, "
        "computed by the site's backend); unset, only anonymous visitors can chat.",
    )
    chat_allow_anonymous: bool = Field(
        default=True, description="Let a visitor without a signed identity chat."
    )
    chat_anonymous_per_hour: int = Field(
        default=60,
        ge=1,
        description="New anonymous chat sessions one address may start per hour; beyond, it "
        "is answered 429 until the hour is over (a visitor's session lasts 30 days).",
    )
    chat_title: str = Field(
        default="Chat with us", min_length=1, max_length=80,
        description="The title of the chat widget's panel.",
    )  # fmt: skip
    chat_greeting: str = Field(
        default="Hi! Ask us anything: we usually answer in a few minutes.",
        min_length=1, max_length=500,
        description="The first words a visitor reads in a new chat.",
    )  # fmt: skip
    chat_accent_color: str = Field(
        default="#1f6feb", pattern=r"^#[0-9a-fA-F]{6}$",
        description="The widget's accent colour (`#rrggbb`): launcher, header, the visitor's "
        "messages.",
    )  # fmt: skip
    chat_allowed_origins: str = Field(
        default="",
        description="Comma-separated origins of the company's sites that may embed the chat "
        "widget (CORS), e.g. `https://www.example.com`; findesk's own origin always may.",
    )
    fin_agent_api_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for Intercom's Fin Agent API (`/fin/start`, `/fin/reply`, "
        "`/fin/csat`).",
    )
    fin_agent_api_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Key that checks `X-Fin-Agent-API-Webhook-Signature` on Fin Agent API "
        "events (`/chat/hooks/fin-agent-api`); unset, every event is refused.",
    )
    custom_channel_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for Intercom's Custom Channel Events "
        "(`/custom_channel_events/*`).",
    )
    custom_channel_callback_token: SecretStr | None = Field(
        default=None,
        description="The Authentication Token Intercom sends on Custom Channel callbacks "
        "(`/chat/hooks/custom-channel`); unset, every callback is refused.",
    )

    @model_validator(mode="after")
    def _lease_outlasts_a_call(self) -> Settings:
        # A lease that ran out mid-call would let a second worker deliver the same events.
        if self.notifier_lease_seconds <= self.notifier_timeout_seconds:
            raise ValueError("FINDESK_NOTIFIER_LEASE_SECONDS must exceed the webhook timeout")
        return self

    @property
    def fin_webhook_target(self) -> str | None:
        """Where sync and typing events go, or None while Fin is not configured."""
        if self.fin_webhook_url:
            return self.fin_webhook_url
        if self.fin_integration_id:
            return f"{REGION_HOSTS[self.fin_region]}{WEBHOOK_PATH}/{self.fin_integration_id}"
        return None

    @property
    def intercom_api_base(self) -> str:
        return (self.intercom_api_url or REGION_HOSTS[self.fin_region]).rstrip("/")

    @property
    def base_url(self) -> str:
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def attachments_dir(self) -> Path:
        return (self.files_dir or self.data_dir / "files").resolve()

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'findesk.db').resolve()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
