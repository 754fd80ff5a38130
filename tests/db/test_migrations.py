"""The migrations build exactly the schema the models describe, on SQLite and on PostgreSQL."""

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

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


def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    engine = create_engine(normalise_url(url))
    try:
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)
    finally:
        engine.dispose()


def test_0017_sums_the_members_of_a_month_still_running(database_url):
    """A month whose cycles were rolled up before 0017 but which was not over had no member rows:
    the migration sums them from the cycles' rows; a complete month's rows stay as they were."""
    engine = create_engine(normalise_url(database_url))
    _migrate(database_url, "0016", down=True)
    cycles = {"2026-10-30": [("P1", "m1", 2, 1), ("P1", "m2", 1, 1)], "2026-10-31": [("P1", "m1", 1, 0)],
              "2026-11-20": [("P1", "m1", 3, 2), ("P2", "m1", 1, 1)], "2026-11-21": [("P1", "m1", 1, 1)]}
    try:
        with engine.begin() as connection:
            for day, rows in cycles.items():
                connection.execute(text("INSERT INTO cycles (cycle_date, status) VALUES (:d, 'closed')"), {"d": day})
                connection.execute(text("INSERT INTO report_rollups (cycle_date, rolled_up_at) "
                                        "VALUES (:d, '2026-12-01 00:00:00')"), {"d": day})
                for partner, member, transactions, earns in rows:
                    connection.execute(text(
                        "INSERT INTO report_cycle_members (partner_id, cycle_date, member_id, transactions, earns) "
                        "VALUES (:p, :d, :m, :t, :e)"), {"p": partner, "d": day, "m": member, "t": transactions,
                                                        "e": earns})
            # October was over and marked: its rows are there (the 0014 roll-up wrote them)
            connection.execute(text("INSERT INTO report_rollup_months (month, rolled_up_at) "
                                    "VALUES ('2026-10-01', '2026-11-01 00:00:00')"))
            connection.execute(text("INSERT INTO report_month_members (partner_id, month, member_id, transactions, "
                                    "earns) VALUES ('P1', '2026-10-01', 'm1', 3, 1), ('P1', '2026-10-01', 'm2', 1, 1)"))
        _migrate(database_url, "head")
        with engine.connect() as connection:
            rows = {(p, str(month)[:10], m): (int(t), int(e)) for p, month, m, t, e in connection.execute(text(
                "SELECT partner_id, month, member_id, transactions, earns FROM report_month_members"))}
            tables = inspect(connection).get_table_names()
    finally:
        engine.dispose()
        _migrate(database_url, "head")  # the next test's database, also when this one fails
    assert rows == {("P1", "2026-10-01", "m1"): (3, 1), ("P1", "2026-10-01", "m2"): (1, 1),
                    ("P1", "2026-11-01", "m1"): (4, 3), ("P2", "2026-11-01", "m1"): (1, 1)}
    assert "report_rollup_months" not in tables


def test_0027_clears_the_anniversary_of_members_already_erased(database_url):
    engine = create_engine(normalise_url(database_url))
    _migrate(database_url, "0026", down=True)
    try:
        with engine.begin() as connection:
            for member, status in (("mbr_erased", "erased"), ("mbr_active", "active")):
                connection.execute(text(
                    "INSERT INTO members (id, status, available, held, created_at, tier, tier_anniversary_at) "
                    "VALUES (:id, :status, 0, 0, '2025-01-01 00:00:00', 'gold', '2025-06-01 00:00:00')"),
                    {"id": member, "status": status})
        _migrate(database_url, "head")
        with engine.begin() as connection:
            anniversaries = {member: anniversary is not None for member, anniversary in connection.execute(text(
                "SELECT id, tier_anniversary_at FROM members"))}
            connection.execute(text("DELETE FROM members"))
    finally:
        engine.dispose()
        _migrate(database_url, "head")
    assert anniversaries == {"mbr_erased": False, "mbr_active": True}


