"""The pre-send check command."""

from __future__ import annotations

import click

from digest.cli import App, pass_app
from digest.editions import assemble
from digest.mail.check import check_edition


@click.command()
@click.argument("ref", default="next")
@pass_app
def check(app: App, ref: str) -> None:
    """Check an edition before sending (REF: an id, 'latest' or 'next').

    Prints one line per problem and exits 1 when the HTML is over Gmail's
    ~102 KB clipping size, an image lacks alt text, the unsubscribe link or
    List-Unsubscribe headers are missing, a link is not http(s), template
    syntax was left unrendered, or MJML compilation failed.
    """
    with app.factory() as s:
        view = assemble.view(s, ref)
    edition_id = view.number if ref != "next" else None
    problems = check_edition(app.settings, view, edition_id)
    label = f"edition {view.number}" if view.number is not None else "next edition"
    if problems:
        for problem in problems:
            click.echo(f"{label}: {problem}")
        raise SystemExit(1)
    click.echo(f"{label}: ok")


COMMANDS = [check]
