"""Reports as the services ask for them: built in one read-only unit of work, rendered in a format."""

from __future__ import annotations

from shared.network import Network
from shared.reports.network import network_report
from shared.reports.partner import partner_report
from shared.reports.period import Period
from shared.reports.render import FORMATS, render

__all__ = ["FORMATS", "partner_document", "network_document", "build_partner", "build_network"]


def build_partner(network: Network, partner_id: str, period: Period) -> dict:
    return network.tx(lambda tx: partner_report(tx, partner_id, period), readonly=True)


def build_network(network: Network, period: Period) -> dict:
    return network.tx(lambda tx: network_report(tx, period), readonly=True)


def partner_document(network: Network, partner_id: str, period: Period, fmt: str) -> str:
    return render(build_partner(network, partner_id, period), fmt, network.settings.locale)


def network_document(network: Network, period: Period, fmt: str) -> str:
    return render(build_network(network, period), fmt, network.settings.locale)
