"""``column is one of these values`` as one bound parameter: built per call (``among``) or built once
and given its list at execution (``among_bound``), on both databases, for any text."""

from sqlalchemy import insert, select

from shared.db.lists import among, among_bound, bound_list, per_dialect
from shared.models import Partner

ODD = ['plain', 'with,comma', 'with"quote', "with'apostrophe", 'with\\backslash', '{braces}', 'NULL', ' spaced ']
partners = Partner.__table__


@per_dialect
def _named(dialect: str):
    return select(partners.c.id).where(among_bound(dialect, partners.c.name, "names"))


def _names(network, names: list[str]) -> None:
    network.tx(lambda tx: tx.session.execute(insert(partners), [
        {"id": f"prt_{index}", "name": name, "status": "active", "created_at": tx.now}
        for index, name in enumerate(names)]))


def test_a_statement_built_once_finds_exactly_the_listed_values(network):
    _names(network, ODD + ["not listed", "with"])

    def found(tx, names):
        return sorted(tx.session.execute(_named(tx.dialect), {"names": bound_list(tx.dialect, names)}).scalars())

    expected = sorted(f"prt_{ODD.index(name)}" for name in ODD)
    assert network.tx(lambda tx: found(tx, ODD)) == expected
    assert network.tx(lambda tx: found(tx, [])) == []
    assert network.tx(lambda tx: found(tx, ["with"])) == [f"prt_{len(ODD) + 1}"]
    # and it answers as the per-call form does
    assert network.tx(lambda tx: sorted(tx.session.execute(
        select(partners.c.id).where(among(tx.dialect, partners.c.name, ODD))).scalars())) == expected
