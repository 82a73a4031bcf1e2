"""The bad-input corpus (tests/bad_inputs/): each file gets its one expected error,
naming the file (and line), and a directory import of them stores nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import REFERENCE_STORY, Cli

from digest.core.errors import SourceError
from digest.sources.parse import parse_file

CORPUS = Path(__file__).parent / "bad_inputs"

EXPECTED = [
    ("bad-priority.md", "bad-priority.md:4: priority must be a whole number, found text"),
    (
        "bad-published.md",
        "bad-published.md:4: published must be an ISO 8601 time like 2026-11-20T08:00:00Z, found 'next tuesday'",  # noqa: E501
    ),
    ("bad-tags.md", "bad-tags.md:4: tags must be a list of words, found an object"),
    (
        "bad-url.md",
        "bad-url.md:4: url must be an absolute http(s) URL, found 'javascript:alert(1)'",
    ),
    ("binary.txt", "binary.txt: binary file (contains NUL bytes), not a text story"),
    ("blank-lines.txt", "blank-lines.txt: empty story file"),
    (
        "bullet-as-headline.txt",
        "bullet-as-headline.txt:1: line 1 must be the headline, found a bullet",
    ),
    (
        "bullet-before-summary.txt",
        "bullet-before-summary.txt:2: line 2 must be the summary (dek), found a bullet",
    ),
    ("control-char.txt", "control-char.txt:2: control character U+0007 in text"),
    ("empty-bullet.txt", "empty-bullet.txt:4: empty bullet"),
    ("empty.txt", "empty.txt: empty story file"),
    (
        "front-matter-list.md",
        "front-matter-list.md:2: front matter must be 'key: value' lines, found a list",
    ),
    ("headline-line-break.txt", "headline-line-break.txt:1: line break U+2028 in headline"),
    ("headline-only.txt", "headline-only.txt:2: missing summary: line 2 must be the summary (dek)"),
    ("invalid-utf8.txt", "invalid-utf8.txt:2: not UTF-8 text (byte 0xff)"),
    (
        "json-bad-image.json",
        "json-bad-image.json: image_url must be an absolute http(s) URL, found '/relative.png'",
    ),
    (
        "json-bullets-string.json",
        "json-bullets-string.json: bullets must be a list of text, found text",
    ),
    ("json-empty-list.json", "json-empty-list.json: empty list: no stories"),
    (
        "json-headline-number.json",
        "json-headline-number.json: headline must be text, found a number",
    ),
    (
        "json-item-not-object.json",
        "json-item-not-object.json: item 2: expected a story object, found text",
    ),
    ("json-missing-summary.json", "json-missing-summary.json: missing 'summary'"),
    (
        "json-number.json",
        "json-number.json: expected a story object or a list of them, found a number",
    ),
    ("json-unknown-key.json", "json-unknown-key.json: unknown key 'author'"),
    ("long-headline.txt", "long-headline.txt:1: headline longer than 300 characters (301)"),
    (
        "malformed-yaml.md",
        "malformed-yaml.md:3: malformed front matter: expected ',' or ']', but got ':'",
    ),
    ("missing-title.md", "missing-title.md:3: front matter needs 'title'"),
    ("no-front-matter.md", "no-front-matter.md:1: front matter missing: line 1 must be '---'"),
    ("not-json.json", "not-json.json:2: not valid JSON: Expecting value"),
    ("prose-after-bullets.txt", "prose-after-bullets.txt:4: expected a '- ' bullet, found 'prose'"),
    (
        "summary-blank.txt",
        "summary-blank.txt:2: line 2 must be the summary (dek), found a blank line",
    ),
    (
        "unclosed-front-matter.md",
        "unclosed-front-matter.md:1: front matter not closed: no second '---' line",
    ),
    (
        "unknown-key.md",
        "unknown-key.md:4: unknown front matter key 'author' (known: bullets, guid, image, image_alt, priority, published, summary, tags, title, url)",  # noqa: E501
    ),
]


def test_bad_inputs_corpus_has_an_expected_error_for_every_file() -> None:
    assert sorted(p.name for p in CORPUS.iterdir()) == sorted(name for name, _ in EXPECTED)
    assert len(EXPECTED) >= 25


@pytest.mark.parametrize(("name", "message"), EXPECTED, ids=[n for n, _ in EXPECTED])
def test_bad_inputs_each_file_is_rejected_with_its_error(name: str, message: str) -> None:
    path = Path(name)
    with pytest.raises(SourceError) as caught:
        parse_file(path, (CORPUS / name).read_bytes())
    assert str(caught.value) == message


def test_bad_inputs_directory_import_reports_each_and_keeps_only_the_good(
    ready: Cli, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    shutil.copytree(CORPUS, inbox)
    shutil.copy(REFERENCE_STORY, inbox / "good.txt")
    result = ready("stories", "import", "inbox", ok=False)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == "imported 1 new story from 1 file (0 already known)"
    reported = {line.removeprefix("Error: ").split(":")[0] for line in lines[1:-1]}
    # a .md file without front matter is not a story in a directory (a README, say)
    expected = {f"inbox/{name}" for name, _ in EXPECTED if name != "no-front-matter.md"}
    assert reported == expected
    assert lines[-1] == f"not imported: {len(expected)} bad files"
    stories = json.loads(ready("stories", "list", "--json").output)
    assert [s["source"] for s in stories] == ["inbox/good.txt"]
