"""A partner's own money-moving entry posted without a reference (a capture: the partner guide lets
a capture leave its reference out) is on its statement with a blank reference. Matching the partner's
log must not skip those lines and say "no breaks": each such entry is an ``unreferenced`` break."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from shared.settlement.reconcile import match_partner_log
from tests.cli.inprocess import pointsnet as run_pointsnet
from tests.factories import make_member, make_partner
from tests.programme_limits.conftest import rules

PREPAID = dict(billing="prepaid", point_value="0.7", issuance_fee="0.05", redemption_fee_rate="0.05")
POSTPAID = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")
CYCLE = date(2026, 11, 20)
AT = "2026-11-20T02:00:00Z"


@pytest.fixture
def settled(network, clock, database_url):
    """Prepaid C earns c-e1 101 points for one member; another member earns d-e1 100 points at
    postpaid D, and C holds c-h1 55 of them and captures 37 with no reference: D reimburses C."""
    c = make_partner(network, "C", **PREPAID)
    d = make_partner(network, "D", **POSTPAID)
    network.earn(c, make_member(network, c), "c-e1", points=101)
    member = make_member(network, d, also_linked_to=(c,))
    network.earn(d, member, "d-e1", points=100)
    hold = network.hold(c, member, "c-h1", 55)
    capture = network.capture(c, hold["hold_id"], 37)
    clock.advance(days=1)
    network.settle(CYCLE)
    env = {"POINTSNET_DATA_DIR": str(network.settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
           "POINTSNET_CLOCK": clock.now().isoformat().replace("+00:00", "Z")}
    return {"c": c, "d": d, "env": env, "capture": capture,
            "directory": network.settings.data_dir / "settlements" / CYCLE.isoformat()}


def reconcile(settled, tmp_path, partner, *lines):
    log = tmp_path / "log.csv"
    log.write_text("reference,kind,points,amount,time\n" + "".join(line + "\n" for line in lines))
    report = tmp_path / "breaks.csv"
    done = run_pointsnet("reconcile", str(settled["directory"]), "--partner", settled[partner],
                         "--partner-log", str(log), "--breaks-csv", str(report), env=settled["env"])
    done.breaks = report.read_text() if report.exists() else ""
    return done


def test_the_statement_has_the_capture_with_a_blank_reference(settled):
    statement = (settled["directory"] / f"statement-{settled['c']}.csv").read_text()
    captures = [line.split(",") for line in statement.splitlines() if ",capture," in line]
    assert captures and all(fields[4] == "" for fields in captures), statement
    assert {fields[9] for fields in captures} == {"25.900000", "-1.295000"}, statement


def test_an_unreferenced_capture_is_a_break_not_no_breaks(settled, tmp_path):
    done = reconcile(settled, tmp_path, "c", f"c-e1,earn,101,-75.75,{AT}", f"c-h1,hold,55,0,{AT}")
    assert "no breaks" not in done.stdout and done.returncode == 1, (done.stdout, done.stderr)
    rows = [row.split(",") for row in done.breaks.splitlines()[1:]]
    assert [row[1] for row in rows] == ["unreferenced"], done.breaks
    transaction = settled["capture"]["entry_id"]
    assert rows[0][0] == transaction, done.breaks
    assert "capture 24.605000" in done.breaks and "c-h1" in done.breaks, done.breaks


def test_other_partners_entries_with_a_blank_reference_are_not_breaks(settled, tmp_path):
    """D's statement has C's capture too (D reimburses it), with a blank reference: C's entry, not D's,
    so D's log, which cannot name it, matches."""
    statement = (settled["directory"] / f"statement-{settled['d']}.csv").read_text()
    assert ",capture,redemption," in statement, statement
    done = reconcile(settled, tmp_path, "d", f"d-e1,earn,100,-10,{AT}")
    assert done.returncode == 0 and "no breaks" in done.stdout, (done.stdout, done.stderr, done.breaks)


def test_the_capture_logged_under_its_transaction_id_matches(settled, tmp_path):
    """The API answers a capture with its transaction id: a log that lists it under that id matches."""
    transaction = settled["capture"]["entry_id"]
    done = reconcile(settled, tmp_path, "c", f"c-e1,earn,101,-75.75,{AT}", f"c-h1,hold,55,0,{AT}",
                     f"{transaction},capture,37,24.605,{AT}")
    assert done.returncode == 0 and "no breaks" in done.stdout, (done.stdout, done.stderr, done.breaks)


def test_the_capture_logged_under_its_transaction_id_is_compared(settled, tmp_path):
    transaction = settled["capture"]["entry_id"]
    done = reconcile(settled, tmp_path, "c", f"c-e1,earn,101,-75.75,{AT}", f"c-h1,hold,55,0,{AT}",
                     f"{transaction},capture,38,25,{AT}")
    rows = [row.split(",")[:2] for row in done.breaks.splitlines()[1:]]
    assert done.returncode == 1 and rows == [[transaction, "points_mismatch"], [transaction, "amount_mismatch"]], \
        done.breaks


