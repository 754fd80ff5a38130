"""A suspended partner's writes are refused at the door (its earlier entries still settle)."""


def test_suspended_partner_is_refused(partner_factory, network):
    from sqlalchemy import update

    from shared.models import Partner as PartnerRow

    shop = partner_factory()
    network.tx(lambda tx: tx.session.execute(update(PartnerRow).where(PartnerRow.id == shop.partner_id)
                                             .values(status="suspended")))
    response = shop.call("POST", "/v1/earn", {"member_id": "mem_x", "reference": "r1", "points": 5})
    assert response.status_code == 403 and response.json()["code"] == "partner_suspended"


def test_a_terminated_partner_is_refused_with_its_own_code(partner_factory, network):
    from shared.partners.lifecycle import terminate

    shop = partner_factory()
    network.tx(lambda tx: terminate(tx, shop.partner_id))
    response = shop.call("POST", "/v1/earn", {"member_id": "mem_x", "reference": "r1", "points": 5})
    assert response.status_code == 403 and response.json()["code"] == "partner_terminated"


def test_issuance_beyond_a_prepaid_float_is_a_409_problem_and_the_retry_after_a_top_up_posts(partner_factory,
                                                                                            network):
    from shared.partners.limits import record_topup, set_limits

    shop = partner_factory(billing="prepaid", point_value="1")
    network.tx(lambda tx: set_limits(tx, shop.partner_id, float_overdraft_minor=0))
    member = shop.enrol(phone="+8613900001111")
    body = {"member_id": member, "reference": "till-1", "points": 50}
    refused = shop.call("POST", "/v1/earn", body, idempotency_key="k-1")
    assert refused.status_code == 409 and refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "float_exhausted"
    network.tx(lambda tx: record_topup(tx, shop.partner_id, 50, "BANK-1"))
    posted = shop.call("POST", "/v1/earn", body, idempotency_key="k-2")
    assert posted.status_code in (200, 201), posted.text
    assert posted.json()["points"] == 50