def test_0029_keeps_what_floats_settled_and_clears_what_no_bank_owes(network, clock, database_url):
    """Settled cycles get from_float_minor as `clearing list` computed it (the cycle's rounded
    prepaid_funding sum of each partner whose float is enforced, the network minus their total);
    a settlement still due with nothing to move by bank becomes nothing_due; one recorded keeps its status."""
    from datetime import date

    from shared.partners.limits import record_topup, set_limits
    from tests.factories import make_member, make_partner

    terms = dict(point_value="1", issuance_fee="0", redemption_fee_rate="0")
    shop, whole = (make_partner(network, name, billing="prepaid", **terms) for name in ("Shop", "Whole"))
    unfloated = make_partner(network, "Unfloated", billing="prepaid", **terms)
    issuer = make_partner(network, "Issuer", billing="postpaid", **terms)
    for partner in (shop, whole):
        network.tx(lambda tx, p=partner: set_limits(tx, p, float_overdraft_minor=0))
        network.tx(lambda tx, p=partner: record_topup(tx, p, 1_000, f"TOPUP-{p}"))
    member = make_member(network, shop, also_linked_to=(whole, unfloated, issuer))
    first, second = date(2026, 11, 20), date(2026, 11, 21)
    network.earn(issuer, member, "i1", points=120)
    network.burn(shop, member, "b1", 120)  # docs/settlement-files.md: net -580, 700 from the float
    network.earn(shop, member, "s1", points=700)
    network.earn(whole, member, "w1", points=300)
    network.earn(unfloated, member, "u1", points=200)
    clock.advance(days=1)
    network.earn(whole, member, "w2", points=100)
    clock.advance(days=1)
    network.settle(first)
    network.settle(second)
    network.db.engine.dispose()
    _migrate(database_url, "0028", down=True)
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.begin() as connection:  # as the previous release left them: status from the net alone
            connection.execute(text("UPDATE settlements SET status = CASE WHEN net_minor = 0 THEN 'nothing_due' "
                                    "ELSE 'due' END, bank_reference = NULL"))
            connection.execute(text("UPDATE settlements SET status = 'paid', bank_reference = 'OLD-1' "
                                    "WHERE party = :p AND cycle_date = :d"), {"p": whole, "d": first})
        _migrate(database_url, "head")
        with engine.connect() as connection:
            rows = {(str(d)[:10], party): (int(net), int(from_float), status) for d, party, net, from_float, status
                    in connection.execute(text("SELECT cycle_date, party, net_minor, from_float_minor, status "
                                               "FROM settlements"))}
    finally:
        engine.dispose()
        _migrate(database_url, "head")
    assert rows == {
        ("2026-11-20", shop): (-580, 700, "due"),  # by bank +120: the network pays it
        ("2026-11-20", whole): (-300, 300, "paid"),  # recorded before the upgrade: kept
        ("2026-11-20", unfloated): (-200, 0, "due"),
        ("2026-11-20", issuer): (-120, 0, "due"),
        ("2026-11-20", "network"): (1200, -1000, "due"),  # by bank +200, from the partner without a float
        ("2026-11-21", whole): (-100, 100, "nothing_due"),
        ("2026-11-21", "network"): (100, -100, "nothing_due"),
    }


def test_0030_gives_open_holds_their_lots_expiry(network, database_url):
    from tests.factories import make_member, make_partner

    partner = make_partner(network)
    member = make_member(network, partner)
    network.earn(partner, member, "e1", points=100)
    open_hold = network.hold(partner, member, "h1", 30)["hold_id"]
    voided = network.hold(partner, member, "h2", 20)["hold_id"]
    network.void(partner, voided)
    network.db.engine.dispose()
    engine = create_engine(normalise_url(database_url))
    _migrate(database_url, "0029", down=True)
    try:
        _migrate(database_url, "head")
        with engine.connect() as connection:
            rows = {hold_id: (kept, lot_expiry) for hold_id, kept, lot_expiry in connection.execute(text(
                "SELECT hl.hold_id, hl.lot_expires_at, l.expires_at FROM hold_lots hl JOIN lots l ON l.id = hl.lot_id"))}
    finally:
        engine.dispose()
        _migrate(database_url, "head")
    assert rows[open_hold][0] is not None and str(rows[open_hold][0]) == str(rows[open_hold][1])
    assert rows[voided][0] is None  # a resolved hold releases nothing more: left as it was


