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


def verify_ok(network: Network) -> None:
    """Assert that every ledger invariant holds over the whole database."""
    from shared.ledger.verify import verify

    report = network.tx(verify, readonly=True)
    assert report.ok, "\n".join(f"{o.check}: {o.subject}: {o.detail}" for o in report.offences)
