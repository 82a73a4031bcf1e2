"""Story formats: seed text, Markdown with front matter, JSON — examples and properties."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import yaml
from conftest import Cli
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.core.errors import SourceError
from digest.sources.formats import jsonfile, markdown, seedtext
from digest.sources.parse import parse_file

# Printable text on one line: no control, surrogate, format or line/paragraph separators.
one_line = (
    st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Cf", "Zl", "Zp", "Co", "Cn")),
        min_size=1,
        max_size=60,
    )
    .map(str.strip)
    .filter(lambda s: bool(s) and not s.startswith("-"))
)
stories = st.fixed_dictionaries(
    {
        "headline": one_line,
        "summary": one_line,
        "bullets": st.lists(one_line, max_size=6),
    }
)
PATHS = [Path("fuzz.txt"), Path("fuzz.md"), Path("fuzz.json")]


def stored(cli: Cli) -> list[dict[str, Any]]:
    return json.loads(cli("stories", "list", "--json").output)


@settings(database=None, max_examples=150)
@given(data=st.binary(max_size=400), which=st.sampled_from(PATHS))
def test_story_parsers_fail_only_with_source_error_on_any_bytes(data: bytes, which: Path) -> None:
    try:
        parse_file(which, data)
    except SourceError as exc:
        assert str(exc).startswith(str(which))


@settings(database=None, max_examples=100)
@given(text=st.text(max_size=300), which=st.sampled_from(PATHS))
def test_story_parsers_fail_only_with_source_error_on_any_text(text: str, which: Path) -> None:
    for prefix in ("", "---\n", "{", "[", "Headline\nSummary\n- "):
        with contextlib.suppress(SourceError):
            parse_file(which, (prefix + text).encode("utf-8", "surrogatepass"))


@settings(database=None, max_examples=100)
@given(story=stories, crlf=st.booleans(), bom=st.booleans())
def test_seedtext_round_trips_generated_stories(
    story: dict[str, Any], crlf: bool, bom: bool
) -> None:
    text = "\n".join([story["headline"], story["summary"], *(f"- {b}" for b in story["bullets"])])
    text += "\n\n"
    data = text.replace("\n", "\r\n" if crlf else "\n").encode("utf-8")
    draft = seedtext.parse(Path("s.txt"), (b"\xef\xbb\xbf" if bom else b"") + data)
    assert (draft.headline, draft.summary, list(draft.bullets)) == (
        story["headline"],
        story["summary"],
        story["bullets"],
    )


@settings(database=None, max_examples=100)
@given(
    story=stories,
    tags=st.lists(st.from_regex(r"[a-z]{1,10}", fullmatch=True), max_size=4, unique=True),
    priority=st.integers(-1000, 1000),
)
def test_markdown_and_json_round_trip_generated_stories(
    story: dict[str, Any], tags: list[str], priority: int
) -> None:
    meta = {
        "title": story["headline"],
        "summary": story["summary"],
        "bullets": story["bullets"],
        "tags": tags,
        "priority": priority,
    }
    md = "---\n" + yaml.safe_dump(meta, allow_unicode=True) + "---\nBody *text*.\n"
    from_md = markdown.parse(Path("s.md"), md.encode("utf-8"))
    obj = dict(meta, headline=meta.pop("title"))
    [from_json] = jsonfile.parse(Path("s.json"), json.dumps([obj]).encode("utf-8"))
    for draft in (from_md, from_json):
        assert draft.headline == story["headline"]
        assert draft.summary == story["summary"]
        assert list(draft.bullets) == story["bullets"]
        assert list(draft.tags) == tags
        assert draft.priority == priority
    assert from_md.body == "<p>Body <em>text</em>.</p>"


MARKDOWN_STORY = """---
title: Rail line to the coast approved
summary: Construction starts in spring; trains from 2029.
url: https://example.org/rail?utm_campaign=x
tags: [transport, Region]
published: 2026-11-18T09:30:00Z
image: https://example.org/img/rail.jpg
image_alt: A train on a coastal viaduct
priority: 5
guid: example-rail-1
---
The **line** runs 80 km. <script>alert(1)</script>

[Full plan](https://example.org/plan) and [bad](javascript:alert(2))
"""


def test_stories_import_markdown_story_with_front_matter(ready: Cli, tmp_path: Path) -> None:
    (tmp_path / "rail.md").write_text(MARKDOWN_STORY, encoding="utf-8")
    assert ready("stories", "import", "rail.md").output == (
        "imported 1 new story from 1 file (0 already known)\n"
    )
    [story] = stored(ready)
    assert story["headline"] == "Rail line to the coast approved"
    assert story["url"] == "https://example.org/rail?utm_campaign=x"
    assert story["tags"] == ["transport", "region"]
    assert story["published_at"] == "2026-11-18T09:30:00+00:00"
    assert story["image_alt"] == "A train on a coastal viaduct"
    assert story["priority"] == 5
    assert story["source_guid"] == "example-rail-1"
    assert "<strong>line</strong>" in story["body"]
    assert "<script>" not in story["body"] and "&lt;script&gt;" in story["body"]
    assert 'href="https://example.org/plan"' in story["body"]
    assert "javascript:" not in story["body"].replace("[bad](javascript:", "")


def test_stories_import_json_list_and_priority_pins_to_the_top(ready: Cli, tmp_path: Path) -> None:
    items = [
        {"headline": "Old news", "summary": "S1", "published": "2026-11-01T00:00:00Z"},
        {"headline": "Fresh news", "summary": "S2", "published": "2026-11-20T00:00:00Z"},
        {"headline": "Pinned", "summary": "S3", "published": "2026-10-01", "priority": 1},
    ]
    (tmp_path / "list.json").write_text(json.dumps(items), encoding="utf-8")
    out = ready("stories", "import", "list.json").output
    assert out == "imported 3 new stories from 1 file (0 already known)\n"
    new = json.loads(ready("stories", "list", "--new", "--json").output)
    assert [s["headline"] for s in new] == ["Pinned", "Fresh news", "Old news"]
    ready("edition", "build")
    shown = json.loads(ready("edition", "show", "--json").output)
    assert [s["headline"] for s in shown["stories"]] == ["Pinned", "Fresh news", "Old news"]


def test_stories_import_same_guid_with_new_text_updates_the_unsent_story(
    ready: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"headline": "Draft", "summary": "v1", "guid": "g-1"}), "utf-8")
    ready("stories", "import", "s.json")
    path.write_text(json.dumps({"headline": "Final", "summary": "v2", "guid": "g-1"}), "utf-8")
    out = ready("stories", "import", "s.json").output
    assert out == "imported 0 new stories from 1 file (0 already known, 1 updated)\n"
    assert [(s["headline"], s["summary"]) for s in stored(ready)] == [("Final", "v2")]


def test_stories_import_json_list_with_one_bad_item_stores_none_of_that_file(
    ready: Cli, tmp_path: Path
) -> None:
    items = [{"headline": "Fine", "summary": "S"}, {"headline": "No summary"}]
    (tmp_path / "mixed.json").write_text(json.dumps(items), encoding="utf-8")
    result = ready("stories", "import", "mixed.json", ok=False)
    assert result.output.splitlines() == [
        "Error: mixed.json: item 2: missing 'summary'",
        "not imported: 1 bad file",
    ]
    assert stored(ready) == []
