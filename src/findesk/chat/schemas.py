"""The widget API's request bodies (answers are plain dicts shaped by ``chat.service``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

BODY_MAX = 20_000


class SessionIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    user_id: str | None = Field(default=None, min_length=1, max_length=200)
    user_hash: str | None = Field(default=None, max_length=200)
    name: str | None = Field(default=None, max_length=255)
    email: str | None = Field(default=None, max_length=320)
    token: str | None = Field(default=None, max_length=200)


class NewConversationIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    body: str | None = Field(default=None, max_length=BODY_MAX)
    attachments: list[str] = Field(default_factory=list, max_length=10)


class NewMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    body: str | None = Field(default=None, max_length=BODY_MAX)
    attachments: list[str] = Field(default_factory=list, max_length=10)
    quick_reply_id: str | None = Field(default=None, max_length=255)


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    rating: Literal["terrible", "bad", "ok", "good", "amazing"]
    remark: str | None = Field(default=None, max_length=2000)
