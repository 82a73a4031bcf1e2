"""Story sources: files in the story formats and followed feeds, deduplicated into stories."""
