"""Markdown stories: YAML front matter between ``---`` lines, then a Markdown body.

The body is rendered with markdown-it-py (CommonMark, raw HTML off) and then
sanitized to the body allow-list, so a story file can never inject markup.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt

from digest.core.errors import SourceError
from digest.sources.draft import StoryDraft
from digest.sources.formats import fields
from digest.sources.formats.seedtext import decode

FENCE = "---"
KEYS = {
    "title",
    "summary",
    "url",
    "tags",
    "published",
    "image",
    "image_alt",
    "priority",
    "bullets",
    "guid",
}
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False})


def has_front_matter(data: bytes) -> bool:
    """Whether a file starts with a ``---`` line (how a directory import tells stories
    from other Markdown files such as a README)."""
    head = data.removeprefix(b"\xef\xbb\xbf")[:8].replace(b"\r\n", b"\n")
    return head.startswith(b"---\n") or head.rstrip() == b"---"


def render_body(markdown: str) -> str:
    return fields.sanitize_html(_markdown.render(markdown))


def parse(path: Path, data: bytes) -> StoryDraft:
    """Parse one Markdown story strictly; errors name the file and line."""
    text = decode(path, data)
    lines = text.replace("\r\n", "\n").split("\n")
    if lines[0].strip() != FENCE:
        raise SourceError(path, "front matter missing: line 1 must be '---'", 1)
    try:
        end = next(i for i, ln in enumerate(lines[1:], start=1) if ln.strip() == FENCE)
    except StopIteration:
        raise SourceError(path, "front matter not closed: no second '---' line", 1) from None
    meta = _load_yaml(path, "\n".join(lines[1:end]))
    key_line = _key_lines(lines[1:end])

    def check(key: str, fn: Callable[[Any], Any]) -> Any:
        try:
            return fn(meta.get(key))
        except ValueError as exc:
            raise SourceError(path, str(exc), key_line.get(key)) from None

    for key in meta:
        if key not in KEYS:
            raise SourceError(
                path,
                f"unknown front matter key {key!r} (known: {', '.join(sorted(KEYS))})",
                key_line.get(str(key)),
            )
    for key in ("title", "summary"):
        if meta.get(key) is None:
            raise SourceError(path, f"front matter needs {key!r}", end + 1)
    body_md = "\n".join(lines[end + 1 :])
    try:
        body_md = fields.body_text(body_md)
    except ValueError as exc:
        raise SourceError(path, str(exc), end + 2) from None
    body = render_body(body_md) if body_md.strip() else None
    return StoryDraft(
        headline=check("title", fields.headline),
        summary=check("summary", lambda v: fields.line(v, "summary")),
        bullets=check("bullets", fields.bullets),
        source=str(path),
        url=check("url", fields.optional_url),
        published_at=check("published", fields.published),
        body=body or None,
        source_guid=check("guid", lambda v: None if v is None else fields.line(str(v), "guid")),
        tags=check("tags", fields.tags),
        image_url=check("image", lambda v: fields.optional_url(v, "image")),
        image_alt=check(
            "image_alt", lambda v: None if v is None else fields.line(v, "image_alt", 500)
        ),
        priority=check("priority", fields.priority),
    )


def _load_yaml(path: Path, text: str) -> dict[str, Any]:
    try:
        meta = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 2  # +1 for the fence, +1 for 1-based
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise SourceError(path, f"malformed front matter: {problem}", line) from None
    except RecursionError:
        raise SourceError(path, "malformed front matter: nested too deeply", 2) from None
    if not isinstance(meta, dict):
        raise SourceError(
            path, f"front matter must be 'key: value' lines, found {fields.type_name(meta)}", 2
        )
    return {str(k): v for k, v in meta.items()}


def _key_lines(lines: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for i, ln in enumerate(lines, start=2):
        if ln and not ln[0].isspace() and ":" in ln:
            found.setdefault(ln.split(":", 1)[0].strip().strip("'\""), i)
    return found
