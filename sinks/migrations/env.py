"""Alembic environment: plain SQL migrations, run online against the URL handed in by ``sinks.schema``."""

from alembic import context
from sqlalchemy import create_engine

config = context.config


def run() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None, "sinks.schema.migrate sets the URL"
    engine = create_engine(url)
    with engine.connect() as connection:
        # Several processes may start at once; one migrates, the others wait and find nothing to do.
        connection.exec_driver_sql("SELECT pg_advisory_lock(72430017)")
        connection.commit()
        try:
            context.configure(connection=connection, transaction_per_migration=True)
            with context.begin_transaction():
                context.run_migrations()
        finally:
            connection.exec_driver_sql("SELECT pg_advisory_unlock(72430017)")
            connection.commit()
    engine.dispose()


run()
