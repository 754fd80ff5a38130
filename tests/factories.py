"""Plain factory functions for tests, one per domain object."""

from __future__ import annotations

import itertools

from shared.network import Network
from shared.partners.contracts import ContractTerms

_phones = itertools.count(10000000)


def make_partner(network: Network, name: str | None = None, **terms) -> str:
    name = name or f"Partner {next(_phones)}"
    return network.create_partner(name, ContractTerms(**terms))["partner_id"]


def make_member(network: Network, partner_id: str, *, phone: str | None = None, email: str | None = None,
                also_linked_to: tuple[str, ...] = ()) -> str:
    phone = phone or f"+86139{next(_phones):08d}"
    member_id = network.enrol(partner_id, phone=phone, email=email)["member_id"]
    for other in also_linked_to:
        token = network.mint_link_token(partner_id, member_id)["link_token"]
        network.enrol(other, link_token=token)
    return member_id


def journal_workout(network: Network, issuer: str, spender: str, member: str) -> None:
    """Every kind of row the journal writes: earns (one by amount), a burn across two lots, a hold
    captured in part, a reversal, and a batch of earns."""
    from shared.ledger.events import Event

    network.earn(issuer, member, "e1", points=300)
    network.earn(issuer, member, "e2", amount=20000, currency="CNY")
    network.burn(spender, member, "b1", 350)  # across both lots: consumptions, redemption lines
    hold = network.hold(spender, member, "h1", 100)
    network.capture(spender, hold["hold_id"], 60)
    network.reverse(spender, "r1", "b1", 50)
    outcomes = network.post(issuer, [Event(kind="earn", reference=f"batch-{n}", member_id=member, points=10 + n)
                                     for n in range(5)])
    assert all(isinstance(outcome, dict) for outcome in outcomes)


def verify_ok(network: Network) -> None:
    """Assert that every ledger invariant holds over the whole database."""
    from shared.ledger.verify import verify

    report = network.tx(verify, readonly=True)
    assert report.ok, "\n".join(f"{o.check}: {o.subject}: {o.detail}" for o in report.offences)
