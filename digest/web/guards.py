"""What a request must be before any route sees it: for a known Host, not too large, not a
cross-site write.

``HostGuard``: only loopback names (``127.0.0.1``, ``localhost``, ``::1``), the
host of ``DIGEST_BASE_URL`` and those in ``DIGEST_ALLOWED_HOSTS`` are served,
on any port; any other ``Host`` gets 400 with a one-line body, so a page that
rebinds its own DNS name to this machine cannot reach the app. ``/healthz`` is
exempt: platform probes call it by an IP or internal name, and it tells only
"ok" or "database unreachable".

``OriginGuard``: an unsafe request (any method but GET, HEAD and OPTIONS) that
a browser marks as cross-site (an ``Origin`` other than the app's own, or
``Sec-Fetch-Site: cross-site`` / ``same-site``) gets 403 before any route runs,
whatever its body, cookies or access mode. The app's own origins are the
origin of ``DIGEST_BASE_URL`` and the request's own ``scheme://Host`` (its Host
passed ``HostGuard``); ``Origin: null`` counts as own only beside
``Sec-Fetch-Site: same-origin`` (a browser posting this site's form under a
no-referrer policy). Two routes are meant to be posted from elsewhere and
stay open: ``POST /subscribe`` (the public form, embeddable on any site) and the
RFC 8058 one-click ``POST /unsubscribe/TOKEN`` whose body is
``List-Unsubscribe=One-Click``. A request with neither ``Origin`` nor
``Sec-Fetch-*`` is no browser's (curl, scripts, mail providers): it goes on to
the ordinary access rules (the Bearer token; open mode binds only to loopback).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

from fastapi.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.core.settings import Settings
from digest.web.errors import error_response

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
UNGUARDED_HOST_PATHS = frozenset({"/healthz"})
ONE_CLICK_PATH = re.compile(r"/unsubscribe/[^/]+")
DEFAULT_PORTS = {"http": 80, "https": 443}


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lower case), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def host_name(host: str) -> str | None:
    """The name in a ``Host`` value, lower case, no port or IPv6 brackets; None if malformed."""
    host = host.strip().lower()
    if host.startswith("["):
        name, bracket, port = host[1:].partition("]")
        if not bracket or (port and not (port.startswith(":") and port[1:].isdigit())):
            return None
        return name or None
    name, colon, port = host.partition(":")
    if colon and not port.isdigit():
        return None
    return name or None


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, normalised (lower case, no default port); '' if none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return ""
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in DEFAULT_PORTS or not host:
        return ""
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" + (f":{port}" if port and port != DEFAULT_PORTS[scheme] else "")


def served_hosts(settings: Settings) -> frozenset[str]:
    """Every ``Host`` name the app answers to."""
    base = urlsplit(settings.base_url).hostname
    return LOOPBACK_NAMES | settings.allowed_host_names | ({base} if base else set())


class HostGuard:
    """400 for a request whose ``Host`` is not one the app serves."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.hosts = served_hosts(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in UNGUARDED_HOST_PATHS:
            given = header(scope, b"host") or ""
            if host_name(given) not in self.hosts:
                shown = given[:80] or "(none)"
                problem = f"unknown host {shown!r}: not in DIGEST_ALLOWED_HOSTS\n"
                await PlainTextResponse(problem, 400)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def is_one_click(content_type: str, body: bytes) -> bool:
    """Whether ``body`` is the RFC 8058 one-click POST (``List-Unsubscribe=One-Click``)."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "multipart/form-data":  # no multipart parser here: the part's name and value
        return b'name="List-Unsubscribe"' in body and b"One-Click" in body
    text = body.decode("utf-8", "replace")
    return ("List-Unsubscribe", "One-Click") in parse_qsl(text, keep_blank_values=True)


class OriginGuard:
    """403 for an unsafe request a browser marks as cross-site, except the two public posts."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.base_origin = origin_of(settings.base_url)

    def cross_site(self, scope: Scope) -> str | None:
        """Why this request comes from another site, or None."""
        fetch_site = (header(scope, b"sec-fetch-site") or "").strip().lower()
        if fetch_site in ("cross-site", "same-site"):
            return f"Sec-Fetch-Site: {fetch_site}"
        origin = header(scope, b"origin")
        if origin is None or (origin.strip() == "null" and fetch_site == "same-origin"):
            return None  # "null": this site's own form under a no-referrer policy
        own = {self.base_origin, origin_of(f"{scope['scheme']}://{header(scope, b'host') or ''}")}
        if origin_of(origin) in own - {""}:
            return None
        return f"Origin {origin[:80]!r} is not this site"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        why = self.cross_site(scope)
        path = scope["path"]
        if why is None or (scope["method"] == "POST" and path == "/subscribe"):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "POST" and ONE_CLICK_PATH.fullmatch(path):
            body = await read_body(receive) or b""
            if is_one_click(header(scope, b"content-type") or "", body):
                await self.app(scope, replaying(body, receive), send)
                return
        problem = f"cross-site request refused ({why})"
        await error_response(path, 403, problem)(scope, receive, send)


class BodyLimit:
    """413 for a request body over ``limit`` bytes, before any route reads it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length") or ""
        body = None
        if not (declared.isdigit() and int(declared) > self.limit):
            body = await read_body(receive, self.limit)  # at most limit + 1 bytes of it
        if body is None:
            problem = f"request body too large (limit {self.limit} bytes)"
            await error_response(scope["path"], 413, problem)(scope, receive, send)
            return
        await self.app(scope, replaying(body, receive), send)


async def read_body(receive: Receive, limit: int | None = None) -> bytes | None:
    """The whole request body; None as soon as it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        more = message.get("more_body", False)
        if limit is not None and size > limit:
            return None
    return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the app ``body`` (already read), then the rest of the connection."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
