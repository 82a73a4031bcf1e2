"""Commands about subscribers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from digest.cli import App, emit_json, pass_app
from digest.db import transaction
from subscribers import csvio, service
from subscribers.models import SubscriberStatus


@click.group()
def subscribers() -> None:
    """Add, import and list subscribers."""


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="", help="The subscriber's name, used in the To header.")
@pass_app
def subscribers_add(app: App, email: str, name: str) -> None:
    """Add one subscriber as active (you vouch for their consent)."""
    with transaction(app.factory) as s:
        sub = service.add(s, email, name, source="cli")
        shown = sub.email
    click.echo(f"added {shown}")


@subscribers.command("import")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path))
@pass_app
def subscribers_import(app: App, csv_file: Path) -> None:
    """Import subscribers from a CSV file as active.

    The file needs a header row with an 'email' column; 'name' is optional.
    Every row is checked first: if any row is bad, each is reported as
    FILE:LINE: PROBLEM and nothing is imported. Addresses already known are
    left unchanged.
    """
    with transaction(app.factory) as s:
        report = csvio.import_csv(s, csv_file)
    extra = []
    if report.already_known:
        extra.append(f"{len(report.already_known)} already subscribers")
    if report.repeated_in_file:
        extra.append(f"{len(report.repeated_in_file)} repeated in the file")
    tail = f" ({', '.join(extra)})" if extra else ""
    click.echo(f"imported {report.added} subscribers from {csv_file}{tail}")


@subscribers.command("list")
@click.option(
    "--status",
    type=click.Choice([s.value for s in SubscriberStatus]),
    help="Only subscribers with this status.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def subscribers_list(app: App, status: str | None, as_json: bool) -> None:
    """List subscribers."""
    with app.factory() as s:
        rows: list[dict[str, Any]] = [
            {
                "id": sub.id,
                "email": sub.email,
                "name": sub.name,
                "status": sub.status.value,
                "source": sub.source,
                "created_at": sub.created_at.isoformat(),
            }
            for sub in service.list_subscribers(s, SubscriberStatus(status) if status else None)
        ]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no subscribers")
    for r in rows:
        click.echo(f"{r['id']:>6}  {r['status']:<12} {r['email']}  {r['name']}")


COMMANDS = [subscribers]
