"""No index on members can be taken for ``merged_into IS NULL``.

Every posting locks its members with ``id = ANY(...) AND merged_into IS NULL``. With a full index
on merged_into, PostgreSQL without statistics (a new network, a bulk import before autovacuum's
first ANALYZE) read that index — every member — and tested each against the list: 45 to 97 ms per
batch of 1,000 events at 5,000 members (docs/benchmarks.md). Migration 0018 makes it partial.
"""

from sqlalchemy import create_engine, inspect

from shared.db.database import normalise_url


def test_the_merged_into_index_holds_only_merged_members(database_url):
    engine = create_engine(normalise_url(database_url))
    try:
        indexes = [index for index in inspect(engine).get_indexes("members")
                   if "merged_into" in index["column_names"]]
    finally:
        engine.dispose()
    assert [index["name"] for index in indexes] == ["ix_members_merged_into"]
    predicate = " ".join(str(value) for key, value in indexes[0].get("dialect_options", {}).items()
                         if key.endswith("_where"))
    assert "merged_into IS NOT NULL" in predicate.replace("(", "").replace(")", ""), indexes[0]


def test_a_members_reversals_are_found_through_their_own_index(database_url):
    """The qualifying-points query names ``kind = 'reversal'`` in its SQL, not as a parameter: only then
    can the database use the partial index of reversals (migration 0019) for it."""
    from sqlalchemy import create_engine as engine_for

    from shared.programme.tiers import _qualifying_query

    engine = engine_for(normalise_url(database_url))
    try:
        dialect = engine.dialect
        sql = str(_qualifying_query(dialect.name).compile(dialect=dialect))
        indexes = {index["name"]: index for index in inspect(engine).get_indexes("entries")}
    finally:
        engine.dispose()
    assert "reversal.kind = 'reversal'" in sql
    partial = indexes["ix_entries_member_reversals"]
    assert partial["column_names"] == ["member_id", "posted_at"]
    assert "kind = 'reversal'" in " ".join(str(v) for k, v in partial.get("dialect_options", {}).items()
                                           if k.endswith("_where")).replace("(", "").replace(")", "").replace("::text", "")
