"""Property: for random ledgers across cycles, settlement files always add up, and the streamed
files are byte for byte those of the in-memory reference implementation."""

import csv
import io
import itertools
import json
from datetime import date

from hypothesis import HealthCheck, given, settings, strategies as st

from shared.errors import PointsnetError
from shared.ledger.cycles import cycle_date_for
from shared.settlement.reconcile import check_controls
from shared.settlement.runs import compute
from tests.factories import make_member, make_partner

_names = itertools.count()
operation = st.one_of(
    st.tuples(st.just("earn"), st.integers(0, 2), st.integers(0, 3), st.integers(1, 900)),
    st.tuples(st.just("burn"), st.integers(0, 2), st.integers(0, 3), st.integers(1, 700)),
    st.tuples(st.just("reverse"), st.integers(0, 2), st.integers(0, 3), st.integers(1, 300)),
    st.tuples(st.just("bonus"), st.integers(0, 2), st.integers(0, 3), st.integers(1, 200)),
    st.tuples(st.just("next_cycle"), st.just(0), st.just(0), st.just(0)),
)


def ref(n: int) -> str:
    """Every other reference needs CSV quoting (comma, quotes) or is not ASCII."""
    return f'r{n}, "till" ü\\.' if n % 2 else f"r{n}"


def rows(content: bytes):
    return list(csv.DictReader(io.StringIO(content.decode())))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(ops=st.lists(operation, min_size=5, max_size=30),
       terms=st.lists(st.sampled_from([
           dict(billing="postpaid", issuance_fee="0.1", redemption_fee_rate="0.05"),
           dict(billing="prepaid", point_value="1.3", issuance_fee="0.07", redemption_fee_rate="0.033",
                breakage_share="0.25"),
           dict(billing="postpaid", point_value="0.9", redemption_fee_rate="0.071"),
       ]), min_size=3, max_size=3))
def test_settlement_files_always_add_up(network, clock, ops, terms):
    run = next(_names)
    partners = [make_partner(network, f"P{run}-{i}", **t) for i, t in enumerate(terms)]
    members = [make_member(network, partners[0], also_linked_to=tuple(partners[1:])) for _ in range(4)]
    references: dict[int, list[str]] = {0: [], 1: [], 2: []}
    cycles = {cycle_date_for(clock.now(), network.settings)}
    for n, (kind, p, m, points) in enumerate(ops):
        clock.advance(minutes=7)
        try:
            if kind == "earn":
                network.earn(partners[p], members[m], ref(n), points=points)
                references[p].append(ref(n))
            elif kind == "burn":
                network.burn(partners[p], members[m], ref(n), points)
                references[p].append(ref(n))
            elif kind == "reverse" and references[p]:
                network.reverse(partners[p], ref(n), references[p][points % len(references[p])], points)
            elif kind == "bonus":
                network.grant_bonus(members[m], points, reason="property")
            elif kind == "next_cycle":
                clock.advance(days=1)
        except PointsnetError:
            pass
        cycles.add(cycle_date_for(clock.now(), network.settings))
    clock.advance(days=2)
    network.settings.settlement_jobs = 3  # PostgreSQL: statements on three helper connections
    for cycle in sorted(cycles):
        result = network.settle(cycle)
        assert sum(result.get("net_positions", {}).values()) == 0
        directory = network.settings.data_dir / "settlements" / cycle.isoformat()
        files = {p.name: p.read_bytes() for p in directory.iterdir() if p.suffix == ".csv"}
        manifest = (directory / "manifest.json").read_bytes()
        reference = network.tx(lambda tx: compute(tx, cycle, date.fromisoformat(json.loads(manifest)["payment_date"])),
                               readonly=True)
        assert reference.files == files and reference.manifest == manifest
        for name, content in files.items():
            assert check_controls(name, content) == [], name
        summary = {r["party"]: int(r["net_minor"]) for r in rows(files["network-summary.csv"])
                   if r["record_type"] == "D"}
        assert sum(summary.values()) == 0
        for name, content in files.items():
            if name.startswith("statement-"):
                net = [int(r["amount_minor"]) for r in rows(content) if r["record_type"] == "N"]
                assert net == [summary[name[len("statement-"):-len(".csv")]]]
        assert {f"statement-{party}.csv" for party in summary if party != "network"} == \
            {name for name in files if name.startswith("statement-")}
    clock.advance(days=1)
