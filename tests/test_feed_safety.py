"""What a feed may reach and how long it may take: addresses, redirects, files, one deadline.

The feed server runs on 127.0.0.1. Public hosts cannot be reached from here,
so ``internet`` stands in for DNS and routing (and only for that): it answers
chosen names with chosen addresses and carries connections for a public
address to the local server, the way a router would. Everything above the
socket (the checks, the redirects, httpx, the CLI) is the real thing.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from conftest import Cli
from feed_server import FeedServer, serve_feeds
from sqlalchemy import select

from digest.core.db import make_engine, session_factory
from digest.core.models import Feed
from digest.processes.jobs import poll_feeds
from digest.sources.fetch import FetchLimits, fetch

PUBLIC = "93.184.215.14"  # a public address; connections to it are carried to 127.0.0.1
HINT = "set DIGEST_FEED_ALLOW_PRIVATE=true to fetch feeds from such addresses"


@dataclass
class Internet:
    """Stand-in DNS answers (each lookup takes the next list; the last repeats) and routes."""

    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    routes: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)


@pytest.fixture
def internet(monkeypatch: pytest.MonkeyPatch) -> Internet:
    net = Internet()
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.create_connection

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in net.answers:
            return real_getaddrinfo(host, port, *args, **kwargs)
        net.lookups.append(host)
        queue = net.answers[host]
        ips = queue.pop(0) if len(queue) > 1 else queue[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, int(port))) for ip in ips]

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        return real_connect(net.routes.get(address, address), *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    return net


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with serve_feeds() as running:
        yield running


def public_name(internet: Internet, server: FeedServer, name: str = "feed.example") -> str:
    """``name`` resolves to a public address whose port ``server.port`` is the feed server."""
    internet.answers[name] = [[PUBLIC]]
    internet.routes[(PUBLIC, server.port)] = ("127.0.0.1", server.port)
    return f"http://{name}:{server.port}"


def feed_rows(cli: Cli) -> list[dict[str, Any]]:
    return json.loads(cli("feeds", "list", "--json").output)


def test_feeds_add_refuses_a_feed_on_loopback_unless_private_addresses_are_allowed(
    ready: Cli, server: FeedServer
) -> None:
    url = server.url("rss2.xml")
    refused = ready("feeds", "add", url, ok=False)
    assert refused.exit_code == 1
    assert refused.output == f"Error: {url}: 127.0.0.1 is a loopback address; {HINT}\n"
    assert feed_rows(ready) == [] and server.requests == []
    ready.env["DIGEST_FEED_ALLOW_PRIVATE"] = "true"
    assert "0 new, 3 existing items marked seen" in ready("feeds", "add", url).output


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("localhost", "localhost resolves to 127.0.0.1, a loopback address"),
        ("2130706433", "2130706433 resolves to 127.0.0.1, a loopback address"),
        ("[::1]", "::1 is a loopback address"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1 is a loopback address"),
        ("[::ffff:10.1.2.3]", "::ffff:10.1.2.3 is a private address"),
        ("0.0.0.0", "0.0.0.0 is an unspecified address"),
        ("[::]", ":: is an unspecified address"),
        ("169.254.169.254", "169.254.169.254 is a link-local address"),
        ("[fe80::1]", "fe80::1 is a link-local address"),
        ("10.0.0.8", "10.0.0.8 is a private address"),
        ("192.168.1.1", "192.168.1.1 is a private address"),
        ("[fd00::1]", "fd00::1 is a private address"),
        ("224.0.0.1", "224.0.0.1 is a multicast address"),
        ("240.0.0.1", "240.0.0.1 is a reserved address"),
        ("100.64.0.1", "100.64.0.1 is a non-public address"),
        ("[64:ff9b::a00:1]", "64:ff9b::a00:1 is a private address"),
    ],
)
def test_feeds_add_refuses_every_kind_of_non_public_address(
    ready: Cli, host: str, problem: str
) -> None:
    url = f"http://{host}:8080/feed.xml"
    refused = ready("feeds", "add", url, ok=False)
    assert refused.exit_code == 1
    assert refused.output == f"Error: {url}: {problem}; {HINT}\n"
    assert feed_rows(ready) == []


def test_feeds_add_refuses_a_name_when_any_of_its_addresses_is_private(
    ready: Cli, internet: Internet
) -> None:
    internet.answers["mixed.example"] = [[PUBLIC, "10.0.0.5"]]
    url = "http://mixed.example/feed.xml"
    refused = ready("feeds", "add", url, ok=False)
    assert refused.output == (
        f"Error: {url}: mixed.example resolves to 10.0.0.5, a private address; {HINT}\n"
    )
    assert feed_rows(ready) == []


def test_feeds_fetch_follows_a_redirect_on_a_public_host_with_the_original_host_header(
    ready: Cli, server: FeedServer, internet: Internet
) -> None:
    base = public_name(internet, server)
    out = ready("feeds", "add", f"{base}/redirect?to=/rss2.xml").output
    assert "0 new, 3 existing items marked seen" in out
    assert [r["path"] for r in server.requests] == ["/redirect?to=/rss2.xml", "/rss2.xml"]
    assert {r["Host"] for r in server.requests} == {f"feed.example:{server.port}"}


def test_feeds_fetch_refuses_a_redirect_from_a_public_host_to_loopback(
    ready: Cli, server: FeedServer, internet: Internet
) -> None:
    base = public_name(internet, server)
    inside = server.url("rss2.xml")
    url = f"{base}/redirect?to={inside}"
    out = ready("feeds", "add", url).output
    assert f"failed: {url}: redirected to {inside}: 127.0.0.1 is a loopback address" in out
    assert [r["path"] for r in server.requests] == [f"/redirect?to={inside}"]
    [row] = feed_rows(ready)
    assert row["last_success_at"] is None
    assert row["last_error"] == f"redirected to {inside}: 127.0.0.1 is a loopback address; {HINT}"


def test_feeds_fetch_refuses_a_redirect_to_a_file(
    ready: Cli, server: FeedServer, internet: Internet
) -> None:
    url = f"{public_name(internet, server)}/redirect?to=file:///etc/passwd"
    out = ready("feeds", "add", url).output
    assert f"failed: {url}: redirected to file:///etc/passwd, not an http(s) URL" in out


def test_fetch_connects_to_the_checked_address_not_to_a_second_lookup(
    server: FeedServer, internet: Internet
) -> None:
    """A name that answers public once, then loopback (DNS rebinding), still reaches the
    public address: the one that was checked."""
    base = public_name(internet, server)
    with serve_feeds() as inside:  # what a second lookup would reach: 127.0.0.1, same port
        internet.routes[("127.0.0.1", server.port)] = ("127.0.0.1", inside.port)
        internet.answers["feed.example"] = [[PUBLIC], ["127.0.0.1"]]
        got = fetch(f"{base}/rss2.xml", FetchLimits(timeout=10))
        assert inside.requests == []
    assert got.content is not None and b"Night market" in got.content
    assert [r["path"] for r in server.requests] == ["/rss2.xml"]
    assert internet.lookups == ["feed.example"]


@pytest.fixture
def https_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FeedServer]:
    """The feed server over HTTPS with a certificate for feed.example from a test CA."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("feed.example").configure_cert(context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))  # trust the test CA
    with serve_feeds(tls=context) as running:
        yield running


