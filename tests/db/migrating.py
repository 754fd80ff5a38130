"""Moving a test database between revisions as the network's own processes connect (``make_engine``:
on SQLite, foreign keys enforced), for the tests of one migration on the data an older one left."""

from __future__ import annotations

from alembic import command

from shared.db.database import make_engine
from shared.db.migrate import alembic_config


def downgrade(url: str, revision: str) -> None:
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.downgrade(config, revision)
            connection.commit()
    finally:
        engine.dispose()
