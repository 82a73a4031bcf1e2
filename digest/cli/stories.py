"""Commands about stories: import and list."""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli.app import App, emit_json, pass_app


@click.group()
def stories() -> None:
    """Import and list stories."""


@stories.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@pass_app
def stories_import(app: App, paths: tuple[Path, ...]) -> None:
    """Import story files from files or directories (recursively).

    Formats by suffix: .txt (seed text), .md (Markdown with YAML front matter),
    .json (one story or a list); see "Story formats" in the README. Each file is
    imported in its own transaction: a bad file is reported as FILE:LINE: PROBLEM
    and changes nothing, the good ones are imported, and the exit status is 1 if
    any file was bad. A story already stored (same GUID, URL or content) is
    skipped, so importing the same files again adds nothing.
    """
    from digest.core.errors import SourcesRejected
    from digest.sources import ingest

    report = ingest.import_paths(app.factory, list(paths))
    added = len(report.added)
    known = f"{len(report.duplicates)} already known"
    if report.updated:
        known += f", {len(report.updated)} updated"
    if report.files or not report.errors:
        click.echo(
            f"imported {added} new stor{'y' if added == 1 else 'ies'} "
            f"from {report.files} file{'s' if report.files != 1 else ''} ({known})"
        )
    if report.errors:
        raise SourcesRejected(report.errors)


@stories.command("list")
@click.option("--new", "only_new", is_flag=True, help="Only stories not yet in an edition.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def stories_list(app: App, only_new: bool, as_json: bool) -> None:
    """List stories (all, or only those the next edition would take)."""
    from digest.editions import assemble

    with app.factory() as s:
        data = [
            story.as_dict()
            | {"edition_id": story.placement.edition_id if story.placement else None}
            for story in assemble.list_stories(s, only_new)
        ]
    if as_json:
        emit_json(data)
        return
    if not data:
        click.echo("no stories" + (" waiting for an edition" if only_new else ""))
    for item in data:
        where = f"edition {item['edition_id']}" if item["edition_id"] else "new"
        extra = f" [pinned {item['priority']}]" if item.get("priority") else ""
        if item.get("tags"):
            extra += " #" + " #".join(item["tags"])
        click.echo(f"{item['id']:>5}  {where:<11} {item['headline']}{extra}")


COMMANDS = [stories]
