"""Who is signed in to the inbox: a session cookie, and a CSRF token on every change."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from findesk.agents.models import Agent
from findesk.audit.service import AuditActor
from findesk.auth import web_sessions
from findesk.kit.errors import Forbidden, Problem
from findesk.kit.http import client_address, db_of
from findesk.kit.secrets import hash_secret

COOKIE = "findesk_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class SignInRequired(Problem):
    status = 401
    code = "sign_in_required"


@dataclass(frozen=True)
class Viewer:
    """The signed-in agent and their session's CSRF token."""

    agent: Agent
    csrf_token: str
    session_hash: str


async def load_viewer(request: Request) -> Viewer | None:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    db = db_of(request)

    def lookup() -> Viewer | None:
        # Read, and write only when the idle timeout is due to slide (once a minute at most):
        # every page, fragment and live check of the inbox signs in here, and a write
        # transaction would queue each one behind every write (on SQLite, for the write lock).
        with db.read_session() as session:
            row = web_sessions.authenticate(session, raw)
            if row is None:
                return None
            viewer = Viewer(row.agent, row.csrf_token, row.id_hash)
            due = web_sessions.touch_due(row)
        if due:
            with db.transaction() as session:
                web_sessions.touch(session, viewer.session_hash)
        return viewer

    return await run_in_threadpool(lookup)


def csrf_matches(viewer: Viewer, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(viewer.csrf_token.encode(), (given or "").encode())


async def require_viewer(request: Request, *, check_csrf: bool = True) -> Viewer:
    """The signed-in agent; unsafe methods must carry the CSRF token (form field or header)."""
    viewer = await load_viewer(request)
    if viewer is None:
        raise SignInRequired("Sign in to continue.")
    if check_csrf and request.method not in SAFE_METHODS:
        given = request.headers.get(CSRF_HEADER)
        if given is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            value = form.get("csrf_token")
            given = value if isinstance(value, str) else None
        if not csrf_matches(viewer, given):
            raise Forbidden("The form is out of date or was not sent by findesk. Reload the page.")
    request.state.viewer = viewer
    return viewer


def audit_actor(request: Request, viewer: Viewer) -> AuditActor:
    """The signed-in agent and the address they came from, for the audit log."""
    return AuditActor.for_agent(viewer.agent, client_address(request))


def session_hash(raw: str) -> str:
    return hash_secret(raw)
