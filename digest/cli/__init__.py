"""The ``digest`` command line. It only parses and prints: library code raises
``DigestError``s, turned into one line and exit status 1 here, in one place."""

from __future__ import annotations

import json
import sys
from functools import cached_property
from typing import Any

import click
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from digest import __version__
from digest.core.db import ensure_current, make_engine, session_factory
from digest.core.errors import DigestError
from digest.core.settings import Settings, load_settings


class App:
    """What commands share: settings read once, and the database opened on first use."""

    def __init__(self, **overrides: Any) -> None:
        self.overrides = overrides

    @cached_property
    def settings(self) -> Settings:
        return load_settings(**self.overrides)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.effective_database_url)

    @cached_property
    def factory(self) -> sessionmaker[Session]:
        """Sessions on a database that must already be initialised and current."""
        ensure_current(self.engine)
        return session_factory(self.engine)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()


class DigestGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            raise click.ClickException(str(exc)) from None


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def on_terminal() -> bool:
    return sys.stdout.isatty()


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


pass_app = click.make_pass_decorator(App)

from digest.cli import checks, content, feeds, processes, sending, subscribers  # noqa: E402

for module in (content, feeds, checks, subscribers, processes, sending):
    for command in module.COMMANDS:
        main.add_command(command)
