"""A demo coalition: partners with contracts, a few hundred members and weeks of activity.

Everything is posted through the same ledger calls partners use, at simulated past
times, so the demo network is a real one: ``pointsnet verify`` passes on it.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import shlex
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from shared.clock import FixedClock
from shared.errors import PointsnetError
from shared.ledger.events import Event
from shared.models import MemberLink, NetworkSetting, Partner, SettlementRun
from shared.money import currency_exponent
from shared.network import Network
from shared.partners.contracts import ContractTerms
from shared.partners.keys import add_key
from shared.rules.store import set_rules
from shared.sdk import PointsnetAPIError, PointsnetClient
from shared.signing import load_private_key, private_key_pem, public_key_pem

log = logging.getLogger("pointsnet.demo")

PARTNERS = {
    "CoffeeCo": ContractTerms("postpaid", 1, "0.1", "0.05", "0", 1),
    "AirLink": ContractTerms("prepaid", 1, "0.1", "0.03", "0.3", 2),
    "BookMart": ContractTerms("postpaid", 1, "0.05", "0.05", "0", 1),
    "CityMart": ContractTerms("postpaid", 1, "0.08", "0.04", "0", 1),
    "CineMax": ContractTerms("prepaid", "1.2", "0.1", "0.05", "0.25", 1),
}


COFFEE_RULES = """
base_rate: 1
categories: {{beans: 2}}
campaigns:
  - {{id: double-weekend, name: Double points weekend, starts_on: {start}, ends_on: {end}, weekdays: [6, 7],
     multiplier: 2, per_member_cap: 2000}}
"""
NETWORK_RULES = """
campaigns:
  - {{id: city-card-day, name: City card day, starts_on: {start}, ends_on: {end}, weekdays: [3], bonus_points: 20,
     funded_by: network, per_member_cap: 200}}
