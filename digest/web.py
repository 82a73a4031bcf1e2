"""The web app (``digest serve``): health check and operator previews.

Operator routes need ``Authorization: Bearer $DIGEST_ADMIN_TOKEN`` when a
token is configured; ``digest serve`` refuses to bind beyond loopback without one.
"""

from __future__ import annotations

import hmac

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from digest import editions
from digest.errors import DigestError, EditionError
from digest.mail import SAMPLE_RECIPIENT, parts_of, prepare
from digest.settings import Settings
from subscribers.web import make_router

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "SAMEORIGIN",
}


def create_app(settings: Settings, factory: sessionmaker[Session]) -> FastAPI:
    app = FastAPI(title="digest", openapi_url="/api/openapi.json", docs_url=None, redoc_url=None)

    @app.exception_handler(DigestError)
    async def digest_error(request: Request, exc: DigestError) -> Response:
        status = 404 if isinstance(exc, EditionError) else 400
        return JSONResponse({"error": str(exc)}, status_code=status)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    def operator(request: Request) -> None:
        if not settings.admin_token:
            return
        given = request.headers.get("authorization", "")
        expected = f"Bearer {settings.admin_token}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise PermissionError

    @app.exception_handler(PermissionError)
    async def forbidden(request: Request, exc: PermissionError) -> Response:
        return PlainTextResponse("operator token required", status_code=401)

    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> Response:
        try:
            with factory() as s:
                s.execute(text("SELECT 1"))
        except Exception as exc:  # any DB failure means unhealthy
            return PlainTextResponse(f"database unreachable: {type(exc).__name__}", 503)
        return PlainTextResponse("ok")

    def preview_html(ref: str) -> HTMLResponse:
        with factory() as s:
            view = editions.view(s, ref)
        _, html = parts_of(prepare(settings, view).build(SAMPLE_RECIPIENT))
        return HTMLResponse(html)

    @app.get("/preview/next", dependencies=[Depends(operator)])
    def preview_next() -> HTMLResponse:
        return preview_html("next")

    @app.get("/editions/{edition_id}/preview", dependencies=[Depends(operator)])
    def preview_edition(edition_id: int) -> HTMLResponse:
        return preview_html(str(edition_id))

    # Subscriber pages (subscribe, confirm, unsubscribe, preferences): issue 5.
    app.include_router(make_router(settings, factory))

    return app
