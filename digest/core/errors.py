"""The one exception tree of digest.

    DigestError                     base; ``str()`` is the one-line message users see
    ├── ConfigError                 a setting is missing or malformed (carries the setting)
    ├── SourceError                 a story file or feed cannot be used (carries path, line)
    ├── SourcesRejected             some story files were bad; the good ones were imported
    ├── NotFound                    mix-in: the thing asked for does not exist
    ├── EditionError                wrong state for the action (carries id)
    │   ├── EditionNotFound         no such edition, no editions yet, no next edition (NotFound)
    │   └── BadEditionRef           a reference that is neither a number nor ``latest``
    ├── RenderError                 a template failed to render or compile (carries template)
    ├── DeliveryError               the transport as a whole failed (carries the server)
    ├── RowError                    one rejected row of an import file (carries path, line)
    ├── MailboxError                a bounce mailbox or file that cannot be read (carries it)
    └── SubscriberError             a bad address or subscriber action (carries address)
        └── ImportRejected          a CSV had bad rows; nothing was imported (carries rows)

Per-recipient send failures are recorded in the delivery ledger, never raised.
The CLI translates these into one line and exit status 1 in one place; the
web app chooses an HTTP status from the type (``digest.web.errors``), never
from the wording. ``NotFound`` marks, across the tree, the errors that say the
thing asked for does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class DigestError(Exception):
    """Base of every error digest raises on purpose."""


class ConfigError(DigestError):
    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        super().__init__(f"setting {setting}: {problem}")


class SourceError(DigestError):
    """A story source that cannot be imported; names the file and, where known, the line."""

    def __init__(self, path: Path | str, problem: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class SourcesRejected(DigestError):
    """Some story sources were bad and not imported (the good ones around them were)."""

    def __init__(self, errors: Sequence[SourceError]) -> None:
        self.errors = list(errors)
        noun = "file" if len(self.errors) == 1 else "files"
        lines = "\n".join(str(e) for e in self.errors)
        super().__init__(f"{lines}\nnot imported: {len(self.errors)} bad {noun}")


class NotFound(DigestError):
    """Mix-in: the thing asked for does not exist (the web app answers 404)."""


class EditionError(DigestError):
    def __init__(self, problem: str, edition_id: int | None = None) -> None:
        self.edition_id = edition_id
        super().__init__(problem)


class EditionNotFound(EditionError, NotFound):
    """No edition with that id, no editions at all, or no new stories for a next edition."""


class BadEditionRef(EditionError):
    """An edition reference that is neither a number nor ``latest``."""


class RenderError(DigestError):
    def __init__(self, template: str, problem: str) -> None:
        self.template = template
        super().__init__(f"template {template}: {problem}")


class DeliveryError(DigestError):
    def __init__(self, server: str, problem: str) -> None:
        self.server = server
        super().__init__(f"SMTP server {server}: {problem}")


class MailboxError(DigestError):
    """A bounce mailbox or message file that cannot be read; names it (passwords hidden)."""

    def __init__(self, mailbox: str, problem: str) -> None:
        self.mailbox = mailbox
        super().__init__(f"{mailbox}: {problem}")


class SubscriberError(DigestError):
    def __init__(self, address: str, problem: str) -> None:
        self.address = address
        super().__init__(f"{address!r}: {problem}" if address else problem)


class RowError(DigestError):
    """One rejected row of an import file."""

    def __init__(self, path: str, line: int, problem: str) -> None:
        self.path = path
        self.line = line
        super().__init__(f"{path}:{line}: {problem}")


class ImportRejected(SubscriberError):
    """An import file had bad rows; the whole file was rejected."""

    def __init__(self, path: str, rows: Sequence[RowError]) -> None:
        self.rows = list(rows)
        self.path = path
        noun = "row" if len(self.rows) == 1 else "rows"
        report = "\n".join(str(r) for r in self.rows)
        DigestError.__init__(
            self, f"{report}\n{path}: nothing imported: {len(self.rows)} bad {noun}"
        )
        self.address = ""
