"""The web app (``digest serve``): app factory, request guards, error handling, security headers.

Routes live in ``preview`` (operator previews), ``editions`` (editions and
sending), ``archive`` (public archive and Atom feed), ``api`` (operator JSON
API), ``metrics`` (Prometheus) and ``subscribe`` (subscribe, confirm,
unsubscribe, preferences). What a request must be before any route sees it
(a known Host, a bounded body, no cross-site write) is in ``guards``; access
rules, CSRF and login throttling in ``access``; error types and their HTTP
statuses in ``errors``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from digest.core.paths import builtin_templates
from digest.core.settings import Settings
from digest.web import (
    archive,
    drafts,
    editions,
    feeds_pages,
    inbound,
    metrics,
    preview,
    schedule_page,
    stories_pages,
    subscribers_pages,
)
from digest.web import subscribe as subscriber_pages
from digest.web.access import SESSION_COOKIE
from digest.web.api import routes
from digest.web.context import WebContext
from digest.web.errors import HANDLED, WebError, error_response, status_for
from digest.web.guards import BodyLimit, HostGuard, OriginGuard
from digest.web.sessions import SESSION_SECONDS

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # Never a Referer to other sites (links carry tokens); "no-referrer" would also make
    # browsers send "Origin: null" on this site's own form posts.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "SAMEORIGIN",
}
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def create_app(settings: Settings, factory: sessionmaker[Session]) -> FastAPI:
    app = FastAPI(title="digest", openapi_url=None, docs_url=None, redoc_url=None)
    with factory() as session:  # the signing key every process shares, before any route
        bind = session.get_bind()
        settings.load_signing_key(bind if isinstance(bind, Engine) else bind.engine)
    ctx = WebContext(settings, factory)

    async def handle_error(request: Request, exc: Exception) -> Response:
        status, problem = status_for(exc)
        headers = exc.headers if isinstance(exc, WebError) else None
        return error_response(request.url.path, status, problem, headers)

    for kind in HANDLED:
        app.add_exception_handler(kind, handle_error)

    # The last added runs first: Host, then the body's size, then cross-site writes.
    app.add_middleware(OriginGuard, settings=settings)
    app.add_middleware(BodyLimit, limit=settings.web_max_body_bytes)
    app.add_middleware(HostGuard, settings=settings)

    @app.middleware("http")  # outermost: the guards' answers carry these headers too
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        response.headers.setdefault("Content-Security-Policy", DEFAULT_CSP)
        return response

    @app.get("/healthz", response_class=PlainTextResponse, include_in_schema=False)
    def healthz() -> Response:
        try:
            with factory() as s:
                s.execute(text("SELECT 1"))
        except Exception as exc:  # any DB failure means unhealthy
            return PlainTextResponse(f"database unreachable: {type(exc).__name__}", 503)
        return PlainTextResponse("ok")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        folder = builtin_templates() / "web" / "static"
        path = folder / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise WebError(404, f"no static file {name!r}")
        media = STATIC_TYPES.get(path.suffix, "application/octet-stream")
        return Response(path.read_bytes(), media_type=media)

    @app.get("/", include_in_schema=False)
    def home(request: Request) -> Response:
        target = "/editions" if ctx.access.is_operator(request) else "/archive"
        return RedirectResponse(target, status_code=303)

    @app.get("/login", include_in_schema=False)
    def login_form(request: Request) -> Response:
        return ctx.page(request, "login.html", error="")

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        fields = await ctx.access.form(request)
        if not ctx.access.token_ok(request, fields.get("token", "")):
            return ctx.page(request, "login.html", 401, error="That is not the admin token.")
        response = RedirectResponse("/editions", status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            await run_in_threadpool(ctx.access.start_session),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=settings.base_url.startswith("https://"),
        )
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        await ctx.access.form(request)
        await run_in_threadpool(ctx.access.end_session, request)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    app.include_router(preview.make_router(ctx))
    app.include_router(drafts.make_router(ctx))  # before editions' /editions/{id}/{action}
    app.include_router(editions.make_router(ctx))
    app.include_router(archive.make_router(ctx))
    app.include_router(routes.make_router(ctx), prefix="/api")
    app.include_router(metrics.make_router(ctx))
    app.include_router(inbound.make_router(ctx))
    app.include_router(subscriber_pages.make_router(settings, factory))
    app.include_router(subscribers_pages.make_router(ctx))
    app.include_router(feeds_pages.make_router(ctx))
    app.include_router(schedule_page.make_router(ctx))
    app.include_router(stories_pages.make_router(ctx))
    return app
