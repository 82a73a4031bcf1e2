"""The operator JSON API under ``/api`` (OpenAPI document at ``/api/openapi.json``).

One router per resource (``stories``, ``subscribers``, ``editions``), the
request and response bodies in ``schemas``; this module puts them together
behind operator access.

Writes accept only ``application/json`` (or ``text/csv`` for the subscriber
import), or no body at all. Cross-site writes never get here, whatever their
body: ``digest.web.guards.OriginGuard`` refuses them first (an empty-bodied
form POST is exactly what a cross-site page can send), so the API needs no
CSRF token, even when open.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse

from digest.web.api import editions, reference, stories, subscribers
from digest.web.api.schemas import ERRORS
from digest.web.context import WebContext
from digest.web.errors import WebError


async def writes_are_json(request: Request) -> None:
    """A FastAPI dependency: 415 for a write whose body is not JSON (CSV for the import)."""
    if request.method in ("GET", "HEAD", "OPTIONS") or not await request.body():
        return
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    allowed = "text/csv" if request.url.path.endswith("/import") else "application/json"
    if ctype != allowed:
        raise WebError(415, f"send the body as {allowed}")


def make_router(ctx: WebContext) -> APIRouter:
    router = APIRouter(
        dependencies=[Depends(ctx.access.require_operator), Depends(writes_are_json)],
        responses=ERRORS,
    )
    for resource in (stories, subscribers, editions):
        router.include_router(resource.make_router(ctx))

    @router.get("/openapi.json", include_in_schema=False)
    def openapi(request: Request) -> JSONResponse:
        return JSONResponse(request.app.openapi())

    @router.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        """The API reference, from the OpenAPI document (no script, no outside asset)."""
        doc = request.app.openapi()
        return ctx.page(
            request,
            "api_docs.html",
            title=doc["info"]["title"],
            version=doc["info"]["version"],
            operations=reference.operations(doc),
            schemas=reference.schemas(doc),
        )

    return router
