"""Commands about returned mail: scan the bounce mailbox, import or parse message files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from digest.cli.app import App, emit_json, pass_app

if TYPE_CHECKING:
    from digest.delivery.intake import Parsed, Summary

FILES = click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))


@click.group()
def bounces() -> None:
    """Read returned mail: bounces, complaints, auto-replies and unsubscribe requests.

    Verified bounces and complaints (a signed VERP tag or Message-ID) mark the
    subscriber bounced or complained; unsubscribe requests unsubscribe; every
    event is stored once (see "Returned mail" in the README).
    """


def _line(parsed: Parsed) -> str:
    result = parsed.result
    words = [f"{parsed.source}:", result.kind, *result.recipients]
    if result.status:
        words.append(result.status)
    return " ".join(words)


def _report(summary: Summary, prefix: str = "", suffix: str = "") -> None:
    for parsed in summary.parsed:
        click.echo(_line(parsed))
    click.echo(prefix + summary.describe() + suffix)


@bounces.command("scan")
@pass_app
def bounces_scan(app: App) -> None:
    """Read the mailbox DIGEST_BOUNCE_MAILBOX, report each message and put it away.

    maildir:///PATH (messages move to its .processed subfolder), mbox:///PATH
    (messages move to PATH.processed) or imaps://USER:PASS@HOST/FOLDER (messages
    are flagged seen and moved to the folder Processed). One line per message
    (where, kind, recipients, status), then the count per kind; a second scan
    finds nothing new.
    """
    from digest.delivery import intake

    scanned = intake.scan(app.settings, lambda: app.factory)
    moved = f"; moved to {scanned.moved_to}" if scanned.summary.parsed else ""
    _report(scanned.summary, f"{scanned.mailbox}: ", moved)


@bounces.command("import")
@FILES
@pass_app
def bounces_import(app: App, files: tuple[Path, ...]) -> None:
    """Handle message files (.eml or raw RFC 822) as if they had come to the mailbox.

    Every file is parsed first: a missing file or one that is not an email is one
    line and exit 1, and then none is handled. The files are left as they are.
    """
    from digest.delivery import intake

    parsed = intake.parse_files(app.settings, list(files))  # every file read before any is handled
    _report(intake.handle(app.settings, app.factory, parsed))


@bounces.command("parse")
@FILES
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per file.")
@pass_app
def bounces_parse(app: App, files: tuple[Path, ...], as_json: bool) -> None:
    """Show what each message file is, changing nothing.

    One line per file (FILE: KIND RECIPIENT… STATUS); with --json a list of
    {"file", "kind", "recipients", "status"}. Kinds: hard, soft, complaint,
    auto-reply, unsubscribe-request, not-a-bounce.
    """
    from digest.delivery import intake

    parsed = intake.parse_files(app.settings, list(files))
    if as_json:
        emit_json([p.as_dict() for p in parsed])
        return
    for item in parsed:
        click.echo(_line(item))


COMMANDS = [bounces]
