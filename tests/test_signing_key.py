"""One signing key for every process: without DIGEST_SECRET_KEY it lives in the database,
so a link mailed by a process with one var/ works in a web app with another."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from conftest import REFERENCE_STORY, Captured, Cli
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from subscriber_web import ONE_CLICK

from digest.core.db import make_engine, session_factory, upgrade
from digest.core.settings import load_settings
from digest.web.app import create_app
from subscribers.models import Subscriber

STALE_KEY = "a-key-some-older-process-generated-for-itself"


def digest_in(cli: Cli, var_dir: Path, *args: str) -> str:
    """`digest ARGS` as a real process with its own var/ and no DIGEST_SECRET_KEY; its output."""
    env = {**os.environ, **cli.env, "DIGEST_VAR_DIR": str(var_dir)}
    env.pop("DIGEST_SECRET_KEY", None)
    done = subprocess.run(
        [sys.executable, "-m", "digest", *args],
        cwd=cli.cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"digest {' '.join(args)}:\n{done.stdout}{done.stderr}"
    return done.stdout + done.stderr


@contextmanager
def web_in(cli: Cli, var_dir: Path, **extra: str) -> Iterator[TestClient]:
    """The web app as a process with ``var_dir`` runs it: no DIGEST_SECRET_KEY unless given."""
    settings = load_settings(database_url=cli.env["DIGEST_DATABASE_URL"], var_dir=var_dir, **extra)
    engine = make_engine(settings.effective_database_url)
    try:
        with TestClient(
            create_app(settings, session_factory(engine)), "http://127.0.0.1"
        ) as client:
            yield client
    finally:
        engine.dispose()


def status_of(cli: Cli, email: str) -> str:
    engine = make_engine(cli.env["DIGEST_DATABASE_URL"])
    try:
        with session_factory(engine)() as s:
            return str(s.scalar(select(Subscriber.status).where(Subscriber.email == email)))
    finally:
        engine.dispose()


def stored_key(cli: Cli) -> str:
    engine = make_engine(cli.env["DIGEST_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            value = conn.execute(text("SELECT value FROM app_secrets")).scalar_one()
            return str(value)
    finally:
        engine.dispose()


def one_click_path(captured: Captured, email: str) -> str:
    """The path of the List-Unsubscribe URL in the message ``email`` received."""
    [msg] = [m for m in captured.messages() if email in str(m["To"])]
    url = str(msg["List-Unsubscribe"]).split("<", 1)[1].split(">", 1)[0]
    return urlsplit(url).path


def send_one_edition(cli: Cli, var_dir: Path, *emails: str) -> None:
    digest_in(cli, var_dir, "init")
    digest_in(cli, var_dir, "stories", "import", str(REFERENCE_STORY))
    for email in emails:
        digest_in(cli, var_dir, "subscribers", "add", email)
    digest_in(cli, var_dir, "edition", "build")
    digest_in(cli, var_dir, "send", "latest")


def test_signing_key_link_mailed_by_one_process_works_in_a_web_app_with_another_var(
    cli: Cli, captured: Captured, tmp_path: Path
) -> None:
    sender_var, web_var = tmp_path / "sender-var", tmp_path / "web-var"
    web_var.mkdir()
    # A key file the web process's var/ happens to hold: the database's key wins.
    (web_var / "secret_key").write_text(STALE_KEY)
    send_one_edition(cli, sender_var, "reader@example.com")
    path = one_click_path(captured, "reader@example.com")
    with web_in(cli, web_var) as web:
        answer = web.post(path, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
        assert answer.status_code == 200, answer.text
    assert status_of(cli, "reader@example.com") == "unsubscribed"
    assert not (sender_var / "secret_key").exists()  # nothing generated into a var/ any more


def test_signing_key_init_generates_it_once_and_never_prints_it(cli: Cli, tmp_path: Path) -> None:
    first = digest_in(cli, tmp_path / "a", "init")
    assert "signing key: generated and stored in the database" in first
    key = stored_key(cli)
    second = digest_in(cli, tmp_path / "b", "init")
    assert "signing key" not in second
    assert stored_key(cli) == key
    assert len(key) >= 40 and key not in first + second


def test_signing_key_from_the_setting_still_overrides_the_database(
    cli: Cli, captured: Captured, tmp_path: Path
) -> None:
    digest_in(cli, tmp_path / "init-var", "init")  # the database key exists
    sender_var = tmp_path / "sender-var"
    env = {**os.environ, **cli.env, "DIGEST_VAR_DIR": str(sender_var)}  # with DIGEST_SECRET_KEY
    for args in (
        ("stories", "import", str(REFERENCE_STORY)),
        ("subscribers", "add", "reader@example.com"),
        ("edition", "build"),
        ("send", "latest"),
    ):
        subprocess.run([sys.executable, "-m", "digest", *args], cwd=cli.cwd, env=env, check=True)
    path = one_click_path(captured, "reader@example.com")
    with web_in(cli, tmp_path / "web-var") as web:  # the database key only: not this link
        assert web.post(path, headers=ONE_CLICK).status_code == 400
    assert status_of(cli, "reader@example.com") == "active"
    with web_in(cli, tmp_path / "web-var", secret_key=cli.env["DIGEST_SECRET_KEY"]) as web:
        assert web.post(path, headers=ONE_CLICK).status_code == 200
    assert status_of(cli, "reader@example.com") == "unsubscribed"


def test_signing_key_processes_racing_to_create_it_end_up_with_the_same_key(
    database_url: str, tmp_path: Path
) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine)  # schema only: no key yet
        contenders = []
        for n in range(4):
            var = tmp_path / f"var{n}"
            var.mkdir()
            (var / "secret_key").write_text(f"legacy key of process {n}")
            contenders.append(load_settings(database_url=database_url, var_dir=var))
        start = threading.Barrier(len(contenders))

        def load(n: int) -> None:
            start.wait()
            contenders[n].load_signing_key(engine)

        threads = [threading.Thread(target=load, args=(n,)) for n in range(len(contenders))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        keys = {s.signing_key() for s in contenders}
        assert len(keys) == 1
        [key] = keys
        assert key.decode() in {f"legacy key of process {n}" for n in range(len(contenders))}
    finally:
        engine.dispose()


def test_signing_key_unreadable_var_secret_key_is_one_line_and_nothing_is_stored(
    cli: Cli, tmp_path: Path
) -> None:
    var = tmp_path / "old-var"
    (var / "secret_key").mkdir(parents=True)  # there, but not a file that can be read
    del cli.env["DIGEST_SECRET_KEY"]
    cli.env["DIGEST_VAR_DIR"] = str(var)
    result = cli("init", ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output
    [line] = [x for x in result.output.splitlines() if x.startswith("Error: ")]
    assert "DIGEST_VAR_DIR" in line and str(var / "secret_key") in line
    engine = make_engine(cli.env["DIGEST_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM app_secrets")).scalar_one() == 0
    finally:
        engine.dispose()
