"""Commands about content: stories, editions, previews."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from digest.cli import App, emit_json, pass_app
from digest.core.db import transaction
from digest.core.errors import DigestError, SourcesRejected
from digest.editions import assemble
from digest.mail.message import SAMPLE_RECIPIENT, parts_of, prepare
from digest.render.edition import EditionView
from digest.sources import ingest


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
    from sqlalchemy import select

    from digest.core.models import Story

    with app.factory() as s:
        rows = (
            assemble.new_stories(s)
            if only_new
            else s.scalars(select(Story).order_by(Story.id)).all()
        )
        data = [
            story.as_dict()
            | {"edition_id": story.placement.edition_id if story.placement else None}
            for story in rows
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


@click.group()
def edition() -> None:
    """Build and inspect editions."""


@edition.command("build")
@pass_app
def edition_build(app: App) -> None:
    """Put every story not yet in an edition into a new draft edition; prints its id."""
    with transaction(app.factory) as s:
        built = assemble.build(s)
        if built is None:
            click.echo("no new stories: no edition built")
            return
        n = len(built.placements)
        edition_id = built.id
    click.echo(f"built edition {edition_id} with {n} stor{'y' if n == 1 else 'ies'}")


@edition.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def edition_list(app: App, as_json: bool) -> None:
    """List editions with their status, story count and delivery counts."""
    with app.factory() as s:
        rows: list[dict[str, Any]] = [
            {
                "id": e.id,
                "status": e.status.value,
                "stories": n,
                "created_at": e.created_at.isoformat(),
                "deliveries": counts,
            }
            for e, n, counts in assemble.list_editions(s)
        ]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no editions yet")
    for r in rows:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(r["deliveries"].items())) or "not sent"
        click.echo(f"{r['id']:>5}  {r['status']:<9} {r['stories']:>3} stories  {counts}")


@edition.command("show")
@click.argument("ref", default="latest")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def edition_show(app: App, ref: str, as_json: bool) -> None:
    """Show one edition (REF: an id or 'latest') and its stories in order."""
    with app.factory() as s:
        e = assemble.get(s, ref)
        data: dict[str, Any] = {
            "id": e.id,
            "status": e.status.value,
            "created_at": e.created_at.isoformat(),
            "stories": [st.as_dict() for st in e.stories],
        }
    if as_json:
        emit_json(data)
        return
    click.echo(f"edition {data['id']} ({data['status']}), created {data['created_at']}")
    for i, st in enumerate(data["stories"], start=1):
        click.echo(f"{i:>3}. {st['headline']}")


def _rendered_output(app: App, view: EditionView, fmt: str) -> bytes:
    """The sample recipient's message, made exactly as sending makes it."""
    message = prepare(app.settings, view).build(SAMPLE_RECIPIENT)
    if fmt == "eml":
        return message
    text, html = parts_of(message)
    return (html if fmt == "html" else text).encode("utf-8")


@click.command()
@click.argument("ref", default="next")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "text", "eml"]),
    default="html",
    show_default=True,
    help="HTML body, plain-text part, or the whole message as .eml.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here.")
@pass_app
def preview(app: App, ref: str, fmt: str, output: Path | None) -> None:
    """Render an edition without sending it.

    REF is an edition id, 'latest', or 'next' (the stories not yet in an
    edition, rendered without building anything).
    """
    with app.factory() as s:
        view = assemble.view(s, ref)
    data = _rendered_output(app, view, fmt)
    if output is None:
        click.echo(data.decode("utf-8"), nl=False)
        return
    try:
        output.write_bytes(data)
    except OSError as exc:
        raise DigestError(f"{output}: cannot write: {exc.strerror}") from None
    click.echo(f"wrote {len(data)} bytes to {output}", err=True)


COMMANDS = [stories, edition, preview]
