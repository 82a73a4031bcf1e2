"""The ``digest`` command line. It only parses and prints: library code raises
``DigestError``s, turned into one line and exit status 1 in ``digest.cli.app``."""

from __future__ import annotations

import click

from digest import __version__
from digest.cli import bounces, editions, feeds, processes, sending, stories, subscribers
from digest.cli.app import App, DigestGroup


@click.group(cls=DigestGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="digest")
@click.pass_context
def main(ctx: click.Context) -> None:
    """digest: build newsletter digests from stories and send them over SMTP.

    Settings come from DIGEST_* environment variables (see the README);
    the embedded default is a SQLite database under var/ and an SMTP server
    on 127.0.0.1:1025 (start one with `digest smtp-sink`).
    """
    app = App()
    ctx.obj = app
    ctx.call_on_close(app.close)


for module in (stories, editions, feeds, subscribers, processes, sending, bounces):
    for command in module.COMMANDS:
        main.add_command(command)
