"""Fetching a feed document over HTTP(S) (or from a ``file://`` URL), politely and safely.

One deadline for the whole fetch (every redirect and the body included), a
size cap enforced while streaming, redirects followed here (a bounded number,
each target's addresses checked like the first), an honest User-Agent, and
conditional GET (ETag / Last-Modified; 304 means unchanged). Hosts that resolve
to loopback, private, link-local or other non-public addresses are refused
unless ``allow_private``; ``file://`` URLs are read only when ``allow_files``
(the operator's own commands). Every failure is a ``SourceError`` naming the
feed URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore
import httpx

from digest import __version__
from digest.core.errors import SourceError
from digest.core.settings import Settings
from digest.sources import addresses, localfile
from digest.sources.connections import Deadline, PinnedBackend, PinnedTransport

REDIRECTS = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}
FILES_REFUSED = (
    "file:// feeds are read only by `digest feeds add` / `digest feeds fetch` and the demo"
)
NOT_A_FEED_URL = "feed URL must start with http://, https:// or file://"


@dataclass(frozen=True)
class FetchLimits:
    timeout: float = 15.0  # the whole fetch: redirects, connects, the body
    max_bytes: int = 5_000_000
    max_redirects: int = 5
    user_agent: str = f"digest/{__version__}"
    allow_private: bool = False
    allow_files: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, *, files: bool = False) -> FetchLimits:
        """Limits from the settings; ``files`` lets the caller (the CLI, the demo) read files."""
        agent = settings.feed_user_agent or f"digest/{__version__} (+{settings.base_url})"
        return cls(
            settings.feed_timeout,
            settings.feed_max_bytes,
            settings.feed_max_redirects,
            agent,
            settings.feed_allow_private,
            files,
        )


@dataclass(frozen=True)
class Fetched:
    """A response: ``content`` is None when the server said 304 Not Modified."""

    url: str  # after redirects: the base for relative links
    content: bytes | None
    content_type: str = ""
    etag: str | None = None
    last_modified: str | None = None


def check_admissible(url: str, limits: FetchLimits) -> None:
    """Refuse now what every fetch of ``url`` would refuse (a forbidden address or file).

    What may pass later (a name that does not resolve yet, a missing file) is left
    to the fetch, which records it on the feed.
    """
    if _scheme(url) == "file":
        if not limits.allow_files:
            raise SourceError(url, FILES_REFUSED)
        localfile.check_regular(url)
        return
    host, port = _host_port(_parse(url))
    try:
        found = addresses.resolve(host, port, limits.timeout)
    except OSError:  # TimeoutError included
        return
    if not limits.allow_private and (why := addresses.refusal(host, found)):
        raise SourceError(url, why)


def fetch(
    url: str, limits: FetchLimits, etag: str | None = None, last_modified: str | None = None
) -> Fetched:
    """GET ``url`` within ``limits``; conditional when ``etag``/``last_modified`` are known."""
    if _scheme(url) == "file":
        if not limits.allow_files:
            raise SourceError(url, FILES_REFUSED)
        return Fetched(url, localfile.read_capped(url, limits.max_bytes))
    start = _parse(url)
    headers = {
        "User-Agent": limits.user_agent,
        "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5",
    }
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    deadline = Deadline(limits.timeout)
    backend = PinnedBackend(deadline)
    try:
        with httpx.Client(
            transport=PinnedTransport(backend),
            headers=headers,
            timeout=limits.timeout,
            follow_redirects=False,
            trust_env=False,  # no proxy: the connection goes to the checked address
        ) as client:
            current = start
            for _ in range(limits.max_redirects + 1):
                _pin(backend, url, current, current is start, limits, deadline)
                with client.stream("GET", current) as response:
                    location = response.headers.get("Location")
                    if response.status_code not in REDIRECTS or not location:
                        return _read(url, response, limits, etag, last_modified)
                current = _redirect_target(url, current, location)
    except (httpcore.TimeoutException, TimeoutError):
        raise SourceError(url, f"timed out after {limits.timeout:g} s") from None
    except (httpcore.NetworkError, httpcore.ProtocolError, httpx.HTTPError) as exc:
        raise SourceError(url, f"cannot fetch: {exc or type(exc).__name__}") from None
    raise SourceError(url, f"more than {limits.max_redirects} redirects (a loop?)")


def _pin(
    backend: PinnedBackend,
    url: str,
    target: httpx.URL,
    first: bool,
    limits: FetchLimits,
    deadline: Deadline,
) -> None:
    """Resolve and check ``target``'s host once; its connections go to those addresses."""
    host, port = _host_port(target)
    via = "" if first else f"redirected to {target}: "
    try:
        found = addresses.resolve(host, port, deadline.left())
    except TimeoutError:
        raise
    except OSError as exc:
        raise SourceError(url, f"{via}cannot resolve {host}: {_reason(exc)}") from None
    if not limits.allow_private and (why := addresses.refusal(host, found)):
        raise SourceError(url, via + why)
    backend.pin(host, port, found)


def _read(
    url: str,
    response: httpx.Response,
    limits: FetchLimits,
    etag: str | None,
    last_modified: str | None,
) -> Fetched:
    final = str(response.url)
    if response.status_code == 304:
        return Fetched(final, None, etag=etag, last_modified=last_modified)
    if response.status_code >= 400:
        reason = response.reason_phrase or "error"
        raise SourceError(url, f"HTTP {response.status_code} {reason}")
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise SourceError(url, localfile.too_large(limits.max_bytes))
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > limits.max_bytes:
            raise SourceError(url, localfile.too_large(limits.max_bytes))
    return Fetched(
        final,
        bytes(body),
        response.headers.get("Content-Type", ""),
        response.headers.get("ETag"),
        response.headers.get("Last-Modified"),
    )


def _redirect_target(url: str, current: httpx.URL, location: str) -> httpx.URL:
    try:
        target = current.join(location)
    except httpx.InvalidURL:
        raise SourceError(url, f"redirected to an invalid URL {location!r}") from None
    if target.scheme not in DEFAULT_PORTS or not target.host:
        raise SourceError(url, f"redirected to {location}, not an http(s) URL")
    return target


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _scheme(url: str) -> str:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in {"http", "https", "file"}:
        raise SourceError(url, NOT_A_FEED_URL)
    return scheme


def _parse(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise SourceError(url, f"not a valid URL: {exc}") from None
    if not parsed.host:
        raise SourceError(url, NOT_A_FEED_URL)
    return parsed


def _host_port(target: httpx.URL) -> tuple[str, int]:
    """The host as the connection pool sees it (ASCII, IDNA-encoded) and the port."""
    return target.raw_host.decode("ascii"), target.port or DEFAULT_PORTS[target.scheme]
