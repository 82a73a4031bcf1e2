"""Checks every story format shares: headline, text fields, URLs, tags, times, priority.

Each check returns the cleaned value or raises ``ValueError`` with the problem;
the format parsers turn that into a ``SourceError`` naming the file and line.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

import nh3

MAX_HEADLINE = 300
MAX_TEXT = 5_000
MAX_BODY = 200_000
MAX_URL = 2_000
MAX_TAGS = 20
MAX_TAG = 50
MAX_ALT = 500
MAX_BULLETS = 1_000  # generous: the pre-send check, not import, judges size
# Unicode line breaks besides LF: a headline becomes an email Subject, one line only.
LINE_BREAKS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"

# The small allow-list of HTML a story body may keep (feeds and Markdown alike).
BODY_TAGS = {
    "a",
    "p",
    "br",
    "strong",
    "b",
    "em",
    "i",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "h2",
    "h3",
    "h4",
}
BODY_ATTRIBUTES = {"a": {"href", "title"}}


def sanitize_html(html: str) -> str:
    """Untrusted HTML reduced to the body allow-list; links get rel=noopener noreferrer."""
    return nh3.clean(
        html,
        tags=BODY_TAGS,
        attributes=BODY_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    ).strip()


def line(value: Any, what: str, limit: int = MAX_TEXT) -> str:
    """One line of plain text, stripped, not empty, within ``limit`` characters."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text, found {type_name(value)}")
    text = value.strip()
    if not text:
        raise ValueError(f"{what} is empty")
    bad = next((c for c in text if c in LINE_BREAKS or c == "\n"), None)
    if bad is not None:
        raise ValueError(f"line break U+{ord(bad):04X} in {what}")
    ctrl = next((c for c in text if ord(c) < 32 and c != "\t"), None)
    if ctrl is not None:
        raise ValueError(f"control character U+{ord(ctrl):04X} in {what}")
    if len(text) > limit:
        raise ValueError(f"{what} longer than {limit} characters ({len(text)})")
    return text


def headline(value: Any) -> str:
    return line(value, "headline", MAX_HEADLINE)


def url(value: Any, what: str = "url") -> str:
    text = line(value, what, MAX_URL)
    parts = urlsplit(text)
    if parts.scheme.lower() not in {"http", "https"} or not parts.netloc:
        raise ValueError(f"{what} must be an absolute http(s) URL, found {clip(text)!r}")
    return text


def optional_url(value: Any, what: str = "url") -> str | None:
    return None if value is None else url(value, what)


def tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [t for t in value.split(",") if t.strip()]
    if not isinstance(value, list | tuple):
        raise ValueError(f"tags must be a list of words, found {type_name(value)}")
    if len(value) > MAX_TAGS:
        raise ValueError(f"more than {MAX_TAGS} tags")
    cleaned = []
    for tag in value:
        if isinstance(tag, int | float) and not isinstance(tag, bool):
            tag = str(tag)
        word = line(tag, "tag", MAX_TAG).lower()
        if word not in cleaned:
            cleaned.append(word)
    return tuple(cleaned)


def bullets(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise ValueError(f"bullets must be a list of text, found {type_name(value)}")
    if len(value) > MAX_BULLETS:
        raise ValueError(f"more than {MAX_BULLETS} bullets")
    return tuple(line(b, f"bullet {i}") for i, b in enumerate(value, start=1))


def priority(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"priority must be a whole number, found {type_name(value)}")
    if not -1000 <= value <= 1000:
        raise ValueError("priority must be between -1000 and 1000")
    return value


def published(value: Any) -> datetime | None:
    """A time as a timezone-aware UTC datetime; naive times and dates are taken as UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"published must be an ISO 8601 time like 2026-11-20T08:00:00Z, "
                f"found {clip(value)!r}"
            ) from None
    else:
        raise ValueError(f"published must be an ISO 8601 time, found {type_name(value)}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def body_text(value: Any, what: str = "body") -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text, found {type_name(value)}")
    if len(value) > MAX_BODY:
        raise ValueError(f"{what} longer than {MAX_BODY} characters")
    return value


def type_name(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else "a value")


def clip(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def unknown_keys(keys: Sequence[str], allowed: set[str]) -> list[str]:
    return [k for k in keys if k not in allowed]
