"""The HTTP transport under feed fetches: pinned addresses and one deadline.

httpx talks to httpcore's connection pool through this transport; the pool
opens connections through ``PinnedBackend``, which

- connects only to the addresses ``pin`` recorded for a host (the ones that
  were resolved and checked), never looking the name up again; the URL keeps
  the host name, so the ``Host`` header, TLS SNI and the certificate check are
  all for the name, as usual;
- caps every connect, TLS handshake, read and write at what is left of one
  ``Deadline``, so a whole fetch, with its redirects and a body trickling in
  a byte at a time, ends when the deadline does.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx


class Deadline:
    """A point in time every network operation of one fetch must finish by."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._at = time.monotonic() + seconds

    def left(self) -> float:
        return self._at - time.monotonic()

    def cap(self, timeout: float | None, expired: type[httpcore.TimeoutException]) -> float:
        """``timeout`` shortened to the time left; ``expired`` raised when none is left."""
        left = self.left()
        if left <= 0:
            raise expired(f"the fetch took longer than {self.seconds:g} s")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadline: Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.cap(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadline.cap(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        capped = self._deadline.cap(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._inner.start_tls(ssl_context, server_hostname, capped), self._deadline
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class PinnedBackend(httpcore.NetworkBackend):
    """Connects to checked addresses only, within the deadline."""

    def __init__(self, deadline: Deadline) -> None:
        self._deadline = deadline
        self._pinned: dict[tuple[str, int], list[str]] = {}
        self._socket = httpcore.SyncBackend()

    def pin(self, host: str, port: int, addresses: list[str]) -> None:
        """Connections to ``host:port`` go to ``addresses`` (already checked), in order."""
        self._pinned[(host, port)] = addresses

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._pinned.get((host, port))
        if not addresses:  # a connection nobody checked: refuse rather than resolve
            raise httpcore.ConnectError(f"{host}:{port} was not checked before connecting")
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            capped = self._deadline.cap(timeout, httpcore.ConnectTimeout)
            try:
                stream = self._socket.connect_tcp(
                    address, port, capped, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
                continue
            return _DeadlineStream(stream, self._deadline)
        assert failure is not None
        raise failure


class _Body(httpx.SyncByteStream):
    def __init__(self, response: httpcore.Response) -> None:
        self._response = response

    def __iter__(self) -> Iterator[bytes]:
        yield from self._response.iter_stream()

    def close(self) -> None:
        self._response.close()


class PinnedTransport(httpx.BaseTransport):
    """An httpx transport over an httpcore pool that connects through a ``PinnedBackend``."""

    def __init__(self, backend: PinnedBackend) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=backend
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, Iterable)
        response = self._pool.handle_request(
            httpcore.Request(
                method=request.method,
                url=httpcore.URL(
                    scheme=request.url.raw_scheme,
                    host=request.url.raw_host,
                    port=request.url.port,
                    target=request.url.raw_path,
                ),
                headers=request.headers.raw,
                content=request.stream,
                extensions=request.extensions,
            )
        )
        return httpx.Response(
            response.status,
            headers=response.headers,
            stream=_Body(response),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()
