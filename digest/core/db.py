"""Engine, sessions and schema management (Alembic) for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, Enum, Float, String, bindparam, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

from digest.core.errors import ConfigError, DigestError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class Base(DeclarativeBase):
    """One metadata for digest and subscribers (real foreign keys between them)."""


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def str_enum(enum: type[StrEnum]) -> Enum:
    """Store a StrEnum as its value in a plain VARCHAR (no native enum, no CHECK)."""
    return Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=20,
        values_callable=lambda e: [m.value for m in e],
    )


def utcnow() -> datetime:
    return datetime.now(UTC)


class db_time(FunctionElement[datetime]):
    """The database server's clock (UTC) plus ``seconds``, evaluated in SQL.

    Leases are written and compared with this, so senders on machines whose
    clocks disagree still agree on when a lease runs out.
    """

    type = UTCDateTime()
    inherit_cache = True
    name = "db_time"

    def __init__(self, seconds: float = 0.0) -> None:
        super().__init__(
            bindparam(None, f"{float(seconds):+.3f} seconds", type_=String),
            bindparam(None, float(seconds), type_=Float),
        )


@compiles(db_time, "sqlite")
def _db_time_sqlite(element: db_time, compiler: SQLCompiler, **kw: Any) -> str:
    modifier, _ = list(element.clauses)
    # The same text form SQLAlchemy stores SQLite datetimes in, so they compare as strings.
    return f"strftime('%Y-%m-%d %H:%M:%f', 'now', {compiler.process(modifier, **kw)})"


@compiles(db_time)
def _db_time_default(element: db_time, compiler: SQLCompiler, **kw: Any) -> str:
    _, seconds = list(element.clauses)
    return f"(statement_timestamp() + make_interval(secs => {compiler.process(seconds, **kw)}))"


def is_transient(exc: BaseException) -> bool:
    """A database error worth retrying: a lost connection, a lock held too long, a restart."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str, **options: Any) -> Engine:
    """An engine for ``url``; SQLite files get WAL, foreign keys and a busy timeout.

    ``options`` go to ``create_engine`` (e.g. ``poolclass=NullPool``)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError("DIGEST_DATABASE_URL", f"not a database URL: {url!r}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    "DIGEST_DATABASE_URL",
                    f"cannot create the folder {folder} of the database: {exc.strerror}"
                    " (the default database lives in DIGEST_VAR_DIR)",
                ) from None
        engine = create_engine(url, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(
            "DIGEST_DATABASE_URL", f"unsupported database {parsed.get_backend_name()!r}"
        )
    try:
        return create_engine(url, **{"pool_pre_ping": True, **options})
    except ImportError as exc:
        raise ConfigError("DIGEST_DATABASE_URL", f"driver missing: {exc}") from None


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits together at the end, or not at all."""
    with factory() as session, session.begin():
        yield session


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    """The newest schema revision(s), comma-separated when branches are open."""
    from alembic.script import ScriptDirectory

    return ",".join(sorted(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads()))


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as conn:
            heads = MigrationContext.configure(conn).get_current_heads()
    except OperationalError as exc:
        raise DigestError(f"database {engine.url!r}: cannot connect: {first_line(exc)}") from None
    return ",".join(sorted(heads)) or None


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Create or upgrade the schema to the newest revision; returns (before, after)."""
    from alembic import command

    before = current_revision(engine)
    command.upgrade(alembic_config(engine), "heads")
    return before, head_revision()


def ensure_current(engine: Engine) -> None:
    """Fail with a clear message unless the schema is initialised and up to date."""
    rev = current_revision(engine)
    url = engine.url.render_as_string(hide_password=True)
    if rev is None:
        raise DigestError(f"database {url} is not initialised: run `digest init`")
    if rev != head_revision():
        raise DigestError(f"database {url} schema is out of date ({rev}): run `digest init`")


def first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
