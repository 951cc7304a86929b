"""Route classes of the Fin API: nothing but a 401 answers a call without a valid token. The
token is checked in the call's own session (one thread hop, one transaction: see
``security.authorized_session``), or before the refusal of a call refused sooner. Errors are
RFC 7807 problems: bare in the REST variant, inside ``{data, error}`` in the posts-only variant.

Every call, answered or refused, is timed and handed to the Fin call ledger under the
contract's name for its operation (``get_messages``, the same in both variants).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Coroutine
from functools import cached_property
from typing import Any

from fastapi import Request, Response

from findesk.fin_api.security import check_call, confirm_token
from findesk.fin_ledger.calls import ledger_of
from findesk.kit.http import GuardedRoute


def operation_name(operation_id: str | None) -> str:
    """The contract's snake_case name: ``getMessages`` and ``postGetMessages`` are both
    ``get_messages``."""
    if not operation_id:
        return "unknown"
    name = operation_id[4:] if re.match(r"post[A-Z]", operation_id) else operation_id
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class FinRoute(GuardedRoute):
    @cached_property
    def reads(self) -> bool:
        """Whether the operation only reads (its signature may be used twice)."""
        return operation_name(self.operation_id).startswith("get_")

    async def guard(self, request: Request) -> None:
        await check_call(request, changes_state=not self.reads)

    async def confirm(self, request: Request) -> None:
        await confirm_token(request)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        operation = operation_name(self.operation_id)

        async def timed(request: Request) -> Response:
            started = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
                status = response.status_code
                return response
            except Exception as exc:
                given = getattr(exc, "status", None)
                status = given if isinstance(given, int) else 500
                raise
            finally:
                elapsed = time.perf_counter() - started
                ledger_of(request).observe(operation, request, status, elapsed)

        return timed


class PostsOnlyRoute(FinRoute):
    envelope = True
