"""Story sources: parsers that turn files (and later feeds) into ``StoryDraft``s."""

from digest.sources.draft import StoryDraft

__all__ = ["StoryDraft"]
