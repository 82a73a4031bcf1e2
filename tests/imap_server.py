"""A real IMAP server for the tests: Debian's dovecot on 127.0.0.1 with its own
configuration in a temporary directory (base_dir, a passwd-file with one user
and a static password, Maildir storage), plain IMAP and IMAPS on free ports,
a self-signed certificate made with openssl. `make test` installs
dovecot-imapd; without it these tests skip locally and fail on CI (CI=true).
"""

from __future__ import annotations

import getpass
import grp
import imaplib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from digest.processes.sink import free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
ON_CI = os.environ.get("CI", "").lower() == "true"
USER, PASSWORD = "bounces", "s3cret-pass"
SELF_SIGNED = ("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2")
SELF_SIGNED += ("-subj", "/CN=localhost")


@dataclass(frozen=True)
class ImapServer:
    imap_port: int
    imaps_port: int
    cafile: Path  # the self-signed certificate clients must trust

    def url(self, scheme: str = "imaps", folder: str = "INBOX", password: str = PASSWORD) -> str:
        port = self.imaps_port if scheme == "imaps" else self.imap_port
        return f"{scheme}://{USER}:{password}@127.0.0.1:{port}/{folder}"

    def client(self) -> imaplib.IMAP4_SSL:
        """A logged-in client of the test's own (not digest's)."""
        context = ssl.create_default_context(cafile=str(self.cafile))
        client = imaplib.IMAP4_SSL("127.0.0.1", self.imaps_port, ssl_context=context)
        client.login(USER, PASSWORD)
        return client


def _config(root: Path, mail: Path, imap_port: int, imaps_port: int) -> str:
    as_root = os.getuid() == 0
    user = getpass.getuser()
    group = grp.getgrgid(os.getgid()).gr_name
    # dovecot refuses uid 0 for mail and root for its login processes: as root the
    # mail belongs to nobody and logins run as dovenull (chrooted, as dovecot wants).
    mail_uid, mail_gid = (65534, 65534) if as_root else (os.getuid(), os.getgid())
    login_user = "dovenull" if as_root else user
    # Only root can chroot; a user's dovecot runs its login processes unconfined.
    unconfined = "service imap-login {\n  chroot =\n}\nservice anvil {\n  chroot =\n}\n"
    no_chroot = "" if as_root else unconfined
    return f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {login_user}
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
auth_mechanisms = plain
disable_plaintext_auth = no
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={mail}/%u
}}
mail_location = maildir:{mail}/%u
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
{no_chroot}"""


def _wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dovecot exited: {log.read_text() if log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"dovecot did not listen on {port}")


@pytest.fixture
def imap_server(tmp_path: Path) -> Iterator[ImapServer]:
    with running_imap(tmp_path) as server:
        yield server


@contextmanager
def running_imap(tmp_path: Path, capability: str = "") -> Iterator[ImapServer]:
    """dovecot for the block; ``capability``: the one it announces after login."""
    if not Path(DOVECOT).exists():
        if ON_CI:
            pytest.fail("dovecot missing on CI: install Debian's dovecot-imapd (make test does)")
        pytest.skip("dovecot not installed (Debian package dovecot-imapd; `make test` installs it)")
    root = tmp_path / "dovecot"
    for sub in ("run", "state"):
        (root / sub).mkdir(parents=True)
    # Outside tmp_path: the mail user (nobody, when the tests run as root) must reach it.
    mail = Path(tempfile.mkdtemp(prefix="digest-imap-"))
    if os.getuid() == 0:
        os.chown(mail, 65534, 65534)
    key, cert = str(root / "key.pem"), str(root / "cert.pem")
    subprocess.run(
        [*SELF_SIGNED, "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
        check=True,
        capture_output=True,
    )
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
    imap_port, imaps_port = free_port(), free_port()
    config = root / "dovecot.conf"
    settings = _config(root, mail, imap_port, imaps_port)
    config.write_text(settings + (f"imap_capability = {capability}\n" if capability else ""))
    process = subprocess.Popen([DOVECOT, "-F", "-c", str(config)])
    try:
        _wait_for(imap_port, process, root / "dovecot.log")
        _wait_for(imaps_port, process, root / "dovecot.log")
        yield ImapServer(imap_port, imaps_port, root / "cert.pem")
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(mail, ignore_errors=True)


def folder_messages(server: ImapServer, folder: str) -> list[tuple[bytes, bytes]]:
    """(flags, message) of each message in ``folder``, read by the test's own client."""
    client = server.client()
    try:
        status, _ = client.select(f'"{folder}"', readonly=True)
        if status != "OK":
            return []
        _, found = client.uid("SEARCH", "ALL")
        messages = []
        for uid in found[0].split():
            _, data = client.uid("FETCH", uid.decode(), "(FLAGS BODY.PEEK[])")
            head, body = data[0]
            messages.append((head, body))
        return messages
    finally:
        client.logout()