"""


# The seed's last step writes this row (network_settings, a name and a value): demo partners without it
# are a seed that stopped part way (Ctrl-C), never a demo to serve.
SEEDED = "demo_seeded"


def purchase(rng: random.Random, low: int, high: int, currency: str) -> int:
    """A purchase's amount in ``currency``'s minor units: ``low``–``high`` hundredths of its major unit
    (the demo's figures are written for a currency of two decimals), so that a JPY or KWD demo buys as
    much, and earns as many points, as a CNY one."""
    hundredths = rng.randint(low, high)
    exponent = currency_exponent(currency)
    return hundredths * 10 ** (exponent - 2) if exponent >= 2 else max(1, hundredths // 10 ** (2 - exponent))


def demo_state(network: Network) -> str:
    """``absent`` (no partner at all), ``seeded`` (the seed ran to its end), ``interrupted`` (demo
    partners and their keys file, but the seed never wrote its last row) or ``foreign``: a network that is
    not the demo's — a partner of its own, or partners without the demo's keys file in the data directory
    (an operator's network whose partner is called CoffeeCo, as the docs' examples call one), which
    ``serve --demo`` must neither seed into nor give demo logins. A demo seeded by a release before that
    row, and served since, is seeded: the seed settles nothing, so a settled cycle means the demo was
    served."""
    def read(tx) -> str:
        names = set(tx.session.scalars(select(Partner.name)))
        if not names:
            return "absent"
        if tx.session.execute(select(NetworkSetting.name).where(NetworkSetting.name == SEEDED)).first():
            return "seeded"
        if names - PARTNERS.keys() or "CoffeeCo" not in names or not _keys_file(network).exists():
            return "foreign"
        served = tx.session.execute(select(SettlementRun.cycle_date).limit(1)).first()
        return "seeded" if served is not None else "interrupted"

    return network.tx(read, readonly=True)


def _mark_seeded(tx, counts: dict) -> None:
    tx.session.add(NetworkSetting(name=SEEDED, value=json.dumps(counts, separators=(",", ":")), set_at=tx.now))


def seed(network: Network, *, members: int = 300, days: int = 42, seed: int = 7,
         progress: Callable[[int, int], None] | None = None) -> dict:
    """Seed the demo coalition at simulated past times ending now. Returns counts."""
    rng = random.Random(seed)
    end = datetime.now(timezone.utc).replace(microsecond=0)
    clock = FixedClock(end - timedelta(days=days + 1))
    sim = Network(network.settings, database_url=network.db.url, clock=clock, pool_size=2)
    sim.keyring = network.keyring
    try:
        partners = {name: sim.create_partner(name, terms)["partner_id"] for name, terms in PARTNERS.items()}
        ids = list(partners.values())
        _demo_keys(sim, partners)
        sim.tx(lambda tx: set_rules(tx, partners["CoffeeCo"], COFFEE_RULES.format(
            start=(end - timedelta(days=days + 1)).date(), end=(end + timedelta(days=365)).date())))
        sim.tx(lambda tx: set_rules(tx, "network", NETWORK_RULES.format(
            start=(end - timedelta(days=days + 1)).date(), end=(end + timedelta(days=365)).date())))
        linked: dict[str, list[str]] = {pid: [] for pid in ids}
        member_ids = []
        for n in range(members):
            clock.advance(seconds=37)
            home = rng.choice(ids)
            phone = f"+86138{n:08d}"
            email = f"member{n}@example.com" if rng.random() < 0.6 else None
            member_id = sim.enrol(home, phone=phone, email=email, name=f"Demo Member {n}",
                                  customer_ref=f"C{n:05d}")["member_id"]
            linked[home].append(member_id)
            member_ids.append(member_id)
            for other in rng.sample([p for p in ids if p != home], k=rng.choice([0, 0, 1, 2])):
                token = sim.mint_link_token(home, member_id)["link_token"]
                sim.enrol(other, link_token=token)
                linked[other].append(member_id)
        counts = {"partners": len(ids), "members": members, "events": 0, "refused": 0, "holds": 0}
        currency = network.settings.currency
        ref = 0
        for day in range(days):
            clock.set(end - timedelta(days=days - day, hours=-2))
            for partner_id in ids:
                events = []
                for _ in range(rng.randint(8, 25)):
                    ref += 1
                    member_id = rng.choice(linked[partner_id])
                    if rng.random() < 0.72:
                        events.append(Event("earn", f"R{ref}", member_id, amount=purchase(rng, 800, 60000, currency)))
                    else:
                        events.append(Event("burn", f"R{ref}", member_id, points=rng.choice([50, 100, 200, 300])))
                clock.advance(minutes=rng.randint(5, 40))
                outcomes = sim.post(partner_id, events)
                counts["events"] += len(events)
                counts["refused"] += sum(isinstance(o, PointsnetError) for o in outcomes)
                done = [(e, o) for e, o in zip(events, outcomes) if not isinstance(o, PointsnetError)]
                for event, outcome in done[:2]:
                    if rng.random() < 0.3:
                        ref += 1
                        points = max(1, outcome["points"] // 2)
                        try:
                            sim.reverse(partner_id, f"R{ref}", event.reference, points)
                        except PointsnetError:
                            counts["refused"] += 1
                counts["holds"] += _holds(sim, clock, rng, partner_id, linked[partner_id], f"D{day}")
            sim.expire_holds()
            if progress:
                progress(day + 1, days)
        clock.set(end)
        sim.expire_holds()
        sim.expire_lots()
        sim.tx(lambda tx: _mark_seeded(tx, counts))  # the last step: the demo is whole
        return counts
    finally:
        sim.close()


def _holds(sim: Network, clock: FixedClock, rng: random.Random, partner_id: str, members: list[str],
           tag: str) -> int:
    made = 0
    for n in range(rng.randint(0, 2)):
        member_id = rng.choice(members)
        try:
            hold = sim.hold(partner_id, member_id, f"H{tag}-{partner_id[-4:]}-{n}", rng.choice([100, 150, 250]))
        except PointsnetError:
            continue
        made += 1
        clock.advance(minutes=3)
        roll = rng.random()
        if roll < 0.6:
            sim.capture(partner_id, hold["hold_id"], max(1, hold["points"] - rng.choice([0, 0, 50])),
                        reference=f"C{tag}-{partner_id[-4:]}-{n}")
        elif roll < 0.85:
            sim.void(partner_id, hold["hold_id"])
        # otherwise the hold times out and the job releases it
    return made


def _keys_file(network: Network) -> Path:
    return network.settings.data_dir / "keys" / "demo-partners.json"


def partner_key_file(network: Network, name: str) -> Path:
    """The demo partner's private key alone, a PEM file for ``pointsnet partner-call --key-file``."""
    return _keys_file(network).with_name(f"demo-{name.lower()}.pem")


def _write_owner_only(path: Path, text: str) -> None:
    """``text`` in ``path``, readable by its owner only, whole or not at all (a private file beside
    it, renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


def _demo_keys(network: Network, partners: dict[str, str]) -> None:
    """Give each demo partner a signing key, kept in the data directory (demo only): all of them in
    one JSON file, and each in a PEM file of its own."""
    keys = {}
    for name, partner_id in partners.items():
        private = Ed25519PrivateKey.generate()
        key_id = network.tx(lambda tx: add_key(tx, partner_id, public_key_pem(private.public_key()).decode()))["key_id"]
        keys[partner_id] = {"name": name, "key_id": key_id, "private_key": private_key_pem(private).decode()}
        _write_owner_only(partner_key_file(network, name), keys[partner_id]["private_key"])
    _write_owner_only(_keys_file(network), json.dumps(keys, indent=2))


def partner_call_line(network: Network, base_url: str, name: str = "CoffeeCo") -> str | None:
    """A ready-to-run ``pointsnet partner-call`` as the demo partner ``name`` (its PEM file written
    if a demo seeded before there were PEM files lacks it); None without the demo's keys."""
    path = _keys_file(network)
    keys = json.loads(path.read_text()) if path.exists() else {}
    entry = next((entry for entry in keys.values() if entry["name"] == name), None)
    if entry is None:
        return None
    pem = partner_key_file(network, name)
    if not pem.exists():
        _write_owner_only(pem, entry["private_key"])
    return (f"pointsnet partner-call GET /v1/transactions --key-file {shlex.quote(str(pem))} "
            f"--key-id {entry['key_id']} --url {shlex.quote(base_url)}")


class LiveTraffic:
    """A trickle of real-time earns, burns and holds, sent as the demo partners would: signed, through the API."""

    def __init__(self, network: Network, base_url: str, seed: int = 11):
        self.network = network
        self.base_url = base_url
        self.rng = random.Random(seed)
        self.count = 0
        self.clients: dict[str, PointsnetClient] = {}
        self.stopped = False

    def _client(self, partner_id: str) -> PointsnetClient | None:
        if partner_id not in self.clients:
            keys = json.loads(_keys_file(self.network).read_text()) if _keys_file(self.network).exists() else {}
            if partner_id not in keys:
                return None
            entry = keys[partner_id]
            # no retries: the server this process runs is the only one asked, and one that is not
            # answering is stopping (Ctrl-C); the next round, five seconds on, asks again
            self.clients[partner_id] = PointsnetClient(self.base_url, entry["key_id"],
                                                       load_private_key(entry["private_key"].encode()), retries=0)
        return self.clients[partner_id]

    def __call__(self) -> int:
        if self.stopped:
            return 0
        links = self.network.tx(lambda tx: tx.session.execute(
            select(MemberLink.partner_id, MemberLink.member_id)).all(), readonly=True)
        if not links:
            return 0
        posted = 0
        for _ in range(self.rng.randint(1, 4)):
            partner_id, member_id = self.rng.choice(links)
            client = self._client(partner_id)
            if client is None:
                continue
            self.count += 1
            reference = f"live-{datetime.now(timezone.utc):%Y%m%d%H%M%S}-{self.count}-{self.rng.randint(0, 10**6)}"
            try:
                roll = self.rng.random()
                if roll < 0.7:
                    client.earn(member_id, reference,
                                amount=purchase(self.rng, 500, 30000, self.network.settings.currency))
                elif roll < 0.9:
                    client.burn(member_id, reference, self.rng.choice([50, 100]))
                else:
                    held = client.hold(member_id, reference, 100)
                    client.capture(held["hold_id"], 80, reference=reference + "-c")
                posted += 1
            except PointsnetAPIError:
                pass
            except httpx.TransportError as exc:  # the server is stopping, or not up yet: this round ends
                log.info("demo traffic paused: no answer from %s (%s)", self.base_url, type(exc).__name__)
                break
            except httpx.InvalidURL as exc:  # an address the client cannot sign for: said once, not every round
                log.warning("demo traffic stopped: the partner SDK cannot call %s (%s)", self.base_url, exc)
                self.stopped = True
                break
        return posted
