"""Story import: each file parsed and stored in its own transaction, deduplicated.

A bad file is reported (FILE:LINE: problem) and leaves the database unchanged;
the good files around it are imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from digest.core.db import transaction
from digest.core.errors import SourceError
from digest.core.models import Edition, EditionStory, Story
from digest.core.status import EditionStatus
from digest.core.urls import canonical_url
from digest.sources.draft import StoryDraft
from digest.sources.formats.markdown import has_front_matter
from digest.sources.parse import SUFFIXES, parse_file

# Editions whose stories may still change: nothing of them has gone out yet.
UNSENT = (EditionStatus.DRAFT, EditionStatus.SCHEDULED)


class Outcome(StrEnum):
    ADDED = "added"
    UPDATED = "updated"
    DUPLICATE = "duplicate"


@dataclass
class ImportReport:
    added: list[Story] = field(default_factory=list)
    updated: list[Story] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    errors: list[SourceError] = field(default_factory=list)
    files: int = 0


def collect_files(paths: Sequence[Path]) -> list[Path]:
    """Story files named by ``paths``: files as given, directories searched recursively.

    In a directory, a ``.md`` file counts only when it starts with front matter,
    so a README beside the stories is not taken for a broken story.
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and p.suffix.lower() in SUFFIXES
                and not p.name.startswith(".")
                and (p.suffix.lower() != ".md" or _starts_with_front_matter(p))
            )
        elif path.is_file():
            found.append(path)
        else:
            raise SourceError(path, "no such file or directory")
    return found


def _starts_with_front_matter(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return has_front_matter(fh.read(8))
    except OSError:
        return True  # let the import report why it cannot be read


def find_same(session: Session, draft: StoryDraft) -> tuple[Story | None, bool]:
    """The stored story ``draft`` duplicates, and whether it matched by source GUID."""
    if draft.source_guid:
        story = session.scalar(select(Story).where(Story.source_guid == draft.source_guid))
        if story is not None:
            return story, True
    conditions = [Story.content_hash == draft.content_hash]
    if draft.url:
        conditions.append(Story.canonical_url == canonical_url(draft.url))
    return session.scalar(select(Story).where(or_(*conditions)).limit(1)), False


def is_editable(session: Session, story: Story) -> bool:
    """A story may change until an edition holding it has started sending."""
    status = session.scalar(
        select(Edition.status)
        .join(EditionStory, EditionStory.edition_id == Edition.id)
        .where(EditionStory.story_id == story.id)
    )
    return status is None or status in UNSENT


def store_draft(session: Session, draft: StoryDraft) -> tuple[Outcome, Story]:
    """Add ``draft``, update the story it revises (same GUID, changed text), or skip it."""
    same, by_guid = find_same(session, draft)
    if same is None:
        story = Story(content_hash=draft.content_hash)
        _fill(story, draft)
        session.add(story)
        session.flush()
        return Outcome.ADDED, story
    if (
        by_guid
        and same.content_hash != draft.content_hash
        and is_editable(session, same)
        and session.scalar(select(Story.id).where(Story.content_hash == draft.content_hash)) is None
    ):
        same.content_hash = draft.content_hash
        _fill(same, draft)
        session.flush()
        return Outcome.UPDATED, same
    return Outcome.DUPLICATE, same


def _fill(story: Story, draft: StoryDraft) -> None:
    story.headline = draft.headline
    story.summary = draft.summary
    story.bullets = list(draft.bullets)
    story.body = draft.body
    story.url = draft.url
    story.canonical_url = canonical_url(draft.url) if draft.url else None
    story.source = draft.source
    story.source_guid = draft.source_guid
    story.tags = list(draft.tags)
    story.image_url = draft.image_url
    story.image_alt = draft.image_alt
    story.priority = draft.priority
    story.published_at = draft.published_at


def store(session: Session, drafts: Sequence[StoryDraft], report: ImportReport) -> None:
    for draft in drafts:
        outcome, story = store_draft(session, draft)
        if outcome is Outcome.ADDED:
            report.added.append(story)
        elif outcome is Outcome.UPDATED:
            report.updated.append(story)
        else:
            report.duplicates.append(draft.source)


def import_file(session: Session, path: Path, report: ImportReport) -> None:
    """Parse and store one file; ``SourceError`` (nothing stored) if it is bad."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(path, f"cannot read: {exc.strerror}") from None
    import_data(session, path, data, report)


def import_data(session: Session, path: Path, data: bytes, report: ImportReport) -> None:
    """Parse and store ``data`` as the story file ``path`` would be (its suffix names the
    format); ``SourceError`` (nothing stored) if it is bad."""
    store(session, parse_file(path, data), report)


def import_paths(factory: sessionmaker[Session], paths: Sequence[Path]) -> ImportReport:
    """Import story files and directories, one transaction per file.

    Bad files are collected in ``report.errors``; the good ones are imported.
    A path that does not exist is a usage error and stops before anything is read.
    """
    files = collect_files(paths)
    if not files:
        raise SourceError(
            ", ".join(map(str, paths)),
            f"no story files ({', '.join('*' + s for s in SUFFIXES)}) found",
        )
    report = ImportReport()
    for path in files:
        part = ImportReport()
        try:
            with transaction(factory) as session:
                import_file(session, path, part)
        except SourceError as exc:
            report.errors.append(exc)
            continue
        report.files += 1
        report.added += part.added
        report.updated += part.updated
        report.duplicates += part.duplicates
    return report
