"""Commands about subscribers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from digest.cli.app import App, emit_json, pass_app
from digest.cli.progressbar import ProgressBar
from subscribers.status import SubscriberSource, SubscriberStatus


@click.group()
def subscribers() -> None:
    """Add, import, export, list, set preferences, unsubscribe, erase, revoke links."""


TOPICS_HELP = 'Story tags wanted, comma separated (science,climate); none or "" means everything.'
CADENCE_HELP = "daily, or weekly (on DIGEST_WEEKLY_DAY)."


def _topics(text: str | None) -> list[str] | None:
    from subscribers.preferences import parse_topics

    return None if text is None else parse_topics(text)


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="", help="The subscriber's name, used in the To header.")
@click.option("--timezone", default="", help="IANA time zone, e.g. Europe/Paris.")
@click.option("--topics", help=TOPICS_HELP)
@click.option("--cadence", help=CADENCE_HELP + " Default: DIGEST_DEFAULT_CADENCE.")
@pass_app
def subscribers_add(
    app: App, email: str, name: str, timezone: str, topics: str | None, cadence: str | None
) -> None:
    """Add one subscriber as active (you vouch for their consent)."""
    from digest.core.db import transaction
    from subscribers import service

    with transaction(app.factory) as s:
        sub = service.add(
            s,
            email,
            name,
            source=SubscriberSource.CLI,
            timezone=timezone,
            check_deliverability=app.settings.check_deliverability,
            smtputf8=app.settings.smtputf8,
            topics=_topics(topics) or [],
            cadence=cadence or app.settings.default_cadence,
        )
        shown = sub.email
    click.echo(f"added {shown}")


@subscribers.command("set")
@click.argument("email")
@click.option("--topics", help=TOPICS_HELP)
@click.option("--cadence", help=CADENCE_HELP)
@pass_app
def subscribers_set(app: App, email: str, topics: str | None, cadence: str | None) -> None:
    """Change a subscriber's topics and/or cadence (what is not given stays as it is)."""
    from digest.core.db import transaction
    from subscribers import service

    if topics is None and cadence is None:
        raise click.UsageError("give --topics and/or --cadence")
    with transaction(app.factory) as s:
        sub = service.change_preferences(s, email, _topics(topics), cadence)
        line = f"{sub.email}: {_describe(sub.topics, sub.cadence)}"
    click.echo(line)


def _describe(topics: list[str], cadence: str) -> str:
    return f"{cadence}, {', '.join(topics) if topics else 'every topic'}"


@subscribers.command("import")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--pending",
    is_flag=True,
    help="Import new addresses as pending and mail each a confirmation link.",
)
@click.option(
    "--update",
    is_flag=True,
    help="Update name, time zone, attributes, topics and cadence of addresses already subscribed.",
)
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Import the valid rows, report the others (exit status 0).",
)
@pass_app
def subscribers_import(
    app: App, csv_file: Path, pending: bool, update: bool, skip_invalid: bool
) -> None:
    """Import subscribers from a CSV file (comma or semicolon separated, UTF-8).

    The file needs a header row with an 'email' column; 'name', 'timezone',
    'status', 'source', 'topics' (story tags separated by |; empty: every
    topic), 'cadence' (daily or weekly; empty: DIGEST_DEFAULT_CADENCE) and
    the timestamp columns of an export are read too, any other column
    becomes a custom attribute. Rows without a status are
    active (with --pending: pending, and each gets a confirmation mail).
    Every row is checked first: if any row is bad, each is reported as
    FILE:LINE: PROBLEM and nothing is imported, unless --skip-invalid, which
    imports the good rows and reports each bad one. Addresses already known
    keep their status (--update changes their name, time zone, attributes,
    topics and cadence); unsubscribed, bounced, complained and erased addresses are
    never re-added nor changed and are listed as suppressed.
    """
    from datetime import timedelta

    from digest.mail import confirmation
    from subscribers import csv_import

    settings = app.settings
    options = csv_import.ImportOptions(
        pending=pending,
        update=update,
        skip_invalid=skip_invalid,
        confirm_interval=timedelta(minutes=settings.confirm_interval_minutes),
        default_cadence=settings.default_cadence,
    )
    with ProgressBar() as bar:
        report, sent = confirmation.import_and_confirm(
            app.factory, settings, csv_file, options, bar
        )
    for row in report.skipped:
        click.echo(f"{row} (skipped)", err=True)
    extra = []
    if report.updated:
        extra.append(f"{report.updated} updated")
    if report.already_known:
        extra.append(f"{len(report.already_known)} already subscribers")
    if report.repeated_in_file:
        extra.append(f"{len(report.repeated_in_file)} repeated in the file")
    if report.suppressed:
        extra.append(f"{len(report.suppressed)} suppressed")
    if report.skipped:
        extra.append(f"{len(report.skipped)} invalid rows skipped")
    tail = f" ({', '.join(extra)})" if extra else ""
    state = " as pending" if pending else ""
    click.echo(f"imported {report.added} subscribers{state} from {csv_file}{tail}")
    for email, why in report.suppressed:
        click.echo(f"suppressed: {email} ({why})")
    if report.to_confirm:
        failed = len(report.to_confirm) - sent
        click.echo(
            f"sent {sent} confirmation mails"
            + (f" ({failed} failed, see the log)" if failed else "")
        )


