"""Alembic environment: runs against the engine digest hands over (see digest.db.upgrade)."""

from alembic import context
from sqlalchemy import create_engine

import digest.models  # noqa: F401  (registers every table on the metadata)
import digest.runlog  # noqa: F401
from digest.db import Base

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # plain `alembic` command line: take the URL from alembic.ini
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///var/digest.db")

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
