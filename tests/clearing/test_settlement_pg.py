"""Clearing on PostgreSQL: a settlement killed mid-run, and two settlers racing for one cycle."""

import os
import subprocess
import sys
import threading
from datetime import date

import pytest
from sqlalchemy import text

from shared.network import Network
from tests.factories import make_member, make_partner

pytestmark = pytest.mark.postgres
CYCLE = date(2026, 11, 20)


def _activity(network, clock):
    coffee = make_partner(network, "CoffeeCo", issuance_fee="0.1", redemption_fee_rate="0.05")
    book = make_partner(network, "BookMart", billing="prepaid", issuance_fee="0.1", redemption_fee_rate="0.05")
    for n in range(20):
        member = make_member(network, coffee, also_linked_to=(book,))
        network.earn(coffee, member, f"e{n}", points=100 + n)
        network.earn(book, member, f"f{n}", points=50)
        network.burn(book, member, f"b{n}", 120)
    clock.advance(days=1)
    return coffee, book


SETTLE = """
import sys
from datetime import date, datetime
from shared.clock import FixedClock
from shared.config import Settings
from shared.network import Network
settings = Settings(data_dir=sys.argv[1])
network = Network(settings, database_url=sys.argv[2], clock=FixedClock(datetime.fromisoformat(sys.argv[3])))
print(network.settle(date.fromisoformat(sys.argv[4])))
"""


def _settle_in_process(settings, url, now, failpoint=None):
    env = dict(os.environ, POINTSNET_DATA_DIR=str(settings.data_dir))
    if failpoint:
        env["POINTSNET_FAILPOINT"] = failpoint
    return subprocess.run([sys.executable, "-c", SETTLE, str(settings.data_dir), url, now.isoformat(),
                           CYCLE.isoformat()], env=env, capture_output=True, text=True, timeout=120)


def test_settlement_killed_mid_run_is_rerun_to_identical_files(network, clock, settings, database_url):
    _activity(network, clock)
    network.signing_key  # the key lives in the data directory, shared by the subprocesses
    killed = _settle_in_process(settings, database_url, clock.now(), failpoint="settlement.after_files")
    assert killed.returncode == -9, killed.stderr
    directory = settings.data_dir / "settlements" / CYCLE.isoformat()
    written = {p.name: p.read_bytes() for p in directory.iterdir()}
    assert network.tx(lambda tx: tx.session.execute(text("SELECT COUNT(*) FROM settlement_runs")).scalar_one()) == 0
    rerun = _settle_in_process(settings, database_url, clock.now())
    assert rerun.returncode == 0, rerun.stderr
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == written
    again = _settle_in_process(settings, database_url, clock.now())
    assert "'already_settled': True" in again.stdout
    assert network.tx(lambda tx: tx.session.execute(text("SELECT COUNT(*) FROM settlement_runs")).scalar_one()) == 1


