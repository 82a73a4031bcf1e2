"""A real HTTP server on 127.0.0.1 serving the feed fixtures in tests/feeds/.

Routes: ``/NAME`` serves tests/feeds/NAME with an ETag (304 on If-None-Match);
``/changing.xml`` serves ``changing-<version>.xml``; ``/status/CODE`` answers
CODE; ``/slow`` never answers until the server stops; ``/loop`` redirects to
itself; ``/big`` streams more than any cap, without a Content-Length;
``/redirect?to=URL`` redirects to URL; ``/trickle`` sends a byte every 50 ms
for 20 s; ``/together/NAME`` answers 404 until ``together`` is set to a
barrier, then serves NAME only once as many such requests as the barrier's
parties are waiting at once (so they are answered only if fetched concurrently).
"""

from __future__ import annotations

import hashlib
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).parent / "feeds"


@dataclass
class FeedServer:
    port: int
    version: int = 1
    requests: list[dict[str, str]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    together: threading.Barrier | None = None
    server_names: list[str | None] = field(default_factory=list)  # TLS SNI, per handshake

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"


def _handler(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            server.requests.append({"path": self.path, **dict(self.headers.items())})
            path = self.path.lstrip("/")
            if path.startswith("redirect?"):
                [target] = parse_qs(urlsplit(self.path).query)["to"]
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif path == "trickle":
                self._trickle()
            elif path.startswith("together/"):
                self._together(path.removeprefix("together/"))
            elif path.startswith("status/"):
                self._send(int(path.split("/")[1]), b"error page", "text/plain")
            elif path == "slow":
                server.release.wait()
                self._send(200, b"", "text/plain")
            elif path == "loop":
                self.send_response(302)
                self.send_header("Location", "/loop")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif path == "big":
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.end_headers()
                chunk = b"<!-- " + b"x" * 65_000 + b" -->\n"
                try:
                    self.wfile.write(b'<?xml version="1.0"?><rss version="2.0"><channel>')
                    for _ in range(200):
                        self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True
            else:
                name = f"changing-{server.version}.xml" if path == "changing.xml" else path
                file = FIXTURES / name
                if "/" in name or not file.is_file():
                    self._send(404, b"not found", "text/plain")
                    return
                data = file.read_bytes()
                etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                kind = "text/html" if name.endswith(".html") else "application/rss+xml"
                self._send(200, data, kind, etag)

        def _together(self, name: str) -> None:
            barrier = server.together
            if barrier is None:
                self._send(404, b"not yet", "text/plain")
                return
            try:
                barrier.wait()
                self._send(200, (FIXTURES / name).read_bytes(), "application/rss+xml")
            except threading.BrokenBarrierError:  # the server is stopping
                pass
            except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                pass

        def _trickle(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.end_headers()
            try:
                for _ in range(400):
                    if server.release.is_set():
                        break
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.05)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True

        def _send(self, code: int, data: bytes, kind: str, etag: str | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            if etag:
                self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def serve_feeds(tls: ssl.SSLContext | None = None) -> Iterator[FeedServer]:
    """The server for the block; HTTPS with ``tls`` (a server context), recording SNI."""
    state = FeedServer(port=0)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    if tls is not None:
        tls.sni_callback = lambda sock, name, context: state.server_names.append(name)
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        if state.together is not None:
            state.together.abort()
        httpd.shutdown()
        httpd.server_close()
        thread.join()
