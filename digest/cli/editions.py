"""Commands about editions: build, list, show, preview and the pre-send check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from digest.cli.app import App, emit_json, pass_app
from digest.core.errors import DigestError


@click.group()
def edition() -> None:
    """Build and inspect editions."""


@edition.command("build")
@pass_app
def edition_build(app: App) -> None:
    """Put every story not yet in an edition into a new draft edition; prints its id."""
    from digest.core.db import transaction
    from digest.editions import assemble

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
    from digest.editions import assemble

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
    """Show one edition (REF: an id or 'latest') and its stories in order.

    Says so when its send was started with --force over pre-send check problems.
    """
    from digest.delivery.report import forced_line
    from digest.editions import assemble

    with app.factory() as s:
        e = assemble.get(s, ref)
        data: dict[str, Any] = {
            "id": e.id,
            "status": e.status.value,
            "created_at": e.created_at.isoformat(),
            "started_at": e.started_at.isoformat() if e.started_at else None,
            "check_forced": e.check_forced,
            "check_problems": list(e.check_problems or []),
            "stories": [st.as_dict() for st in e.stories],
        }
    if as_json:
        emit_json(data)
        return
    click.echo(f"edition {data['id']} ({data['status']}), created {data['created_at']}")
    forced = forced_line(data)
    if forced:
        click.echo(f"  {forced}")
    for i, st in enumerate(data["stories"], start=1):
        click.echo(f"{i:>3}. {st['headline']}")


def _rendered_output(app: App, ref: str, fmt: str, reader: str | None = None) -> bytes:
    """The sample recipient's (or ``reader``'s own) message, made exactly as sending makes it."""
    from digest.delivery.readers import prepare_as
    from digest.delivery.service import prepare_ref
    from digest.mail.message import SAMPLE_RECIPIENT, parts_of

    if reader is not None:
        messages, recipient = prepare_as(app.settings, app.factory, ref, reader)
        message = messages.build(recipient)
    else:
        message = prepare_ref(app.settings, app.factory, ref).messages.build(SAMPLE_RECIPIENT)
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
@click.option(
    "--as",
    "reader",
    metavar="EMAIL",
    help="As this subscriber gets it: their own stories, topics and links.",
)
@pass_app
def preview(app: App, ref: str, fmt: str, output: Path | None, reader: str | None) -> None:
    """Render an edition without sending it.

    REF is an edition id, 'latest', or 'next' (the stories not yet in an
    edition, rendered without building anything). --as EMAIL shows the
    digest that subscriber gets: a started edition as their delivery was
    built, a draft or 'next' as a start now would make it.
    """
    data = _rendered_output(app, ref, fmt, reader)
    if output is None:
        click.echo(data.decode("utf-8"), nl=False)
        return
    try:
        output.write_bytes(data)
    except OSError as exc:
        raise DigestError(f"{output}: cannot write: {exc.strerror}") from None
    click.echo(f"wrote {len(data)} bytes to {output}", err=True)


@click.command()
@click.argument("ref", default="next")
@pass_app
def check(app: App, ref: str) -> None:
    """Check an edition before sending (REF: an id, 'latest' or 'next').

    Prints one line per problem and exits 1 when, with an SMTP server that
    is not on loopback, DIGEST_BASE_URL is not https (or is this machine),
    the From domain is localhost or DIGEST_POSTAL_ADDRESS is empty; when the
    HTML part is 102 KB or more as sent (Gmail clips it), an image lacks alt
    text, the unsubscribe link or List-Unsubscribe headers are missing, a
    link is not http(s), template syntax was left unrendered, or MJML
    compilation failed. From 90 KB it prints a "warning:" line, which does
    not fail the check or stop a send. Nothing is connected to.
    """
    from digest.delivery.service import check_ref
    from digest.mail.check import blocking

    number, findings = check_ref(app.settings, app.factory, ref)
    label = f"edition {number}" if number is not None else "next edition"
    for finding in findings:
        click.echo(f"{label}: {finding}")
    if blocking(findings):
        raise SystemExit(1)
    if not findings:
        click.echo(f"{label}: ok")


COMMANDS = [edition, preview, check]