def test_0031_gives_lots_a_merge_moved_the_member_they_were_issued_to(network, database_url):
    from shared.programme.merge import merge_members
    from tests.factories import make_member, make_partner

    partner = make_partner(network)
    survivor, duplicate = make_member(network, partner), make_member(network, partner)
    network.earn(partner, survivor, "s1", points=10)
    moved = network.earn(partner, duplicate, "d1", points=20)["lots"][0]["lot_id"]
    network.tx(lambda tx: merge_members(tx, survivor, duplicate, reason="test"))
    network.db.engine.dispose()
    engine = create_engine(normalise_url(database_url))
    _migrate(database_url, "0030", down=True)  # as a merge left lots before 0031
    try:
        _migrate(database_url, "head")
        with engine.connect() as connection:
            lots = {lot_id: (member, merged_from) for lot_id, member, merged_from in connection.execute(text(
                "SELECT id, member_id, merged_from FROM lots"))}
    finally:
        engine.dispose()
        _migrate(database_url, "head")
    assert lots.pop(moved) == (survivor, duplicate)
    assert [merged_from for _, merged_from in lots.values()] == [None]  # the survivor's own lot


def _alerts(connection) -> dict:
    return {key: (int(count), acknowledged is not None) for key, count, acknowledged in connection.execute(text(
        "SELECT dedupe_key, count, acknowledged_at FROM alerts"))}


def _add_alert(connection, key: str, count: int, acknowledged: bool) -> None:
    connection.execute(text(
        "INSERT INTO alerts (kind, detail, dedupe_key, count, first_at, last_at, acknowledged_at) VALUES "
        "('float_exhausted', '{}', :key, :count, '2026-11-20 02:00:00', '2026-11-20 03:00:00', :ack)"),
        {"key": key, "count": count, "ack": "2026-11-20 04:00:00" if acknowledged else None})


def test_0034_keeps_the_alerts_and_holds_a_key_unique_among_open_alerts_only(database_url):
    """Alerts written before 0034 stay as they were; after it an acknowledged alert's key may open again,
    once; the downgrade keeps every row and gives an acknowledged one that shares its key with an open one
    a key of its own (the whole-table unique key comes back)."""
    from sqlalchemy.exc import IntegrityError

    engine = create_engine(normalise_url(database_url))
    _migrate(database_url, "0033", down=True)
    try:
        with engine.begin() as connection:
            _add_alert(connection, "float_exhausted|P1|-|2026-11-20", 3, acknowledged=True)
            _add_alert(connection, "float_exhausted|P2|-|2026-11-20", 2, acknowledged=False)
        _migrate(database_url, "head")
        with engine.begin() as connection:
            migrated = _alerts(connection)
            _add_alert(connection, "float_exhausted|P1|-|2026-11-20", 1, acknowledged=False)  # open again
        refused = []
        for key in ("float_exhausted|P1|-|2026-11-20", "float_exhausted|P2|-|2026-11-20"):
            try:
                with engine.begin() as connection:
                    _add_alert(connection, key, 1, acknowledged=False)  # a second open row
            except IntegrityError:
                refused.append(key)
        _migrate(database_url, "0033", down=True)
        with engine.connect() as connection:
            downgraded = _alerts(connection)
            rows = connection.execute(text("SELECT id, dedupe_key FROM alerts WHERE acknowledged_at IS NOT NULL")).all()
        _migrate(database_url, "head")
        with engine.begin() as connection:
            upgraded_again = _alerts(connection)
            connection.execute(text("DELETE FROM alerts"))
    finally:
        engine.dispose()
        _migrate(database_url, "head")
    assert migrated == {"float_exhausted|P1|-|2026-11-20": (3, True), "float_exhausted|P2|-|2026-11-20": (2, False)}
    assert refused == ["float_exhausted|P1|-|2026-11-20", "float_exhausted|P2|-|2026-11-20"]
    [(acknowledged_id, acknowledged_key)] = rows
    assert acknowledged_key == f"float_exhausted|P1|-|2026-11-20#{acknowledged_id}"
    assert downgraded == {acknowledged_key: (3, True), "float_exhausted|P1|-|2026-11-20": (1, False),
                          "float_exhausted|P2|-|2026-11-20": (2, False)}
    assert upgraded_again == downgraded


