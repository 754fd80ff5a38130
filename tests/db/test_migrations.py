"""The migrations build exactly the schema the models describe, on SQLite and on PostgreSQL."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from shared.db.database import normalise_url
from shared.db.migrate import alembic_config
from shared.models import Base


def test_the_migrated_schema_matches_the_models(database_url):
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert differences == [], "a model change has no migration:\n" + "\n".join(map(str, differences))


def test_the_migrations_form_one_line(database_url):
    script = ScriptDirectory.from_config(alembic_config(database_url))
    assert len(script.get_heads()) == 1, f"several migration heads: {script.get_heads()}"
