"""``GET /files/{key}/{filename}``: the key is the capability; no other credential is asked,
so Fin (and the end user's Messenger) can fetch what an agent attached."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

from findesk.attachments import service
from findesk.kit.errors import NotFound
from findesk.kit.http import db_of, problem_response, settings_of

router = APIRouter(tags=["Files"], include_in_schema=False)


@router.get("/files/{key}/{filename}")
def download(request: Request, key: str, filename: str) -> Response:
    try:
        with db_of(request).read_session() as session:
            row = service.get(session, key)
    except NotFound as exc:
        return problem_response(exc)
    path = settings_of(request).attachments_dir / row.key
    if not path.is_file():
        return problem_response(NotFound("No such file."))
    inline = row.content_type in service.INLINE_IMAGES
    return FileResponse(
        path,
        media_type=row.content_type if inline else "application/octet-stream",
        filename=row.filename,
        content_disposition_type="inline" if inline else "attachment",
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=86400",
        },
    )
