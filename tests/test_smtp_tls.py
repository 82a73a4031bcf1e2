"""STARTTLS, implicit TLS (smtps), DIGEST_SMTP_CA_FILE and AUTH against aiosmtpd on 127.0.0.1.

The server's certificate comes from a throwaway CA made for the test (trustme);
the client trusts it only through DIGEST_SMTP_CA_FILE.
"""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from conftest import Captured, Cli
from sending_setup import edition_with

from digest.processes.sink import free_port

USER, PASSWORD = "mailer", "s3cret pass"


def check_login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)  # let aiosmtpd answer 535 on a failure


@dataclass
class TlsServer:
    handler: Captured
    port: int
    ca_file: Path
    other_ca_file: Path


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path, Path]:
    """A server context for 127.0.0.1 signed by a test CA, that CA's PEM and an unrelated CA's."""
    where = tmp_path_factory.mktemp("certs")
    ca, stranger = trustme.CA(), trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    ca.cert_pem.write_to_path(str(where / "ca.pem"))
    stranger.cert_pem.write_to_path(str(where / "other-ca.pem"))
    return context, where / "ca.pem", where / "other-ca.pem"


def _serve(implicit: bool, certs: tuple[ssl.SSLContext, Path, Path]) -> Iterator[TlsServer]:
    context, ca_file, other = certs
    handler = Captured()
    port = free_port()
    tls: dict[str, Any] = (
        {"ssl_context": context, "auth_require_tls": False}  # TLS from the first byte
        if implicit
        else {"tls_context": context, "require_starttls": True}
    )
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=check_login,
        auth_required=True,
        **tls,
    )
    with warnings.catch_warnings():
        # aiosmtpd cannot tell that an implicit-TLS connection is encrypted and warns
        # that AUTH is allowed without TLS; here every byte is on TLS.
        warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
        controller.start()
        try:
            yield TlsServer(handler, port, ca_file, other)
        finally:
            controller.stop()


@pytest.fixture
def starttls_server(certs: tuple[ssl.SSLContext, Path, Path]) -> Iterator[TlsServer]:
    yield from _serve(False, certs)


@pytest.fixture
def smtps_server(certs: tuple[ssl.SSLContext, Path, Path]) -> Iterator[TlsServer]:
    yield from _serve(True, certs)


def _send(cli: Cli, url: str, ca_file: Path | None, subscribers: int = 3) -> tuple[Any, Any]:
    """Send edition 1 to N subscribers over ``url``; returns (CLI result, ledger states)."""
    with edition_with(cli, subscribers) as ed:
        cli.env["DIGEST_SMTP_URL"] = url
        cli.env["DIGEST_BACKOFF_SECONDS"] = "0"
        if ca_file is not None:
            cli.env["DIGEST_SMTP_CA_FILE"] = str(ca_file)
        result = cli("send", "1", ok=False)
        return result, ed.states()


def test_smtp_starttls_with_the_ca_file_and_auth_delivers(
    cli: Cli, starttls_server: TlsServer
) -> None:
    srv = starttls_server
    url = f"smtp+starttls://{USER}:s3cret%20pass@127.0.0.1:{srv.port}"
    result, states = _send(cli, url, srv.ca_file)
    assert result.exit_code == 0, result.output
    assert set(states.values()) == {"sent"}
    assert sorted(r for _, rs, _ in srv.handler.envelopes for r in rs) == sorted(states)


def test_smtp_implicit_tls_with_the_ca_file_and_auth_delivers(
    cli: Cli, smtps_server: TlsServer
) -> None:
    srv = smtps_server
    url = f"smtps://{USER}:s3cret%20pass@127.0.0.1:{srv.port}"
    result, states = _send(cli, url, srv.ca_file)
    assert result.exit_code == 0, result.output
    assert set(states.values()) == {"sent"}
    assert len(srv.handler.envelopes) == 3


@pytest.mark.parametrize("scheme", ["smtp+starttls", "smtps"])
def test_smtp_tls_with_an_unknown_ca_fails_in_one_line_and_sends_nothing(
    cli: Cli, certs: tuple[ssl.SSLContext, Path, Path], scheme: str
) -> None:
    servers = _serve(scheme == "smtps", certs)
    srv = next(servers)
    try:
        url = f"{scheme}://{USER}:s3cret%20pass@127.0.0.1:{srv.port}"
        result, states = _send(cli, url, srv.other_ca_file)
    finally:
        servers.close()
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines == [
        f"Error: SMTP server {scheme}://127.0.0.1:{srv.port}: certificate not trusted: "
        "unable to get local issuer certificate"
    ]
    assert srv.handler.envelopes == []
    assert set(states.values()) == {"pending"}  # nothing went out: the next send carries on


def test_smtp_tls_without_the_ca_file_does_not_trust_a_private_ca(
    cli: Cli, smtps_server: TlsServer
) -> None:
    url = f"smtps://127.0.0.1:{smtps_server.port}"
    result, states = _send(cli, url, None)
    assert result.exit_code == 1
    assert "certificate not trusted" in result.output
    assert set(states.values()) == {"pending"}


def test_smtp_auth_with_a_wrong_password_fails_in_one_line(
    cli: Cli, starttls_server: TlsServer
) -> None:
    srv = starttls_server
    url = f"smtp+starttls://{USER}:wrong@127.0.0.1:{srv.port}"
    result, states = _send(cli, url, srv.ca_file)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: SMTP server smtp+starttls://127.0.0.1:{srv.port}: "
        "login refused: 535 5.7.8 Authentication credentials invalid"
    ]
    assert srv.handler.envelopes == []
    assert set(states.values()) == {"pending"}


def test_smtp_ca_file_that_cannot_be_read_is_a_setting_error(
    cli: Cli, smtps_server: TlsServer, tmp_path: Path
) -> None:
    url = f"smtps://127.0.0.1:{smtps_server.port}"
    result, states = _send(cli, url, tmp_path / "missing.pem")
    assert result.exit_code == 1
    assert result.output.startswith("Error: setting DIGEST_SMTP_CA_FILE: cannot load ")
    assert set(states.values()) == {"pending"}