def test_feeds_fetch_over_https_sends_sni_and_checks_the_certificate_for_the_host_name(
    ready: Cli, https_server: FeedServer, internet: Internet
) -> None:
    """The connection goes to the checked address, yet TLS is for the name in the URL."""
    base = public_name(internet, https_server).replace("http://", "https://")
    out = ready("feeds", "add", f"{base}/rss2.xml").output
    assert "0 new, 3 existing items marked seen" in out
    assert https_server.server_names == ["feed.example"]
    assert https_server.requests[0]["Host"] == f"feed.example:{https_server.port}"


def test_feeds_fetch_over_https_refuses_a_certificate_for_another_name(
    ready: Cli, https_server: FeedServer, internet: Internet
) -> None:
    url = public_name(internet, https_server, "other.example").replace("http://", "https://")
    out = ready("feeds", "add", f"{url}/rss2.xml").output
    assert "certificate verify failed" in out and "other.example" in out
    assert https_server.requests == []


@pytest.mark.parametrize("kind", ["device", "fifo", "directory"])
def test_feeds_add_refuses_a_file_that_is_not_a_regular_file(
    ready: Cli, tmp_path: Path, kind: str
) -> None:
    paths = {"device": Path("/dev/zero"), "fifo": tmp_path / "feed.xml", "directory": tmp_path}
    path = paths[kind]
    if kind == "fifo":
        os.mkfifo(path)
    url = path.as_uri()
    refused = ready("feeds", "add", url, ok=False)
    what = {"device": "a device", "fifo": "a FIFO", "directory": "a directory"}[kind]
    assert refused.output == (
        f"Error: {url}: {what}, not a regular file: a file:// feed must be a file\n"
    )
    assert feed_rows(ready) == []


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_feeds_fetch_refuses_a_feed_file_replaced_by_a_device_or_fifo(
    ready: Cli, tmp_path: Path, kind: str
) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes((Path(__file__).parent / "feeds" / "rss2.xml").read_bytes())
    ready("feeds", "add", feed.as_uri())
    feed.unlink()
    if kind == "fifo":
        os.mkfifo(feed)
    else:
        feed.symlink_to("/dev/zero")
    result = ready("feeds", "fetch", ok=False)
    what = {"device": "a device", "fifo": "a FIFO"}[kind]
    assert f"failed: {feed.as_uri()}: {what}, not a regular file" in result.output
    assert result.output.endswith("Error: 1 feed failed (see `digest feeds list`)\n")


