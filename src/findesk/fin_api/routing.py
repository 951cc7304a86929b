"""Route classes of the Fin API: every call is authorised before its body is parsed, so nothing
but a 401 answers without a valid token. Errors are RFC 7807 problems: bare in the REST variant,
inside ``{data, error}`` in the posts-only variant.
"""

from __future__ import annotations

from fastapi import Request

from findesk.fin_api.security import authorize
from findesk.kit.http import GuardedRoute


class FinRoute(GuardedRoute):
    async def guard(self, request: Request) -> None:
        request.state.fin_client = await authorize(request)


class PostsOnlyRoute(FinRoute):
    envelope = True