STATUS_CHOICE = click.Choice([s.value for s in SubscriberStatus])


@subscribers.command("export")
@click.option("--status", type=STATUS_CHOICE, help="Only subscribers with this status.")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Default: stdout."
)
@pass_app
def subscribers_export(app: App, status: str | None, fmt: str, output: Path | None) -> None:
    """Export subscribers with every field (status included); the CSV imports back as is.

    The JSON export also lists each subscriber's returned mail (bounces,
    complaints, unsubscribe requests) under "returned_mail".

    CSV cells a spreadsheet would run as a formula (starting with =, +, -, @,
    tab or CR) get a leading ' so they show as text; the import takes it off.
    """
    from subscribers import csv_export, service

    with app.factory() as s:
        chosen = service.list_subscribers(s, SubscriberStatus(status) if status else None)
        records = [csv_export.export_record(sub) for sub in chosen]
        if fmt == "json":  # the CSV stays what imports back; JSON also shows returned mail
            from digest.delivery.bounces import events_by_subscriber

            events = events_by_subscriber(s)
            for sub, record in zip(chosen, records, strict=True):
                record["returned_mail"] = events.get(sub.id, [])
    if output is not None:
        with output.open("w", encoding="utf-8", newline="") as fh:
            _write(records, fmt, fh)
        click.echo(f"exported {len(records)} subscribers to {output}", err=True)
    else:
        _write(records, fmt, sys.stdout)


def _write(records: list[dict[str, Any]], fmt: str, out: Any) -> None:
    if fmt == "csv":
        from subscribers import csv_export

        csv_export.write_csv(records, out)
    else:
        import json

        out.write(json.dumps(records, indent=2, ensure_ascii=False) + "\n")


@subscribers.command("list")
@click.option("--status", type=STATUS_CHOICE, help="Only subscribers with this status.")
@click.option(
    "--source",
    type=click.Choice([s.value for s in SubscriberSource]),
    help="Only subscribers who came this way.",
)
@click.option("--search", help="Only addresses or names containing this text.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def subscribers_list(
    app: App, status: str | None, source: str | None, search: str | None, as_json: bool
) -> None:
    """List subscribers (erased ones are left out)."""
    from subscribers import service

    with app.factory() as s:
        rows: list[dict[str, Any]] = [
            {
                "id": sub.id,
                "email": sub.email,
                "name": sub.name,
                "status": sub.status.value,
                "source": sub.source,
                "timezone": sub.timezone,
                "topics": list(sub.topics or []),
                "cadence": sub.cadence,
                "created_at": sub.created_at.isoformat(),
            }
            for sub in service.list_subscribers(
                s, SubscriberStatus(status) if status else None, source, search
            )
        ]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no subscribers")
    for r in rows:
        prefs = _describe(r["topics"], r["cadence"])
        click.echo(f"{r['id']:>6}  {r['status']:<12} {r['email']}  {r['name']}  ({prefs})")


@subscribers.command("unsubscribe")
@click.argument("email")
@pass_app
def subscribers_unsubscribe(app: App, email: str) -> None:
    """Unsubscribe an address now (it gets no further editions)."""
    from digest.core.db import transaction
    from subscribers import service

    with transaction(app.factory) as s:
        changed = service.unsubscribe(s, email)
    click.echo(f"unsubscribed {email.strip()}" if changed else f"{email.strip()}: no change")


@subscribers.command("revoke-links")
@click.argument("email")
@pass_app
def subscribers_revoke_links(app: App, email: str) -> None:
    """Make every link mailed to an address so far stop working (unsubscribe, preferences, confirm).

    Mails sent from now on carry new links; other subscribers' links keep working.
    """
    from digest.core.db import transaction
    from subscribers import service

    with transaction(app.factory) as s:
        version = service.revoke_links(s, email)
    click.echo(f"revoked the links mailed to {email.strip()} so far (link version {version})")


@subscribers.command("erase")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def subscribers_erase(app: App, email: str, yes: bool) -> None:
    """Erase an address's personal data (GDPR); a hash stays so imports cannot re-add it."""
    if not yes:
        click.confirm(f"erase {email.strip()} for good?", abort=True)
    from digest.core.db import transaction
    from subscribers import service

    with transaction(app.factory) as s:
        service.erase(s, email)
    click.echo(f"erased {email.strip()}")


COMMANDS = [subscribers]
