"""What every command shares: settings and the database opened on first use, the one
place a ``DigestError`` becomes a one-line message, and JSON and terminal helpers.

Commands import what they need when they run (``digest --help`` and
``digest --version`` load no database, HTTP or mail library), so this module
imports only click at the top."""

from __future__ import annotations

import json
import sys
from functools import cached_property
from typing import TYPE_CHECKING, Any

import click

from digest.core.errors import DigestError

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from digest.core.settings import Settings


class App:
    """Settings read once, and the database opened on first use."""

    def __init__(self, **overrides: Any) -> None:
        self.overrides = overrides

    @cached_property
    def settings(self) -> Settings:
        from digest.core.settings import load_settings

        return load_settings(**self.overrides)

    @cached_property
    def engine(self) -> Engine:
        from digest.core.db import make_engine

        return make_engine(self.settings.effective_database_url)

    @cached_property
    def factory(self) -> sessionmaker[Session]:
        """Sessions on a database that must already be initialised and current."""
        from digest.core.db import ensure_current, session_factory

        ensure_current(self.engine)
        self.settings.load_signing_key(self.engine)  # the key every process shares
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


pass_app = click.make_pass_decorator(App)
