"""Shared fixtures: a fresh database per test (SQLite always, PostgreSQL when
DIGEST_TEST_DATABASE_URL names a server), a real SMTP server, and a CLI runner."""

from __future__ import annotations

import gc
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from digest.cli import main
from digest.core.settings import Settings, load_settings, normalize_database_url
from digest.processes.sink import free_port

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
REFERENCE_STORY = SEEDS / "stories" / "000_d299275f2fa711fe.txt"
PG_ENV = "DIGEST_TEST_DATABASE_URL"
BACKENDS_RUN: set[str] = set()


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI", "").lower() == "true" and not os.environ.get(PG_ENV):
        raise pytest.UsageError(
            f"CI=true needs PostgreSQL: set {PG_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/"
            "postgres); without it the PostgreSQL-only tests would be skipped"
        )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        backends = ["sqlite"] + (["postgresql"] if os.environ.get(PG_ENV) else [])
        metafunc.parametrize("backend", backends, scope="session")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    ran = ", ".join(sorted(BACKENDS_RUN)) or "none"
    terminalreporter.write_line(f"database backends exercised: {ran}")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    """A throwaway PostgreSQL database for this run, dropped at the end."""
    server = os.environ.get(PG_ENV)
    if not server:
        yield None
        return
    server_url = normalize_database_url(server)
    name = f"digest_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def database_url(backend: str, pg_database: str | None, tmp_path: Path) -> str:
    """An empty, uninitialised database on the backend under test."""
    BACKENDS_RUN.add(backend)
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'var' / 'digest.db'}"
    assert pg_database is not None
    engine = create_engine(pg_database)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return pg_database


@pytest.fixture(autouse=True)
def collect_garbage() -> Iterator[None]:
    """A database connection a test leaves open is blamed on that test.

    Unreferenced engines sit in reference cycles, so their connections would
    otherwise be closed, with a ResourceWarning, by whichever later test the
    collector happens to run in. Collecting at each test's teardown makes the
    warning (an error here) deterministic and names the test that leaked."""
    yield
    gc.collect()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting from the developer's shell leaks into a test."""
    for key in list(os.environ):
        if (key.startswith("DIGEST_") and key != PG_ENV) or key in {"DATABASE_URL", "PORT"}:
            monkeypatch.delenv(key)


@dataclass
class Captured:
    """Messages a real SMTP server (aiosmtpd on 127.0.0.1) received."""

    envelopes: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    reject: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.reject:
            return self.reject[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(
            (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        )
        return "250 OK queued"

    def messages(self) -> list[EmailMessage]:
        return [
            message_from_bytes(data, policy=policy.default)  # type: ignore[misc]
            for _, _, data in self.envelopes
        ]


@contextmanager
def running_smtp(handler: Any, **options: Any) -> Iterator[int]:
    """An aiosmtpd server on 127.0.0.1 with ``handler``, for the block; yields its port.

    ``options`` go to aiosmtpd (e.g. ``enable_SMTPUTF8=False``: it offers SMTPUTF8 by default).
    """
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[tuple[Captured, int]]:
    handler = Captured()
    with running_smtp(handler) as port:
        yield handler, port


@dataclass
class Cli:
    env: dict[str, str]
    cwd: Path

    def __call__(self, *args: str, ok: bool = True) -> Result:
        runner = CliRunner()
        old = Path.cwd()
        os.chdir(self.cwd)
        try:
            result = runner.invoke(main, list(args), env=self.env, catch_exceptions=False)
        finally:
            os.chdir(old)
        if ok and result.exit_code != 0:
            raise AssertionError(
                f"digest {' '.join(args)} exited {result.exit_code}:\n{result.output}"
            )
        return result

    def settings(self, **extra: Any) -> Settings:
        """The settings this CLI's commands read, with ``extra`` on top."""
        values: dict[str, Any] = {k.removeprefix("DIGEST_").lower(): v for k, v in self.env.items()}
        values.update(extra)
        return load_settings(**values)


@pytest.fixture
def cli(database_url: str, tmp_path: Path, smtp_server: tuple[Captured, int]) -> Cli:
    """The digest CLI against a fresh database and the test SMTP server."""
    _, port = smtp_server
    env = {
        "DIGEST_DATABASE_URL": database_url,
        "DIGEST_VAR_DIR": str(tmp_path / "var"),
        "DIGEST_SMTP_URL": f"smtp://127.0.0.1:{port}",
        "DIGEST_SECRET_KEY": "test-secret",
    }
    return Cli(env, tmp_path)


@pytest.fixture
def ready(cli: Cli) -> Cli:
    """The CLI on an initialised database."""
    cli("init")
    return cli


@pytest.fixture
def captured(smtp_server: tuple[Captured, int]) -> Captured:
    return smtp_server[0]


@pytest.fixture
def story_dir(tmp_path: Path) -> Path:
    """A directory with a copy of the reference seed story."""
    target = tmp_path / "stories"
    target.mkdir()
    shutil.copy(REFERENCE_STORY, target)
    return target


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """A kept folder for screenshots and other test artifacts: var/test-artifacts/TEST."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in request.node.name)
    folder = REPO / "var" / "test-artifacts" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# Headless Chromium: Debian's chromium driven by playwright (its own browser
# download does not work here). `make test` installs chromium when missing;
# without it browser tests skip locally and fail on CI (CI=true).
CHROMIUM = Path("/usr/bin/chromium")
ON_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if ON_CI:
            pytest.fail(f"{CHROMIUM} missing on CI: install Debian's chromium (make test does)")
        pytest.skip(f"{CHROMIUM} not installed (Debian package chromium; `make test` installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
