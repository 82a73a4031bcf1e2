"""Alembic environment: runs against the engine digest hands over (see digest.core.db.upgrade).

The metadata here holds the pipeline tables of ``digest.core.models``; the subscriber
tables join it when ``subscribers.models`` is imported (as every entry point does), which
only matters to ``alembic revision --autogenerate``: run it with that module imported."""

from alembic import context
from sqlalchemy import create_engine, text

from digest.core.db import Base

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # plain `alembic` command line: take the URL from alembic.ini
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///var/digest.db")

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch migrations rebuild SQLite tables (copy, drop, rename); with foreign
        # keys enforced the DROP of a referenced table fails. Turn enforcement off
        # for the migration (it must happen outside a transaction) and check after.
        # The sqlite3 driver does not put DDL inside its implicit transactions, so
        # open one explicitly: a failed upgrade then leaves nothing half-done.
        dbapi = connection.connection.dbapi_connection
        previous_isolation = dbapi.isolation_level  # type: ignore[union-attr]
        dbapi.isolation_level = None  # type: ignore[union-attr]
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.exec_driver_sql("BEGIN")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            broken = connection.execute(text("PRAGMA foreign_key_check")).all()
            if broken:
                raise RuntimeError(f"migration left broken foreign keys: {broken[:5]}")
    connection.commit()
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        dbapi.isolation_level = previous_isolation  # type: ignore[union-attr]
