"""Story file and feed document formats, each parsed into StoryDrafts."""