def test_0035_keeps_the_holidays_as_holidays_and_its_downgrade_drops_only_working_days(database_url):
    """Every day of the calendar before 0035 was a holiday and stays one; a make-up working day has no
    place before 0035, so the downgrade removes those and keeps the holidays."""
    engine = create_engine(normalise_url(database_url))
    _migrate(database_url, "0034", down=True)
    try:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO holidays (day, name) VALUES ('2026-10-01', 'National Day')"))
        _migrate(database_url, "head")
        with engine.begin() as connection:
            migrated = connection.execute(text("SELECT day, name, kind FROM holidays")).all()
            connection.execute(text("INSERT INTO holidays (day, name, kind) VALUES "
                                    "('2026-10-10', 'Make-up for National Day', 'working_day')"))
        _migrate(database_url, "0034", down=True)
        with engine.connect() as connection:
            downgraded = connection.execute(text("SELECT * FROM holidays")).mappings().all()
    finally:
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM holidays"))
        engine.dispose()
        _migrate(database_url, "head")
    assert [(str(day), name, kind) for day, name, kind in migrated] == [("2026-10-01", "National Day", "holiday")]
    assert [(str(row["day"]), row["name"], sorted(row)) for row in downgraded] == [
        ("2026-10-01", "National Day", ["day", "name"])]


def test_0036_records_the_origins_of_the_checkpoints_already_signed(database_url):
    """The checkpoints stored before 0036 are the network's history: their notes' origins (line 1), each
    from its first checkpoint's time, are the origins the network signed under."""
    engine = create_engine(normalise_url(database_url))
    _migrate(database_url, "0035", down=True)
    notes = [("pointsnet.local/ledger", "2026-11-20 02:00:00"), ("pointsnet.local/ledger", "2026-11-20 02:01:00"),
             ("points.example.com/ledger", "2026-11-21 08:00:00"), ("points.example.com/ledger", "2026-11-21 07:59:00")]
    try:
        with engine.begin() as connection:
            for size, (origin, at) in enumerate(notes):
                connection.execute(text("INSERT INTO checkpoints (tree_size, root_hash, created_at, note) "
                                        "VALUES (:size, :root, :at, :note)"), {
                    "size": size, "root": bytes(32), "at": at,
                    "note": f"{origin}\n{size}\nAAAA\ntimestamp x\n\n\u2014 {origin} c2ln\n"})
        _migrate(database_url, "head")
        with engine.connect() as connection:
            origins = connection.execute(text("SELECT origin, first_used_at FROM network_origins ORDER BY origin")).all()
    finally:
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM network_origins"))
            connection.execute(text("DELETE FROM checkpoints"))
        engine.dispose()
        _migrate(database_url, "head")
    assert [(origin, str(at)[:19]) for origin, at in origins] == [
        ("points.example.com/ledger", "2026-11-21 07:59:00"), ("pointsnet.local/ledger", "2026-11-20 02:00:00")]


