"""Story files by suffix: each is parsed by its format into ``StoryDraft``s."""

from __future__ import annotations

from pathlib import Path

from digest.core.errors import SourceError
from digest.sources.draft import StoryDraft
from digest.sources.formats import jsonfile, markdown, seedtext

SUFFIXES = (".txt", ".md", ".json")


def parse_file(path: Path, data: bytes) -> list[StoryDraft]:
    """The stories in one file, by its suffix; ``SourceError`` if it is not a good one."""
    suffix = path.suffix.lower()
    if suffix == ".md":
        return [markdown.parse(path, data)]
    if suffix == ".json":
        return jsonfile.parse(path, data)
    if suffix == ".txt":
        return [seedtext.parse(path, data)]
    raise SourceError(path, f"unknown story format {suffix!r} (use {', '.join(SUFFIXES)})")
