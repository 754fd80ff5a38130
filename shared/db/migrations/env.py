"""Alembic environment: migrations run unchanged on SQLite and PostgreSQL."""

from alembic import context

from shared.db.database import make_engine
from shared.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        # one transaction for the whole upgrade on SQLite too (its DDL is transactional; Alembic assumes
        # not, and would commit each migration): a migration that stops leaves the revision it started from
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `pointsnet db upgrade`")
run_migrations_online()
