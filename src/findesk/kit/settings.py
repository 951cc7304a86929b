"""Typed settings, read from environment variables with the prefix ``FINDESK_``.

Every field here is listed in the README's settings table.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    max_body_bytes: int = Field(
        default=1024 * 1024, description="Largest request body accepted (413 beyond)."
    )
    fin_agent_email: str = Field(
        default="fin@findesk.invalid",
        description="Email of the bot agent that represents Fin (seeded on a fresh database).",
    )

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'findesk.db').resolve()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