def test_a_referral_bonus_the_partner_funds_is_named_as_its_earns_bonus(network, clock, database_url, tmp_path):
    """A referral bonus the partner funds is posted by the network for the partner's earn: it has no
    reference the partner could have given it, so its break names the earn that paid it; logged under
    its transaction id (the earn's answer gives it) it matches."""
    c = make_partner(network, "C", **PREPAID)
    rules(network, c, "referral: {bonus_points: 50}\n")
    referrer = make_member(network, c)
    referee = network.enrol(c, phone="+8613900002222", referrer_member_id=referrer)["member_id"]
    earn = network.earn(c, referee, "c-e1", points=10, amount=10000)
    bonus = earn["referral_bonus"]["transaction_id"]
    clock.advance(days=1)
    network.settle(CYCLE)
    settled = {"c": c, "directory": network.settings.data_dir / "settlements" / CYCLE.isoformat(),
               "env": {"POINTSNET_DATA_DIR": str(network.settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
                       "POINTSNET_CLOCK": clock.now().isoformat().replace("+00:00", "Z")}}
    statement = (settled["directory"] / f"statement-{c}.csv").read_text()
    earned = sum(Decimal(line.split(",")[9]) for line in statement.splitlines() if ",c-e1," in line)
    given = sum(Decimal(line.split(",")[9]) for line in statement.splitlines() if f",{bonus}," in line)
    assert given < 0, statement
    done = reconcile(settled, tmp_path, "c", f"c-e1,earn,10,{earned},{AT}")
    rows = [row.split(",") for row in done.breaks.splitlines()[1:]]
    assert done.returncode == 1 and [row[:2] for row in rows] == [[bonus, "unreferenced"]], done.breaks
    assert "referral bonus your earn c-e1 paid" in done.breaks and "your own" not in done.breaks, done.breaks
    matched = reconcile(settled, tmp_path, "c", f"c-e1,earn,10,{earned},{AT}", f"{bonus},bonus,50,{given},{AT}")
    assert matched.returncode == 0 and "no breaks" in matched.stdout, (matched.stdout, matched.breaks)


def test_the_buy_out_the_network_posts_when_a_partner_leaves_is_matched_by_transaction_id(
        network, clock, database_url, tmp_path):
    """The buy-out of a leaving issuer's open points is posted by the network (the statement shows its fixed
    reference, none of the partner's): a log without it has one ``unreferenced`` break naming the buy-out,
    not a ``missing_on_partner`` one; logged under its transaction id, or the reference its statement
    shows, it matches, so the partner's log can match its final cycle."""
    from shared.partners.lifecycle import BUY_OUT_REFERENCE, terminate

    terms = dict(billing="postpaid", point_value="1", issuance_fee="0", redemption_fee_rate="0")
    issuer, shop = make_partner(network, "Issuer", **terms), make_partner(network, "Shop", **terms)
    member = make_member(network, issuer, also_linked_to=(shop,))
    network.earn(issuer, member, "i-e1", points=500)
    network.burn(shop, member, "s-b1", 200)
    left = network.tx(lambda tx: terminate(tx, issuer, settlement="buy_out", buy_out_rate_ppm=800_000))
    bought = left["buy_out_entry_id"]
    clock.advance(days=1)
    network.settle(CYCLE)
    settled = {"i": issuer, "directory": network.settings.data_dir / "settlements" / CYCLE.isoformat(),
               "env": {"POINTSNET_DATA_DIR": str(network.settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
                       "POINTSNET_CLOCK": clock.now().isoformat().replace("+00:00", "Z")}}
    statement = (settled["directory"] / f"statement-{issuer}.csv").read_text()
    lines = [line.split(",") for line in statement.splitlines() if f",{bought}," in line]
    assert lines and all(fields[4] == BUY_OUT_REFERENCE and fields[5] == "adjustment" for fields in lines), statement
    assert sum(Decimal(fields[9]) for fields in lines) == Decimal(-240), statement  # 300 open points at 0.8
    own = f"i-e1,earn,500,0,{AT}"  # moves no money (no fees, postpaid): matched against the ledger
    done = reconcile(settled, tmp_path, "i", own)
    rows = [row.split(",") for row in done.breaks.splitlines()[1:]]
    assert done.returncode == 1 and [row[:2] for row in rows] == [[bought, "unreferenced"]], done.breaks
    assert "the buy-out of your open points when you left the network" in done.breaks, done.breaks
    assert "missing_on_partner" not in done.breaks

    def breaks(*lines):
        log = "reference,kind,points,amount,time\n" + "".join(line + "\n" for line in (own, *lines))
        return [(b.reference, b.kind) for b in network.tx(lambda tx: match_partner_log(
            tx, statement.encode(), issuer, log), readonly=True)]

    assert breaks(f"{bought},adjustment,300,-240,{AT}") == []
    assert breaks(f"{BUY_OUT_REFERENCE},adjustment,300,-240,{AT}") == []  # the reference its statement shows
    assert breaks(f"{bought},adjustment,300,-250,{AT}") == [(bought, "amount_mismatch")]
    assert breaks(f"{BUY_OUT_REFERENCE},adjustment,301,-240,{AT}") == [(BUY_OUT_REFERENCE, "points_mismatch")]
    assert breaks(f"{bought},adjustment,300,-240,{AT}", f"{BUY_OUT_REFERENCE},adjustment,300,-240,{AT}") == [
        (bought, "duplicate_on_partner")]
