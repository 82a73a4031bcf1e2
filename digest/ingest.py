"""Story import: parse every file first, then store them all in one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.errors import SourceError, SourcesRejected
from digest.models import Story
from digest.sources import StoryDraft, seedtext

STORY_SUFFIXES = {".txt"}


@dataclass
class ImportReport:
    added: list[Story] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    files: int = 0


def collect_files(paths: Sequence[Path]) -> list[Path]:
    """Story files named by ``paths``: files as given, directories searched recursively."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and p.suffix in STORY_SUFFIXES and not p.name.startswith(".")
            )
        elif path.is_file():
            found.append(path)
        else:
            raise SourceError(path, "no such file or directory")
    return found


def parse_files(files: Iterable[Path]) -> list[StoryDraft]:
    """Parse every file; if any is bad, raise one error that lists them all."""
    drafts: list[StoryDraft] = []
    errors: list[SourceError] = []
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            errors.append(SourceError(path, f"cannot read: {exc.strerror}"))
            continue
        try:
            drafts.append(seedtext.parse(path, data))
        except SourceError as exc:
            errors.append(exc)
    if errors:
        raise SourcesRejected(errors)
    return drafts


def store(session: Session, drafts: Iterable[StoryDraft]) -> ImportReport:
    """Add drafts not already stored (same content hash means same story)."""
    report = ImportReport()
    drafts = list(drafts)
    hashes = {d.content_hash for d in drafts}
    known = set(session.scalars(select(Story.content_hash).where(Story.content_hash.in_(hashes))))
    for draft in drafts:
        report.files += 1
        if draft.content_hash in known:
            report.duplicates.append(draft.source)
            continue
        known.add(draft.content_hash)
        story = Story(
            headline=draft.headline,
            summary=draft.summary,
            bullets=list(draft.bullets),
            url=draft.url,
            source=draft.source,
            content_hash=draft.content_hash,
            published_at=draft.published_at,
        )
        session.add(story)
        report.added.append(story)
    session.flush()
    return report


def import_paths(session: Session, paths: Sequence[Path]) -> ImportReport:
    """Import story files and directories, all or nothing."""
    files = collect_files(paths)
    if not files:
        raise SourceError(", ".join(map(str, paths)), "no story files (*.txt) found")
    return store(session, parse_files(files))