def test_0044_credits_settled_floats_with_their_rounding(network, clock, database_url):
    """Settled cycles of a partner whose float is enforced get the rounding settlement now credits
    (the cycle's exact prepaid funding less its statement's rounded sum): one from the float, one
    wholly short (credited by bank); a partner without a float enforced gets nothing."""
    from shared.partners.limits import float_status, record_topup, set_limits
    from tests.factories import make_member, make_partner

    terms = dict(billing="prepaid", point_value="0.5", issuance_fee="0", redemption_fee_rate="0")
    floated, unfloated = (make_partner(network, name, **terms) for name in ("Floated", "Unfloated"))
    network.tx(lambda tx: set_limits(tx, floated, float_overdraft_minor=1_000))
    network.tx(lambda tx: record_topup(tx, floated, 300, "TOPUP-1"))
    member = make_member(network, floated, also_linked_to=(unfloated,))
    network.earn(floated, member, "f1", points=599)  # 299.5: statement 300, all from the float
    network.earn(unfloated, member, "u1", points=3)  # 1.5: statement 2, by bank
    clock.advance(days=1)
    network.earn(floated, member, "f2", points=777)  # 388.5: statement 388, all by bank
    clock.advance(days=1)
    network.settle_due()
    before = network.tx(lambda tx: float_status(tx, floated), readonly=True)["balance_micro"]
    settled = dict(network.tx(lambda tx: [
        ((str(d)[:10], party), int(rounding)) for d, party, rounding in tx.session.execute(text(
            "SELECT cycle_date, party, float_rounding_micro FROM settlements WHERE float_rounding_micro <> 0"))],
        readonly=True))
    network.db.engine.dispose()
    _migrate(database_url, "0043", down=True)
    try:
        _migrate(database_url, "head")
        engine = create_engine(normalise_url(database_url))
        try:
            with engine.connect() as connection:
                rows = {(str(d)[:10], party): int(rounding) for d, party, rounding in connection.execute(text(
                    "SELECT cycle_date, party, float_rounding_micro FROM settlements WHERE float_rounding_micro <> 0"))}
        finally:
            engine.dispose()
    finally:
        _migrate(database_url, "head")
    # signed: the statement took 0.5 more than the lines of the first cycle, 0.5 less of the second
    assert rows == settled == {("2026-11-20", floated): -500_000, ("2026-11-21", floated): 500_000}
    assert before == 0  # 300 topped up, 300 from the float, 388 by bank (credited): square


def _read(database_url, query: str) -> dict:
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as connection:
            return {(str(row[0])[:10], row[1]): tuple(int(v) for v in row[2:])
                    for row in connection.execute(text(query))}
    finally:
        engine.dispose()


def test_0044_and_0045_backfill_what_settlement_and_set_limits_write(network, clock, database_url):
    """Down to 0043 and up again gives what the code wrote: every settled cycle of a float enforced from
    the start has its rounding credit, also where the funding rounds to 0; a float enforced after a cycle
    was settled by bank gets the cycle it answers from and that cycle's lines as not the float's."""
    from shared.partners.limits import float_status, record_topup, set_limits
    from tests.factories import make_member, make_partner

    terms = dict(billing="prepaid", point_value="0.5", issuance_fee="0", redemption_fee_rate="0")
    early, later = (make_partner(network, name, **terms) for name in ("Early", "Later"))
    network.tx(lambda tx: set_limits(tx, early, float_overdraft_minor=1_000))
    network.tx(lambda tx: record_topup(tx, early, 300, "TOPUP-1"))
    member = make_member(network, early, also_linked_to=(later,))
    network.earn(early, member, "e1", points=1)  # 0.5: statement 0, credit +0.5
    network.earn(later, member, "l1", points=777)  # 388.5: by bank, no float yet
    clock.advance(days=1)
    network.earn(early, member, "e2", points=3)  # 1.5: statement 2, credit -0.5
    network.settle_due()
    network.tx(lambda tx: set_limits(tx, later, float_overdraft_minor=0))
    network.tx(lambda tx: record_topup(tx, later, 1_000, "TOPUP-2"))
    network.earn(later, member, "l2", points=100)  # 50: from the float
    clock.advance(days=1)
    network.reverse(early, "r1", "e2", points=1)  # -0.5: statement 0, credit -0.5
    clock.advance(days=1)
    network.settle_due()
    balances = {p: network.tx(lambda tx, p=p: float_status(tx, p), readonly=True)["balance_micro"]
                for p in (early, later)}
    assert balances == {early: 298 * 10**6, later: 950 * 10**6}  # 300 - (0 + 2 + 0); 1,000 - 50
    rounding = ("SELECT cycle_date, party, float_rounding_micro FROM settlements "
                "WHERE float_rounding_micro <> 0 ORDER BY cycle_date, party")
    opened = "SELECT float_opened_cycle, partner_id, float_opened_micro FROM partner_limits WHERE partner_id = '%s'"
    written = _read(database_url, rounding), _read(database_url, opened % later)
    assert written == ({("2026-11-20", early): (500_000,), ("2026-11-21", early): (-500_000,),
                        ("2026-11-22", early): (-500_000,)}, {("2026-11-21", later): (388_500_000,)})
    network.db.engine.dispose()
    _migrate(database_url, "0043", down=True)
    try:
        _migrate(database_url, "head")
        migrated = _read(database_url, rounding), _read(database_url, opened % later)
        after = {p: network.tx(lambda tx, p=p: float_status(tx, p), readonly=True)["balance_micro"]
                 for p in (early, later)}
    finally:
        _migrate(database_url, "head")
    assert migrated == written
    assert after == balances


