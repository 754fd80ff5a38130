"""A spend reads a member's open lots as one range of ix_lots_member_order, in consumption order.

The index holds whether a lot is open as its second column (migration 0021), so the first lots with
free points of a member with years of spent lots are read without walking those: the plan must use
both the member and the open flag as index conditions and need no sort. (The schema comparison of
test_migrations cannot see expression indexes, so this checks the migrated index directly.)
"""

from sqlalchemy import create_engine, text

from shared.db.database import normalise_url
from shared.db.lists import bound_list
from shared.ledger.state import _first_lots_query
from tests.db.test_history_plans import analyzed, with_a_past


def _plan(url: str) -> tuple[str, str]:
    engine = create_engine(normalise_url(url))
    try:
        with engine.begin() as connection:
            dialect = engine.dialect
            compiled = _first_lots_query(dialect.name).compile(dialect=dialect)
            params = {"ids": bound_list(dialect.name, ["mem_a", "mem_b"]), "page": 32}
            if dialect.name == "postgresql":
                # an empty table's plan says nothing: rule out what the index should make unnecessary
                for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort", "enable_incremental_sort"):
                    connection.execute(text(f"SET LOCAL {setting} = off"))
                rows = connection.exec_driver_sql(f"EXPLAIN {compiled}", compiled.construct_params(params))
                definition = connection.execute(text(
                    "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_lots_member_order'")).scalar_one()
            else:
                rows = connection.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN {compiled}",
                    tuple(compiled.construct_params(params)[name] for name in compiled.positiontup))
                definition = connection.execute(text(
                    "SELECT sql FROM sqlite_master WHERE name = 'ix_lots_member_order'")).scalar_one()
            return "\n".join(str(row[-1]) for row in rows), definition
    finally:
        engine.dispose()


def test_a_spenders_first_lots_are_one_range_of_the_member_index(network, clock, database_url):
    with_a_past(network, clock)
    analyzed(network, "lots")
    plan, definition = _plan(database_url)
    assert "remaining > 0" in definition and "member_id" in definition
    assert "ix_lots_member_order" in plan, plan
    if "Index Cond" in plan:  # PostgreSQL
        assert "(remaining > 0) = true" in plan and "Sort" not in plan, plan
    else:
        assert "(member_id=? AND <expr>=?)" in plan and "TEMP B-TREE" not in plan, plan
