"""`digest stories import`: seed text files in, stories out, all or nothing per file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import REFERENCE_STORY, Captured, Cli

OTHER_STORY = "Second headline\nSecond summary\n- first point\n- second point\n"


def stored(cli: Cli) -> list[dict[str, Any]]:
    return json.loads(cli("stories", "list", "--json").output)


def reference_parts() -> tuple[str, str, list[str]]:
    lines = REFERENCE_STORY.read_text(encoding="utf-8").splitlines()
    return lines[0], lines[1], [ln[2:] for ln in lines[2:] if ln.startswith("- ")]


def test_stories_import_reference_story_stores_headline_summary_and_bullets(
    ready: Cli, story_dir: Path
) -> None:
    headline, summary, bullets = reference_parts()
    out = ready("stories", "import", str(REFERENCE_STORY)).output
    assert out == "imported 1 new story from 1 file (0 already known)\n"
    [story] = stored(ready)
    assert story["headline"] == headline
    assert story["summary"] == summary
    assert story["bullets"] == bullets
    assert len(story["bullets"]) == 5
    assert story["edition_id"] is None


def test_stories_import_same_file_again_adds_nothing(ready: Cli) -> None:
    ready("stories", "import", str(REFERENCE_STORY))
    before = stored(ready)
    again = ready("stories", "import", str(REFERENCE_STORY)).output
    assert again == "imported 0 new stories from 1 file (1 already known)\n"
    assert stored(ready) == before


def test_stories_import_directory_recurses_and_ignores_other_files(
    ready: Cli, tmp_path: Path
) -> None:
    top = tmp_path / "inbox"
    nested = top / "nested" / "deeper"
    nested.mkdir(parents=True)
    shutil.copy(REFERENCE_STORY, top / "a.txt")
    (nested / "b.txt").write_text(OTHER_STORY, encoding="utf-8")
    (top / "notes.md").write_text("not a story at all\n\n\n", encoding="utf-8")
    (nested / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (top / ".hidden.txt").write_text("hidden, never read\n", encoding="utf-8")
    out = ready("stories", "import", "inbox").output
    assert out == "imported 2 new stories from 2 files (0 already known)\n"
    headlines = [s["headline"] for s in stored(ready)]
    assert reference_parts()[0] in headlines
    assert "Second headline" in headlines
    assert len(headlines) == 2


def test_stories_import_directory_without_story_files_is_an_error(
    ready: Cli, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("# nothing\n", encoding="utf-8")
    result = ready("stories", "import", "empty", ok=False)
    assert result.exit_code == 1
    assert result.output == "Error: empty: no story files (*.txt, *.md, *.json) found\n"
    assert stored(ready) == []


def test_stories_import_crlf_and_bom_equal_the_lf_version(ready: Cli, tmp_path: Path) -> None:
    lf = REFERENCE_STORY.read_bytes()
    assert b"\r" not in lf
    crlf = lf.replace(b"\n", b"\r\n")
    (tmp_path / "crlf.txt").write_bytes(crlf)
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbf" + crlf)
    (tmp_path / "lf.txt").write_bytes(lf)
    assert ready("stories", "import", "crlf.txt").output.startswith("imported 1 new story")
    headline, summary, bullets = reference_parts()
    [story] = stored(ready)
    assert (story["headline"], story["summary"], story["bullets"]) == (headline, summary, bullets)
    out = ready("stories", "import", "bom.txt", "lf.txt").output
    assert out == "imported 0 new stories from 2 files (2 already known)\n"
    assert len(stored(ready)) == 1


BAD_FILES = {
    "empty": (b"", "empty.txt: empty story file"),
    "whitespace": (b"  \n\t\n   \n", "whitespace.txt: empty story file"),
    "headline-only": (
        b"Just a headline\n",
        "headline-only.txt:2: missing summary: line 2 must be the summary (dek)",
    ),
    "nul-bytes": (
        b"Headline\nSum\x00mary\n- bullet\n",
        "nul-bytes.txt: binary file (contains NUL bytes), not a text story",
    ),
    "invalid-utf8": (
        b"\xff\xfe\xfa\xfb garbage \x80\x81\x82\n",
        "invalid-utf8.txt:1: not UTF-8 text (byte 0xff)",
    ),
    "latin1-line3": (
        b"Headline\nSummary\n- caf\xe9 au lait\n",
        "latin1-line3.txt:3: not UTF-8 text (byte 0xe9)",
    ),
    "prose-after-summary": (
        b"Headline\nSummary\n- a bullet\nnot a bullet\n",
        "prose-after-summary.txt:4: expected a '- ' bullet, found 'not a bullet'",
    ),
    "blank-between-bullets": (
        b"Headline\nSummary\n- first\n\n- second\n",
        "blank-between-bullets.txt:4: blank line between bullets (allowed only at the end)",
    ),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_stories_import_bad_file_is_reported_and_the_good_one_imported(
    ready: Cli, tmp_path: Path, name: str
) -> None:
    data, problem = BAD_FILES[name]
    (tmp_path / f"{name}.txt").write_bytes(data)
    result = ready("stories", "import", str(REFERENCE_STORY), f"{name}.txt", ok=False)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "imported 1 new story from 1 file (0 already known)",
        f"Error: {problem}",
        "not imported: 1 bad file",
    ]
    assert "Traceback" not in result.output
    assert [s["headline"] for s in stored(ready)] == [reference_parts()[0]]


def test_stories_import_reports_every_bad_file_at_once(ready: Cli, tmp_path: Path) -> None:
    (tmp_path / "one.txt").write_bytes(b"")
    (tmp_path / "two.txt").write_bytes(b"Only a headline\n")
    result = ready("stories", "import", "one.txt", "two.txt", str(REFERENCE_STORY), ok=False)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "imported 1 new story from 1 file (0 already known)",
        "Error: one.txt: empty story file",
        "two.txt:2: missing summary: line 2 must be the summary (dek)",
        "not imported: 2 bad files",
    ]
    assert [s["headline"] for s in stored(ready)] == [reference_parts()[0]]


def test_stories_import_missing_path_imports_nothing(ready: Cli) -> None:
    result = ready("stories", "import", str(REFERENCE_STORY), "missing.txt", ok=False)
    assert result.exit_code == 1
    assert result.output == "Error: missing.txt: no such file or directory\n"
    assert stored(ready) == []


@pytest.mark.parametrize("breaker", ["\r", "\u2028", "\x85"], ids=["cr", "u2028", "nel"])
def test_stories_import_headline_with_a_line_break_is_rejected_or_sent_intact(
    ready: Cli, captured: Captured, tmp_path: Path, breaker: str
) -> None:
    (tmp_path / "broken.txt").write_text(f"Head{breaker}line\nSummary\n- bullet\n", "utf-8")
    result = ready("stories", "import", "broken.txt", ok=False)
    if result.exit_code != 0:  # rejected at import: must say where, and store nothing
        assert result.output.startswith("Error: broken.txt:1: ")
        assert stored(ready) == []
        return
    ready("subscribers", "add", "reader@example.com")
    ready("edition", "build")
    assert "sent 1, failed 0" in ready("send").output
    [message] = captured.messages()
    assert "Head" in message["Subject"] and "line" in message["Subject"]


def test_stories_import_accepts_a_story_at_a_very_long_path(ready: Cli, tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*[c * 210 for c in "abcde"])
    deep.mkdir(parents=True)
    shutil.copy(REFERENCE_STORY, deep / "story.txt")
    assert len(str(deep / "story.txt")) > 1000
    out = ready("stories", "import", str(tmp_path / ("a" * 210))).output
    assert out == "imported 1 new story from 1 file (0 already known)\n"
    assert len(stored(ready)) == 1