def test_feeds_fetch_refuses_a_feed_file_over_the_size_cap(ready: Cli, tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(b"<rss>" + b" " * 5000 + b"</rss>")
    ready.env["DIGEST_FEED_MAX_BYTES"] = "4096"
    out = ready("feeds", "add", feed.as_uri()).output
    assert f"failed: {feed.as_uri()}: response larger than 4096 bytes" in out


def test_clock_poll_does_not_read_file_feeds(ready: Cli) -> None:
    """Only the operator's own commands read files; the clock refuses, and says so on the feed."""
    feed = Path(__file__).parent / "feeds" / "rss2.xml"
    ready("feeds", "add", feed.as_uri())
    settings = ready.settings()
    engine = make_engine(settings.effective_database_url)
    try:
        poll_feeds(settings, session_factory(engine))
        with session_factory(engine)() as s:
            [error] = s.scalars(select(Feed.last_error)).all()
    finally:
        engine.dispose()
    assert error == (
        "file:// feeds are read only by `digest feeds add` / `digest feeds fetch` and the demo"
    )


def test_feeds_fetch_cuts_a_trickling_feed_at_the_timeout(ready: Cli, server: FeedServer) -> None:
    ready.env |= {"DIGEST_FEED_ALLOW_PRIVATE": "true", "DIGEST_FEED_TIMEOUT": "0.5"}
    url = server.url("trickle")
    out = ready("feeds", "add", url).output
    assert f"feed 1 {url}: failed: {url}: timed out after 0.5 s" in out


def test_feeds_fetch_fetches_feeds_at_once_so_a_slow_one_holds_up_no_other(
    ready: Cli, server: FeedServer
) -> None:
    """The two ``together`` feeds are answered only while both requests wait at once; the
    slow feed (first in line) never answers. One after the other, feed 2 would time out."""
    ready.env |= {"DIGEST_FEED_ALLOW_PRIVATE": "true", "DIGEST_FEED_TIMEOUT": "0.5"}
    slow, atom, rdf = (server.url(p) for p in ("slow", "together/atom.xml", "together/rdf.xml"))
    for url in (slow, atom, rdf):  # each first fetch fails (slow; 404): nothing is primed yet
        ready("feeds", "add", url, "--backfill", "10")
    server.together = threading.Barrier(2)
    ready.env["DIGEST_FEED_TIMEOUT"] = "3"
    result = ready("feeds", "fetch", ok=False)
    assert result.output.splitlines() == [
        f"feed 1 {slow}: failed: {slow}: timed out after 3 s",
        f"feed 2 {atom}: 2 new",
        f"feed 3 {rdf}: 1 new",
        "Error: 1 feed failed (see `digest feeds list`)",
    ]
    headlines = {s["headline"] for s in json.loads(ready("stories", "list", "--json").output)}
    assert headlines == {
        "Tram line gets new timetable",
        "Park cleanup on Sunday",
        "Ferry adds a late sailing",
    }