def test_0047_gives_each_settlement_recorded_before_its_payment(network, clock, database_url):
    """A settlement paid or received before 0047 gets one payment: its whole by-bank amount, its bank
    reference and time (none where it has none). One recorded without a bank reference (by hand) gets
    none; one still due gets none, and a partial payment is recorded on it afterwards."""
    from datetime import date

    from shared.settlement.finance import record_payment
    from tests.factories import make_member, make_partner

    terms = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0")
    coffee, book, air, dine = (make_partner(network, name, **terms)
                               for name in ("CoffeeCo", "BookMart", "AirLink", "DineOut"))
    member = make_member(network, coffee, also_linked_to=(book, air, dine))
    network.earn(coffee, member, "c1", points=500)
    network.earn(air, member, "a1", points=100)
    network.earn(dine, member, "d1", points=50)
    network.burn(book, member, "b1", 300)
    clock.advance(days=1)
    cycle = date(2026, 11, 20)
    network.settle(cycle)
    network.tx(lambda tx: record_payment(tx, cycle, coffee, "OLD-1"))
    network.tx(lambda tx: record_payment(tx, cycle, book, "OLD-2"))
    network.db.engine.dispose()
    _migrate(database_url, "0046", down=True)
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.begin() as connection:  # recorded by hand, without a reference
            connection.execute(text("UPDATE settlements SET status = 'paid', recorded_at = NULL WHERE party = :p"),
                               {"p": air})
            connection.execute(text("UPDATE settlements SET recorded_at = NULL WHERE party = :p"), {"p": coffee})
        _migrate(database_url, "head")
        payments = _read(database_url, "SELECT cycle_date, party, amount_minor FROM settlement_payments")
        references = dict(network.tx(lambda tx: [tuple(r) for r in tx.session.execute(text(
            "SELECT bank_reference, recorded_at FROM settlement_payments ORDER BY bank_reference"))], readonly=True))
        network.tx(lambda tx: record_payment(tx, cycle, dine, "NEW-1", amount_minor=1))
        later = _read(database_url, "SELECT cycle_date, party, amount_minor FROM settlement_payments "
                                    "WHERE bank_reference = 'NEW-1'")
    finally:
        engine.dispose()
        _migrate(database_url, "head")
    assert payments == {("2026-11-20", coffee): (350,), ("2026-11-20", book): (300,)}  # 300 + a fee of 50
    assert set(references) == {"OLD-1", "OLD-2"}
    assert references["OLD-1"] is None and references["OLD-2"] is not None  # a time unknown stays unknown
    assert later == {("2026-11-20", dine): (1,)}


