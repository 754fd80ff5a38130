"""A suspended partner is refused at the door (its earlier entries still settle)."""


def test_suspended_partner_is_refused(partner_factory, network):
    from sqlalchemy import update

    from shared.models import Partner as PartnerRow

    shop = partner_factory()
    network.tx(lambda tx: tx.session.execute(update(PartnerRow).where(PartnerRow.id == shop.partner_id)
                                             .values(status="suspended")))
    response = shop.call("GET", "/v1/transactions")
    assert response.status_code == 403 and response.json()["code"] == "partner_suspended"
