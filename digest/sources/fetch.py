"""Fetching a feed document over HTTP(S) (or from a ``file://`` URL), politely and safely.

A timeout, a size cap enforced while streaming, a redirect limit, an honest
User-Agent, and conditional GET (ETag / Last-Modified; 304 means unchanged).
Every failure is a ``SourceError`` naming the feed URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from digest import __version__
from digest.core.errors import SourceError
from digest.core.settings import Settings


@dataclass(frozen=True)
class FetchLimits:
    timeout: float = 15.0
    max_bytes: int = 5_000_000
    max_redirects: int = 5
    user_agent: str = f"digest/{__version__}"

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchLimits:
        agent = settings.feed_user_agent or f"digest/{__version__} (+{settings.base_url})"
        return cls(
            settings.feed_timeout, settings.feed_max_bytes, settings.feed_max_redirects, agent
        )


@dataclass(frozen=True)
class Fetched:
    """A response: ``content`` is None when the server said 304 Not Modified."""

    url: str  # after redirects: the base for relative links
    content: bytes | None
    content_type: str = ""
    etag: str | None = None
    last_modified: str | None = None


def fetch(
    url: str, limits: FetchLimits, etag: str | None = None, last_modified: str | None = None
) -> Fetched:
    """GET ``url`` within ``limits``; conditional when ``etag``/``last_modified`` are known."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "file":
        return _read_file(url, limits)
    if scheme not in {"http", "https"}:
        raise SourceError(url, "feed URL must start with http://, https:// or file://")
    headers = {
        "User-Agent": limits.user_agent,
        "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5",
    }
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        with (
            httpx.Client(
                timeout=limits.timeout,
                follow_redirects=True,
                max_redirects=limits.max_redirects,
                headers=headers,
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code == 304:
                return Fetched(str(response.url), None, etag=etag, last_modified=last_modified)
            if response.status_code >= 400:
                reason = response.reason_phrase or "error"
                raise SourceError(url, f"HTTP {response.status_code} {reason}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limits.max_bytes:
                raise SourceError(url, _too_large(limits))
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > limits.max_bytes:
                    raise SourceError(url, _too_large(limits))
            return Fetched(
                str(response.url),
                bytes(body),
                response.headers.get("Content-Type", ""),
                response.headers.get("ETag"),
                response.headers.get("Last-Modified"),
            )
    except httpx.TooManyRedirects:
        raise SourceError(url, f"more than {limits.max_redirects} redirects (a loop?)") from None
    except httpx.TimeoutException:
        raise SourceError(url, f"timed out after {limits.timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise SourceError(url, f"cannot fetch: {exc or type(exc).__name__}") from None


def _read_file(url: str, limits: FetchLimits) -> Fetched:
    path = Path(unquote(urlsplit(url).path))
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise SourceError(url, _too_large(limits))
        return Fetched(url, path.read_bytes())
    except OSError as exc:
        raise SourceError(url, f"cannot read: {exc.strerror}") from None


def _too_large(limits: FetchLimits) -> str:
    return f"response larger than {limits.max_bytes} bytes"