def test_0049_gives_settled_cycles_the_payment_date_their_settlements_recorded(network, clock, database_url):
    """A cycle settled before 0049 gets its settlements' payment date on its row; an open cycle gets none."""
    from datetime import date

    from tests.factories import make_member, make_partner

    coffee = make_partner(network, "CoffeeCo", billing="postpaid", point_value="1", issuance_fee="0.1",
                          redemption_fee_rate="0")
    network.earn(coffee, make_member(network, coffee), "c1", points=500)
    clock.advance(days=1)
    network.settle(date(2026, 11, 20))  # a Friday: paid on Monday the 23rd
    network.earn(coffee, make_member(network, coffee), "c2", points=5)  # the 21st, open
    network.db.engine.dispose()
    _migrate(database_url, "0048", down=True)
    _migrate(database_url, "head")
    kept = network.tx(lambda tx: {str(day)[:10]: value and str(value)[:10] for day, value in tx.session.execute(
        text("SELECT cycle_date, payment_date FROM cycles"))}, readonly=True)
    assert kept == {"2026-11-20": "2026-11-23", "2026-11-21": None}


def test_reading_the_schema_revision_on_sqlite_does_not_wait_for_the_write_lock(template_db, tmp_path):
    """Every command checks the schema's revision first: on the embedded database that read took the write
    lock (BEGIN IMMEDIATE, as a writer), so a read-only command (``members show``, ``members export``)
    waited behind a busy ``serve`` for up to the 60 s busy timeout. Found by the export's tests."""
    import shutil
    import sqlite3
    import threading

    from shared.db.migrate import current_revision

    if not str(template_db).endswith(".db"):
        pytest.skip("the embedded database's write lock")
    path = tmp_path / "busy.db"
    shutil.copyfile(template_db, path)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a writer holds the lock while the command starts
    read, answer = threading.Event(), {}

    def check() -> None:
        answer["revision"] = current_revision(f"sqlite:///{path}")
        read.set()

    reader = threading.Thread(target=check, daemon=True)
    reader.start()
    released_by_timeout = not read.wait(30)  # before: read only once the writer let go
    writer.execute("ROLLBACK")
    writer.close()
    reader.join(70)
    assert not released_by_timeout, "the revision was read only once the writer let go of its lock"
    assert answer["revision"] == ScriptDirectory.from_config(alembic_config(f"sqlite:///{path}")).get_current_head()


def test_0050_downgrade_folds_a_carry_of_one_and_stops_on_larger_ones(network, clock, database_url):
    """0050 keeps a cycle's purchase amounts as carry × 2^62 + minor. Going back folds a carry of 1 into
    minor (2^62 + minor fits a BIGINT); a larger carry cannot be held by the older form, so the downgrade
    stops, naming the cycle, nothing changed."""
    from datetime import date

    from shared.db.migrate import MigrationStopped
    from shared.ledger.events import Event
    from tests.factories import make_member, make_partner

    coffee = make_partner(network, "CoffeeCo")
    member = make_member(network, coffee)

    def big_earns(tag: str, count: int) -> None:
        events = [Event("earn", f"{tag}-{n}", member, amount=10**15, points=1) for n in range(count)]
        assert all(not isinstance(outcome, Exception) for outcome in network.post(coffee, events))

    big_earns("a", 5_000)  # 5 × 10^18: carry 1
    clock.advance(days=1)
    network.settle(date(2026, 11, 20))
    network.db.engine.dispose()
    _migrate(database_url, "0049", down=True)
    folded = network.tx(lambda tx: tx.session.execute(text(
        "SELECT purchase_amount_minor FROM report_cycle_earns")).scalar_one(), readonly=True)
    assert int(folded) == 5_000 * 10**15
    network.db.engine.dispose()
    _migrate(database_url, "head")
    big_earns("b", 9_300)  # 9.3 × 10^18 in one cycle: carry 2
    clock.advance(days=1)
    network.settle(date(2026, 11, 21))
    network.db.engine.dispose()
    with pytest.raises(MigrationStopped) as stopped:
        _migrate(database_url, "0049", down=True)
    assert "2026-11-21" in str(stopped.value) and "2026-11-20" not in str(stopped.value)
    kept = network.tx(lambda tx: dict(tx.session.execute(text(
        "SELECT purchase_amount_carry, purchase_amount_minor FROM report_cycle_earns")).all()), readonly=True)
    assert kept == {0: 5_000 * 10**15, 2: 9_300 * 10**15 - 2 * 2**62}