def test_two_settlers_settle_a_cycle_once(network, clock, settings, database_url):
    _activity(network, clock)
    others = [Network(settings, database_url=database_url, clock=clock) for _ in range(2)]
    results, barrier = [], threading.Barrier(2)

    def settle(net):
        barrier.wait()
        results.append(net.settle(CYCLE))

    threads = [threading.Thread(target=settle, args=(net,)) for net in others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for net in others:
        net.close()
    assert sorted(r["already_settled"] for r in results) == [False, True]
    assert len({r["run_id"] for r in results}) == 1
    assert network.tx(lambda tx: tx.session.execute(text("SELECT COUNT(*) FROM settlement_runs")).scalar_one()) == 1


def test_postgres_writer_gives_the_generic_writers_bytes(network, clock, tmp_path):
    """The PostgreSQL writer (a few streamed queries over the whole cycle, records formatted by the
    database) and the generic one (a query per statement) write the same files byte for byte:
    references that need CSV quoting or are not ASCII, a prepaid partner, and late reversals (A records)."""
    from shared.ledger.cycles import cycle_date_for
    from shared.settlement.calendar import payment_date
    from shared.settlement.streaming import write_cycle

    coffee = make_partner(network, "CoffeeCo", issuance_fee="0.1", redemption_fee_rate="0.05")
    book = make_partner(network, "BookMart", billing="prepaid", point_value="1.3", issuance_fee="0.07",
                        redemption_fee_rate="0.033", breakage_share="0.25")
    air = make_partner(network, "AirLink", point_value="0.9", redemption_fee_rate="0.071")
    references = ["plain", "a,b", 'say "hi"', "ü\\.", "", '"', "x\\y,z"]
    first = cycle_date_for(clock.now(), network.settings)
    for n, reference in enumerate(references):
        member = make_member(network, coffee, also_linked_to=(book, air))
        network.earn((coffee, book, air)[n % 3], member, f"e-{reference}-{n}", points=100 + n)
        network.earn(air, member, f"a{n}", points=77)
        network.burn((book, coffee, air)[n % 3], member, reference or f"burn-{n}", 120 + n)
    clock.advance(days=1)
    network.settle(first)
    for n, reference in enumerate(references[:4]):  # reversals of the first cycle's burns: adjustments
        network.reverse((book, coffee, air)[n % 3], f"rev,{n}", reference or f"burn-{n}", 10 + n)
    member = make_member(network, coffee)
    network.earn(coffee, member, "second, cycle", points=300)
    network.burn(coffee, member, "second-burn", 40)
    second = cycle_date_for(clock.now(), network.settings)
    clock.advance(days=1)

    def written(cycle, directory, generic, jobs=1):
        directory.mkdir()
        network.settings.settlement_jobs = jobs
        return network.tx(lambda tx: write_cycle(
            tx, cycle, directory, currency="CNY", cutoff="cutoff", payment_date=payment_date(tx, cycle),
            ledger_position={}, format_version=1, generic=generic), readonly=True)

    for cycle in (first, second):
        generic = written(cycle, tmp_path / f"generic-{cycle}", generic=True)
        names = sorted(path.name for path in (tmp_path / f"generic-{cycle}").iterdir())
        assert len(names) == 5  # three statements, the summary, the bilateral matrix
        for jobs in (1, 2, 3):  # statements on one connection, or side by side on several
            fast = written(cycle, tmp_path / f"fast-{cycle}-{jobs}", generic=False, jobs=jobs)
            assert fast == generic
            assert names == sorted(path.name for path in (tmp_path / f"fast-{cycle}-{jobs}").iterdir())
            for name in names:
                assert (tmp_path / f"fast-{cycle}-{jobs}" / name).read_bytes() == \
                    (tmp_path / f"generic-{cycle}" / name).read_bytes(), (jobs, name)
    statements = [(tmp_path / f"fast-{second}-3" / f"statement-{p}.csv").read_text() for p in (coffee, book, air)]
    assert any("\nA," in text for text in statements)  # the late reversals are adjustments
    assert any('"rev,0"' in text for text in statements)  # a reference with a comma, quoted


def test_a_statement_failing_on_a_helper_connection_leaves_nothing_and_a_rerun_settles(network, clock, settings,
                                                                                        monkeypatch):
    """A helper connection's error (here: the second partner's statement) ends the settlement: no
    directory, no settlement run, no roll-up, no helper thread left; the next attempt settles."""
    from shared.settlement import single_pass

    coffee, book = _activity(network, clock)
    network.settings.settlement_jobs = 3
    details, failing = single_pass._details, sorted([coffee, book])[1]
    seen = []

    def flaky(connection, params, out):
        seen.append(threading.current_thread().name)
        if params["party"] == failing:
            raise RuntimeError("the database went away")
        return details(connection, params, out)

    monkeypatch.setattr(single_pass, "_details", flaky)
    threads = threading.active_count()
    with pytest.raises(RuntimeError, match="went away"):
        network.settle(CYCLE)
    assert all(name.startswith("snapshot-") for name in seen)  # written on the helper connections
    assert threading.active_count() == threads
    assert not list((settings.data_dir / "settlements").iterdir())  # no files, no staging directory
    count = "SELECT (SELECT COUNT(*) FROM settlement_runs) + (SELECT COUNT(*) FROM report_rollups)"
    assert network.tx(lambda tx: tx.session.execute(text(count)).scalar_one()) == 0
    monkeypatch.setattr(single_pass, "_details", details)
    settled = network.settle(CYCLE)
    assert not settled["already_settled"] and set(settled["net_positions"]) >= {coffee, book}
    assert network.tx(lambda tx: tx.session.execute(text(count)).scalar_one()) == 2
