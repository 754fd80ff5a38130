"""Which addresses a webhook may be sent to: public unicast only, IPv6 transition forms included.

An IPv6 address can carry an IPv4 address inside it, and a packet to it can end up at that IPv4
address: IPv4-mapped (``::ffff:0:0/96``), IPv4-compatible and -translated (``::/96``,
``::ffff:0:0:0/96``), 6to4 (``2002::/16``), Teredo (``2001::/32``) and NAT64 (``64:ff9b::/96``,
``64:ff9b:1::/48``). Such an address is public only if every IPv4 address it carries is public too;
a Teredo or NAT64 address never is (where it leads depends on a relay or translator).
"""

from __future__ import annotations

import ipaddress

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
TEREDO = ipaddress.ip_network("2001::/32")
LOW_96 = ipaddress.ip_network("::/96")  # IPv4-compatible (deprecated): ::a.b.c.d
TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # IPv4-translated (SIIT): ::ffff:0:a.b.c.d
# Special-purpose blocks that Python's ``is_global`` (3.11) still calls global, none of them a place a
# partner's webhook lives: IETF protocol assignments (192.0.0.8, the IPv4 dummy address, among them),
# the deprecated 6to4 relay anycast, IPv6 site-local (deprecated, routed inside a site) and the IPv6
# documentation prefix of RFC 9637.
NOT_GLOBAL = tuple(ipaddress.ip_network(net) for net in (
    "192.0.0.0/24", "192.88.99.0/24", "fec0::/10", "3fff::/20"))


def parse(text: str) -> Address:
    """An address as ``getaddrinfo`` or a URL gives it (brackets and an IPv6 zone are dropped)."""
    return ipaddress.ip_address(text.strip("[]").split("%")[0])


def embedded_ipv4(address: Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (none for an IPv4 address or plain IPv6)."""
    if address.version == 4:
        return []
    found = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)  # (server, client): the client's is where the packets go
    if any(address in net for net in (*NAT64, LOW_96, TRANSLATED)):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _public(address: Address) -> bool:
    return not (address.is_private or address.is_loopback or address.is_link_local or address.is_reserved
                or address.is_multicast or address.is_unspecified or not address.is_global
                or any(address in net for net in NOT_GLOBAL if net.version == address.version))


def is_public(address: Address) -> bool:
    """A public unicast address, and so is every IPv4 address it carries. An IPv4-mapped address
    is judged by its IPv4 address alone (it is that address); a Teredo or NAT64 address is never
    public."""
    if address.version == 6 and address.ipv4_mapped is not None:
        return _public(address.ipv4_mapped)
    if address.version == 6 and any(address in net for net in (*NAT64, TEREDO)):
        return False
    return _public(address) and all(_public(inner) for inner in embedded_ipv4(address))


def first_non_public(addresses: list[Address]) -> Address | None:
    """The first address that is not public, if any."""
    return next((address for address in addresses if not is_public(address)), None)
