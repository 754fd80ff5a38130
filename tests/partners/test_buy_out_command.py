"""``pointsnet partners terminate P --buy-out-rate R`` on PostgreSQL (found by the finance month-end review):
the points a lot can still be redeemed for came back from PostgreSQL as a NUMERIC (a CASE whose other
branch is a SUM), so the buy-out's figures were Decimals: the command committed the buy-out, then failed
to print its answer (exit 1, "Object of type Decimal is not JSON serializable") and an operator who tried
again with another rate was refused. The termination's figures are integers on either database."""

from __future__ import annotations

import json

from sqlalchemy import select

from shared.models import Entry
from shared.partners.lifecycle import terminate
from tests.cli.inprocess import pointsnet
from tests.factories import make_member, make_partner, verify_ok

POSTPAID = dict(billing="postpaid", point_value="1", issuance_fee="0.1", redemption_fee_rate="0.05")


def test_a_buy_out_from_the_command_line_answers_its_figures(network, clock, database_url, settings):
    leaving, staying = make_partner(network, "Leaving", **POSTPAID), make_partner(network, "Staying", **POSTPAID)
    member = make_member(network, leaving, also_linked_to=(staying,))
    network.earn(leaving, member, "e1", points=250)
    network.earn(leaving, member, "e2", points=30)
    network.burn(staying, member, "b1", 40)
    done = pointsnet("partners", "terminate", leaving, "--buy-out-rate", "0.8", env={
        "POINTSNET_DATA_DIR": str(settings.data_dir), "POINTSNET_DATABASE_URL": database_url,
        "POINTSNET_CLOCK": clock.now().isoformat().replace("+00:00", "Z")})
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["outstanding_points_at_termination"] == 240 and answer["recorded"] is True, answer
    bought = network.tx(lambda tx: tx.session.execute(
        select(Entry.points).where(Entry.kind == "adjustment", Entry.partner_id == leaving)).scalar_one(),
        readonly=True)
    assert bought == 240
    verify_ok(network)


def test_the_terminations_figures_are_integers(network):
    leaving = make_partner(network, "Leaving", **POSTPAID)
    network.earn(leaving, make_member(network, leaving), "e1", points=250)
    answer = network.tx(lambda tx: terminate(tx, leaving, settlement="buy_out", buy_out_rate_ppm=800_000))
    assert type(answer["outstanding_points_at_termination"]) is int, answer
