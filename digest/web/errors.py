"""Errors on the web: which HTTP status each error type gets, and the one shape of an answer.

The status comes from the error's type alone (``STATUS_BY_TYPE``), never from
its wording; the wording is the one line the answer explains it with.
"""

from __future__ import annotations

from html import escape

from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from digest.core.errors import BadEditionRef, DigestError, EditionError, NotFound


class WebError(Exception):
    """A request the app answers with an error status and one line of explanation."""

    def __init__(self, status: int, problem: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(problem)
        self.status = status
        self.problem = problem
        self.headers = headers or {}  # e.g. Retry-After on a 429


# digest's own errors, most specific first: the first type an error is an instance of wins.
STATUS_BY_TYPE: tuple[tuple[type[DigestError], int], ...] = (
    (NotFound, 404),  # "no edition with id 4", "no new stories", "no editions yet"
    (BadEditionRef, 400),  # "not an edition id: 'x'"
    (EditionError, 409),  # a state conflict: "edition 3 is finished, not running"
    (DigestError, 400),  # bad input: an address, a story, a failed pre-send check
)
# What the app registers its error handler for.
HANDLED: tuple[type[Exception], ...] = (
    WebError,
    DigestError,
    RequestValidationError,
    StarletteHTTPException,
)


def status_for(exc: Exception) -> tuple[int, str]:
    """The HTTP status and the one-line problem for ``exc``."""
    if isinstance(exc, WebError):
        return exc.status, exc.problem
    if isinstance(exc, DigestError):
        status = next(code for kind, code in STATUS_BY_TYPE if isinstance(exc, kind))
        return status, str(exc)
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return 400, f"invalid {where}: {first.get('msg', 'bad input')}"
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code, str(exc.detail)
    return 500, "internal error"


# Error pages use the app's own stylesheet (and nothing else), so they keep its layout.
ERROR_CSP = (
    "default-src 'none'; style-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


def wants_json(path: str) -> bool:
    return path == "/api" or path.startswith(("/api/", "/inbound/"))


def error_response(
    path: str, status: int, problem: str, headers: dict[str, str] | None = None
) -> Response:
    """The one shape of every error: JSON under /api, a small HTML page elsewhere."""
    if wants_json(path):
        return JSONResponse({"error": problem}, status_code=status, headers=headers)
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        '<link rel="stylesheet" href="/static/app.css">'
        f"<title>{status} · digest</title></head><body>"
        '<header class="top"><nav aria-label="Site"><a href="/">Home</a>'
        ' <a href="/archive">Archive</a></nav></header>'
        f"<main><h1>{status}</h1>"
        f'<p class="error">{escape(problem)}</p>'
        + (
            '<form method="get" action="/login"><button>Log in</button></form>'
            if status == 401
            else ""
        )
        + '<p><a href="/">Home</a></p></main></body></html>'
    )
    return HTMLResponse(
        html, status_code=status, headers={"Content-Security-Policy": ERROR_CSP, **(headers or {})}
    )
