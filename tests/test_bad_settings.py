"""Random values for every setting through the CLI: never a traceback (the CLI runs
in-process with exceptions not caught, so one fails the test), and a value the settings
refuse is one line naming the DIGEST_ variable it came in.

The settings are enumerated from ``Settings.model_fields``: a new setting is covered the
day it is added. Each value goes through a test send, a real ``send --now`` (its check,
then a send to the test SMTP server) and ``status``, so a value that passes validation
but breaks a send shows too."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from conftest import Cli
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from digest.core.errors import ConfigError
from digest.core.settings import Settings, load_settings

FIELDS = sorted(Settings.model_fields)
COMMANDS = (
    ("send", "--to", "reader@example.com", "next"),  # a test send skips the check
    ("send", "--now"),  # the check, then a real send
    ("status",),
)
# Values that broke something once, or sit at an edge of a type: each is tried for every
# setting, then random ones.
EDGES = [
    "",
    "-1",
    "0",
    "99999999999999999999",
    "inf",
    "nan",
    "1e-300",
    "garbage",
    "a\r\nb",
    "é",
    "http://[::1",  # urlsplit raises on it
]
# What an environment can hold: no NUL, no lone surrogates.
ENV_TEXT = st.text(
    st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20
)
VALUES = st.one_of(
    st.sampled_from(
        ["1e400", "-inf", "true", "x@y", "http://x", "smtp://[::1]x", "https://x:y", "a\u2028b"]
    ),
    st.integers().map(str),
    st.floats().map(str),
    ENV_TEXT,
)
STORIES = itertools.count()


def variable(field: str) -> str:
    """The DIGEST_ variable a field is read from."""
    alias = Settings.model_fields[field].validation_alias
    choices = [c for c in getattr(alias, "choices", None) or [alias] if isinstance(c, str)]
    return next((c for c in choices if c.startswith("DIGEST_")), f"DIGEST_{field.upper()}")


def loaded(env: dict[str, str]) -> Settings:
    """The settings the CLI reads from this environment."""
    with mock.patch.dict(os.environ, env, clear=True):
        return load_settings()


def refusal(env: dict[str, str]) -> ConfigError | None:
    """The error the settings give for this environment, if any."""
    try:
        loaded(env)
    except ConfigError as exc:
        return exc
    return None


@pytest.fixture
def reader(ready: Cli) -> Cli:
    ready("subscribers", "add", "reader@example.com")
    return ready


def test_bad_settings_cover_every_setting_by_its_variable() -> None:
    assert len(FIELDS) >= 40
    assert variable("from_address") == "DIGEST_FROM"
    assert variable("port") == "DIGEST_PORT"
    assert variable("timezone") == "DIGEST_TIMEZONE"


def with_edges(test: Any) -> Any:
    for edge in reversed(EDGES):
        test = example(value=edge)(test)
    return test


@pytest.mark.slow
@pytest.mark.parametrize("field", FIELDS)
@settings(max_examples=len(EDGES) + 2, deadline=None, suppress_health_check=list(HealthCheck))
@with_edges
@given(value=VALUES)
def test_bad_settings_never_a_traceback_and_a_refusal_names_the_variable(
    reader: Cli, tmp_path: Path, field: str, value: str
) -> None:
    name = variable(field)
    story = tmp_path / f"story-{next(STORIES)}.txt"
    story.write_text(f"Story {story.stem}\nA summary.\n- a bullet\n", encoding="utf-8")
    reader("stories", "import", str(story))
    env = {**reader.env, name: value}
    refused = refusal(env)
    bad = Cli(env, reader.cwd)
    for args in COMMANDS:
        result = bad(*args, ok=False)
        assert "Traceback" not in result.output
        if refused is not None:
            assert refused.setting == name or refused.setting.endswith(f"({name})")
            assert result.exit_code == 1
            assert result.output.splitlines() == [f"Error: {refused}"], result.output
        elif "Error: setting" in result.output:  # a use-time refusal names it too
            assert name in result.output, result.output


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DIGEST_TIMEZONE", "Mars/Olympus_Mons", "no time zone 'Mars/Olympus_Mons'"),
        ("DIGEST_TIMEZONE", "../etc/passwd", "not a time zone"),
        (
            "DIGEST_NEWSLETTER_NAME",
            "The\r\nDigest",
            "must be one line (no CR, LF, NUL or other line break)",
        ),
        (
            "DIGEST_NEWSLETTER_NAME",
            "The\nDigest",
            "must be one line (no CR, LF, NUL or other line break)",
        ),
        ("DIGEST_LIST_ID", "The\u2028Digest", "must be one line"),
        ("DIGEST_FROM", "News <news@[127.0.0.1]>", "not a valid From address"),
        ("DIGEST_SMTP_TIMEOUT", "0", "greater than 0"),
        ("DIGEST_SMTP_TIMEOUT", "inf", "finite number"),
        ("DIGEST_CLAIM_BATCH", "99999999999999999999", "less than or equal to 100000"),
        ("DIGEST_HOURLY_LIMIT", "99999999999999999999", "less than or equal to 1000000000"),
        ("DIGEST_UNSUBSCRIBE_MAILTO", "é@example.org", "not an ASCII address"),
        ("DIGEST_DKIM_DOMAIN", "bücher.example", "not a DNS name"),
        ("DIGEST_PORT", "http", "valid integer"),
        ("DIGEST_TEMPLATES_DIR", "/nonexistent/templates", "not a folder"),
        ("DIGEST_BASE_URL", "https://[::1", "not a URL"),
        ("DIGEST_BASE_URL", "https://news.example.org:https", "not a URL"),
    ],
)
def test_bad_settings_each_is_one_line_naming_it(
    reader: Cli, name: str, value: str, message: str
) -> None:
    reader("stories", "import", str(Path(__file__).parent.parent / "seeds" / "stories"))
    for args in COMMANDS:
        result = Cli({**reader.env, name: value}, reader.cwd)(*args, ok=False)
        assert result.exit_code == 1
        [line] = result.output.splitlines()
        assert line.startswith(f"Error: setting {name}: ") and message in line, line


def test_bad_settings_a_from_too_long_for_its_header_is_named(reader: Cli) -> None:
    reader("stories", "import", str(Path(__file__).parent.parent / "seeds" / "stories"))
    bad = Cli({**reader.env, "DIGEST_FROM": "N" * 2000 + " <news@example.org>"}, reader.cwd)
    problem = "setting DIGEST_FROM: From: too long for a header line"
    test_send = bad("send", "--to", "reader@example.com", "next", ok=False)
    assert (test_send.exit_code, test_send.output) == (1, f"Error: {problem}\n")
    check = bad("check", "next", ok=False)
    assert (check.exit_code, check.output) == (
        1,
        f"next edition: cannot build a message: {problem}\n",
    )


def test_bad_settings_a_var_dir_that_cannot_be_one_is_named(reader: Cli, tmp_path: Path) -> None:
    reader("stories", "import", str(Path(__file__).parent.parent / "seeds" / "stories"))
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    env = {k: v for k, v in reader.env.items() if k != "DIGEST_SECRET_KEY"}
    bad = Cli({**env, "DIGEST_VAR_DIR": str(tmp_path / "a-file")}, reader.cwd)
    [line] = bad("check", "next", ok=False).output.splitlines()
    assert line.startswith("Error: setting DIGEST_VAR_DIR: cannot read the signing key ")
    del bad.env["DIGEST_DATABASE_URL"]  # the default database lives there too
    [line] = bad("status", ok=False).output.splitlines()
    assert line.startswith("Error: setting DIGEST_DATABASE_URL: cannot create the folder ")
    assert line.endswith("(the default database lives in DIGEST_VAR_DIR)")


def test_bad_settings_a_bad_toml_value_names_its_key(reader: Cli, tmp_path: Path) -> None:
    config = tmp_path / "digest.toml"
    config.write_text("timezone = 'Mars/Olympus_Mons'\n", encoding="utf-8")
    bad = Cli({**reader.env, "DIGEST_CONFIG": str(config)}, reader.cwd)
    [line] = bad("status", ok=False).output.splitlines()
    assert line.startswith(f"Error: setting 'timezone' in {config} (DIGEST_TIMEZONE): ")
    config.write_text("from = 'News <news@example.org>'\nclaim_batch = 0\n", encoding="utf-8")
    [line] = bad("status", ok=False).output.splitlines()
    assert line.startswith(f"Error: setting 'claim_batch' in {config} (DIGEST_CLAIM_BATCH): ")
    config.write_text("from = 'News <news@example.org>'\n", encoding="utf-8")
    assert bad("status").exit_code == 0
    assert loaded(bad.env).from_address == "News <news@example.org>"
    bad.env["DIGEST_FROM"] = "From Env <env@example.org>"  # the environment wins
    assert loaded(bad.env).from_address == "From Env <env@example.org>"
