"""The seed text story format.

Line 1 is the headline, line 2 the summary (dek), then one ``- `` bullet per
line, then any number of blank lines. UTF-8 with or without a BOM, LF or CRLF.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from digest.core.errors import SourceError
from digest.sources.draft import StoryDraft
from digest.sources.formats import fields

MAX_BYTES = 1_000_000
MAX_HEADLINE = fields.MAX_HEADLINE
BULLET = "- "


def decode(path: Path, data: bytes) -> str:
    """Bytes of a story file as text, or a SourceError saying why they are not text."""
    if not data.strip():
        raise SourceError(path, "empty story file")
    if len(data) > MAX_BYTES:
        raise SourceError(path, f"file too large ({len(data)} bytes, limit {MAX_BYTES})")
    if b"\0" in data:
        raise SourceError(path, "binary file (contains NUL bytes), not a text story")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SourceError(path, f"not UTF-8 text (byte 0x{data[exc.start]:02x})", line) from None
    for lineno, line_text in enumerate(text.split("\n"), start=1):
        bad = next((c for c in line_text if ord(c) < 32 and c not in "\t\r"), None)
        if bad is not None:
            raise SourceError(path, f"control character U+{ord(bad):04X} in text", lineno)
    return text


def parse(path: Path, data: bytes) -> StoryDraft:
    """Parse one seed text file strictly; errors name the file and line."""
    text = decode(path, data)
    lines = [ln.rstrip("\r").rstrip() for ln in text.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise SourceError(path, "empty story file")

    headline = lines[0].strip()
    if not headline:
        raise SourceError(path, "line 1 must be the headline, found a blank line", 1)
    if headline.startswith(BULLET):
        raise SourceError(path, "line 1 must be the headline, found a bullet", 1)
    headline = _checked(path, 1, fields.headline, headline)
    if len(lines) < 2:
        raise SourceError(path, "missing summary: line 2 must be the summary (dek)", 2)
    summary = lines[1].strip()
    if not summary:
        raise SourceError(path, "line 2 must be the summary (dek), found a blank line", 2)
    if summary.startswith(BULLET):
        raise SourceError(path, "line 2 must be the summary (dek), found a bullet", 2)
    summary = _checked(path, 2, lambda v: fields.line(v, "summary"), summary)

    bullets: list[str] = []
    for lineno, line in enumerate(lines[2:], start=3):
        stripped = line.strip()
        if not stripped:
            raise SourceError(path, "blank line between bullets (allowed only at the end)", lineno)
        if not stripped.startswith(BULLET.strip()) or (
            stripped != "-" and not stripped.startswith(BULLET)
        ):
            raise SourceError(path, f"expected a '- ' bullet, found {_clip(stripped)!r}", lineno)
        body = stripped[2:].strip()
        if not body:
            raise SourceError(path, "empty bullet", lineno)
        bullets.append(_checked(path, lineno, lambda v: fields.line(v, "bullet"), body))
    if len(bullets) > fields.MAX_BULLETS:
        raise SourceError(path, f"more than {fields.MAX_BULLETS} bullets", 3 + fields.MAX_BULLETS)
    return StoryDraft(headline=headline, summary=summary, bullets=tuple(bullets), source=str(path))


def _checked(path: Path, lineno: int, check: Callable[[str], str], value: str) -> str:
    try:
        return check(value)
    except ValueError as exc:
        raise SourceError(path, str(exc), lineno) from None


def _clip(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
