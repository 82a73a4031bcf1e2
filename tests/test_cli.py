"""The `digest` command line as a whole: help, README coverage, errors users meet first."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import REFERENCE_STORY, REPO, Cli
from test_end_to_end import TextOf, reference_story

from digest.cli import main
from digest.core.settings import Settings

NOT_INITIALISED = "is not initialised: run `digest init`"


def command_tree(cmd: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.commands):
            yield from command_tree(cmd.commands[name], (*path, name))


def command_at(path: tuple[str, ...]) -> click.Command:
    cmd: click.Command = main
    for name in path:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[name]
    return cmd


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("path", list(command_tree(main)), ids=lambda p: " ".join(p) or "digest")
def test_cli_help_describes_every_command(path: tuple[str, ...]) -> None:
    cmd = command_at(path)
    description = (cmd.help or "").split("\n\n")[0].strip()
    assert description, f"digest {' '.join(path)} has no help text"
    result = CliRunner().invoke(main, [*path, "--help"], prog_name="digest", catch_exceptions=False)
    assert result.exit_code == 0
    assert result.output.startswith(f"Usage: {' '.join(('digest', *path))} ")
    assert one_line(description) in one_line(result.output)


@pytest.mark.parametrize("name", sorted(main.commands))
def test_cli_readme_names_every_top_level_command(name: str) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert re.search(rf"digest {re.escape(name)}\b", readme), f"README lacks `digest {name}`"


@pytest.mark.parametrize(
    "path", [p for p in command_tree(main) if len(p) > 1], ids=lambda p: " ".join(p)
)
def test_cli_readme_names_every_subcommand(path: tuple[str, ...]) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    group, name = " ".join(path[:-1]), re.escape(path[-1])
    # In prose (`digest subscribers set`) or in a table of the group's commands (`set EMAIL`).
    assert re.search(rf"digest {re.escape(group)}\b[^\n]*\b{name}\b", readme), (
        f"README lacks `digest {' '.join(path)}`"
    )


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_readme_documents_every_setting(field: str) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    alias = Settings.model_fields[field].validation_alias
    names = getattr(alias, "choices", None) or [f"DIGEST_{field.upper()}"]
    assert any(f"`{name}`" in readme for name in names), f"README's settings lack `{names[0]}`"


def test_init_twice_says_up_to_date(cli: Cli) -> None:
    first = cli("init").output
    assert re.fullmatch(r"database \S+ upgraded from empty to revision \w+\n", first)
    second = cli("init").output
    assert re.fullmatch(r"database \S+ is up to date \(revision \w+\)\n", second)


@pytest.mark.parametrize(
    "args",
    [
        ("stories", "list"),
        ("stories", "import", str(REFERENCE_STORY)),
        ("subscribers", "list"),
        ("subscribers", "add", "ada@example.com"),
        ("edition", "build"),
        ("edition", "list"),
        ("edition", "show"),
        ("preview",),
        ("send",),
        ("status",),
    ],
    ids=" ".join,
)
def test_cli_on_uninitialised_database_says_run_init(cli: Cli, args: tuple[str, ...]) -> None:
    result = cli(*args, ok=False)
    assert result.exit_code == 1
    [line] = result.output.splitlines()
    assert line.startswith("Error: database ")
    assert line.endswith(NOT_INITIALISED)


def test_edition_build_without_stories_builds_nothing(ready: Cli) -> None:
    result = ready("edition", "build")
    assert result.exit_code == 0
    assert result.output == "no new stories: no edition built\n"
    shown = ready("edition", "show", "latest", ok=False)
    assert shown.exit_code == 1
    assert shown.output == "Error: no editions yet: run `digest edition build` first\n"


def test_edition_list_json_shows_built_editions(ready: Cli) -> None:
    assert json.loads(ready("edition", "list", "--json").output) == []
    ready("stories", "import", str(REFERENCE_STORY))
    ready("edition", "build")
    [row] = json.loads(ready("edition", "list", "--json").output)
    assert (row["id"], row["status"], row["stories"], row["deliveries"]) == (1, "draft", 1, {})


def test_preview_next_text_shows_the_story_without_building(ready: Cli) -> None:
    headline, summary, bullets = reference_story()
    ready("stories", "import", str(REFERENCE_STORY))
    out = ready("preview", "next", "--format", "text").output
    assert out.splitlines()[0] == "The Digest"
    for piece in (headline, summary, *bullets):
        assert one_line(piece) in one_line(out)
    assert len(json.loads(ready("stories", "list", "--new", "--json").output)) == 1


def test_preview_next_html_shows_the_story(ready: Cli) -> None:
    headline, summary, bullets = reference_story()
    ready("stories", "import", str(REFERENCE_STORY))
    out = ready("preview", "next", "--format", "html").output
    assert out.lower().startswith("<!doctype html>")
    visible = TextOf.of(out)
    for piece in (headline, summary, *bullets):
        assert one_line(piece) in visible


def test_preview_next_eml_writes_a_whole_message(ready: Cli, tmp_path: Path) -> None:
    headline, summary, _ = reference_story()
    ready("stories", "import", str(REFERENCE_STORY))
    target = tmp_path / "next.eml"
    out = ready("preview", "next", "--format", "eml", "-o", str(target)).output
    data = target.read_bytes()
    assert out == f"wrote {len(data)} bytes to {target}\n"
    msg = message_from_bytes(data, policy=policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["To"].addresses[0].addr_spec == "preview@example.com"
    assert one_line(msg["Subject"]).startswith(f"The Digest: {headline[:40]}")
    text = msg.get_body(preferencelist=("plain",))
    assert text is not None and one_line(summary) in one_line(text.get_content())


@pytest.mark.parametrize("command", ["preview", "send", "status"])
def test_cli_unknown_edition_id_is_one_line_error(ready: Cli, command: str) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    ready("edition", "build")
    result = ready(command, "99", ok=False)
    assert result.exit_code == 1
    assert result.output == "Error: no edition with id 99\n"


@pytest.mark.parametrize("command", ["send", "status", "preview"])
def test_cli_latest_without_editions_says_build_first(ready: Cli, command: str) -> None:
    result = ready(command, "latest", ok=False)
    assert result.exit_code == 1
    assert result.output == "Error: no editions yet: run `digest edition build` first\n"


def test_send_without_editions_says_build_first(ready: Cli) -> None:
    result = ready("send", ok=False)
    assert result.exit_code == 1
    assert result.output == "Error: no editions yet: run `digest edition build` first\n"


@pytest.mark.parametrize(
    ("variable", "value", "args"),
    [
        ("DIGEST_SMTP_URL", "ftp://x", ("send",)),
        ("DIGEST_SMTP_URL", "smtp://127.0.0.1:notaport", ("send",)),
        ("DIGEST_BASE_URL", "notaurl", ("stories", "list")),
        ("DIGEST_BASE_URL", "notaurl", ("preview", "next")),
        ("DIGEST_FROM", "not an address", ("stories", "list")),
        ("DIGEST_DATABASE_URL", "notadatabase", ("stories", "list")),
    ],
)
def test_cli_bad_setting_is_one_line_error_naming_it(
    ready: Cli, variable: str, value: str, args: tuple[str, ...]
) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    ready("subscribers", "add", "reader@example.com")
    ready("edition", "build")
    bad = Cli({**ready.env, variable: value}, ready.cwd)
    result = bad(*args, ok=False)
    assert result.exit_code == 1
    [line] = result.output.splitlines()
    assert line.startswith(f"Error: setting {variable}: ")


def test_cli_unknown_key_in_the_config_file_is_named(ready: Cli, tmp_path: Path) -> None:
    config = tmp_path / "digest.toml"
    config.write_text("base_url = 'https://news.example'\nsmtp_urll = 'smtp://x'\n", "utf-8")
    bad = Cli({**ready.env, "DIGEST_CONFIG": str(config)}, ready.cwd)
    result = bad("stories", "list", ok=False)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: setting DIGEST_CONFIG: unknown setting 'smtp_urll' in {config}"
    ]
    config.write_text("base_url = 'https://news.example'\nport = 8080\n", "utf-8")
    assert bad("stories", "list").exit_code == 0  # known keys (an alias too) still work


def test_cli_malformed_config_file_is_one_line_error(ready: Cli, tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text("base_url = = 'x'\n", encoding="utf-8")
    bad = Cli({**ready.env, "DIGEST_CONFIG": str(tmp_path / "digest.toml")}, ready.cwd)
    result = bad("stories", "list", ok=False)
    assert result.exit_code == 1
    [line] = result.output.splitlines()
    assert line.startswith("Error: setting DIGEST_CONFIG: ")
