"""A spend's paged read of a member's lots against reading every open lot, as spends did before.

Two SQLite databases get the same random history of mixed batches (earns, burns, holds, captures,
voids, reversals of every kind, reversals aimed at a member's earliest lots, clock jumps past expiry,
the expiry and hold-timeout jobs, adjustments, merges), one reading every open lot of a spender and
one reading pages of one to six lots. Ids are made deterministic, so every outcome and every row of
the two ledgers must be identical. (The PostgreSQL query is checked by test_spendable_lots.py.)"""

from __future__ import annotations

import os
import random
import shutil
import types
from pathlib import Path

import pytest
from sqlalchemy import text

from shared.clock import FixedClock
from shared.config import Settings
from shared.db import types as dbtypes
from shared.errors import PointsnetError
from shared.ledger import posting, state
from shared.ledger.adjustments import adjust_member
from shared.ledger.events import Event
from shared.ledger.state import load_lots
from shared.programme.merge import merge_members
from tests.conftest import PG_URL, START
from tests.factories import make_member, make_partner

real_load_spendable = state.load_spendable


def old_load_spendable(tx, needs, now):
    return load_lots(tx, member_ids=needs), {}


class Ids:
    def __init__(self):
        self.n = 0

    def urandom(self, k):
        self.n += 1
        return self.n.to_bytes(k, "big")


TABLES = ("lots", "entries", "lot_consumptions", "members", "holds", "hold_lots",
          "transfers", "obligation_lines", "member_tier_history")


def dump(net):
    def read(tx):
        out = {}
        for t in TABLES:
            cols = "id, status, available, held, tier, tier_since, tier_anniversary_at, merged_into" if t == "members" else "*"
            rows = tx.session.execute(text(f"SELECT {cols} FROM {t}")).all()
            out[t] = sorted(tuple(str(v) for v in r) for r in rows)
        return out
    return net.tx(read, readonly=True)


def norm(outcome):
    if isinstance(outcome, PointsnetError):
        return (type(outcome).__name__, str(outcome), outcome.extra)
    return outcome


def run_history(template_db, tmp_path, monkeypatch, seed, page, steps=60, profile=0, configure=None, batch=(1, 7)):
    """``configure(monkeypatch, mode)``, when given, sets up each side ("old", "new") instead of the
    full and paged reads of lots; ``batch``: how many events a random batch holds (at least, at most);
    ``profile`` 3: burns are reversed, in part or whole, later in their own batch."""
    rnd = random.Random(seed)
    ids = Ids()
    clock = FixedClock(START)
    monkeypatch.setattr(dbtypes, "os", types.SimpleNamespace(urandom=ids.urandom))
    monkeypatch.setattr(dbtypes, "_last", [0, -1])  # ids count up within a millisecond: from a known start
    monkeypatch.setattr(dbtypes, "time", types.SimpleNamespace(time_ns=lambda: int(clock.now().timestamp() * 1e9)))
    settings = Settings(data_dir=Path(tmp_path) / "data", expiry_policy="days:20", webhook_allow_private_targets=True)
    nets = {}
    from shared.network import Network
    for mode in ("old", "new"):
        path = tmp_path / f"{mode}.db"
        shutil.copyfile(template_db, path)
        url = f"sqlite:///{path}"
        nets[mode] = Network(settings, database_url=url, clock=clock, pool_size=2)

    def both(fn):
        base, last = ids.n, list(dbtypes._last)
        got = {}
        for mode in ("old", "new"):
            ids.n = base
            dbtypes._last[:] = last
            if configure is not None:
                monkeypatch.setattr(state, "PAGE", page)
                configure(monkeypatch, mode)
            elif mode == "old":
                monkeypatch.setattr(posting, "load_spendable", old_load_spendable)
            else:
                monkeypatch.setattr(posting, "load_spendable", real_load_spendable)
                monkeypatch.setattr(state, "PAGE", page)
            try:
                got[mode] = ("ok", fn(nets[mode]))
            except PointsnetError as error:
                got[mode] = ("err", norm(error))
        return got

    try:
        setup = both(lambda net: ([make_partner(net, "P0"), make_partner(net, "P1", billing="prepaid")]))
        partners = setup["new"][1]
        members = both(lambda net: [make_member(net, partners[0], phone=f"+8613900000{i:03d}",
                                                also_linked_to=(partners[1],)) for i in range(3)])["new"][1]
        refs = {"earn": [], "burn": [], "capture": []}
        holds = []
        earn_owner = []
        counter = iter(range(10**9))
        log = []
        for step in range(steps):
            choice = rnd.random()
            if choice < 0.15:
                clock.advance(minutes=rnd.choice([1, 10, 60 * 24, 60 * 24 * 5, 60 * 24 * 12]))
                log.append(("advance", clock.now()))
                continue
            if choice < 0.2:
                lots_job = rnd.random() < 0.5
                got = both(lambda net: net.expire_lots() if lots_job else net.expire_holds())
                assert got["old"] == got["new"]
                continue
            if choice < 0.23:
                m = rnd.choice(members)
                pts = rnd.choice([5, 30, -5, -30])
                got = both(lambda net: net.tx(lambda tx: adjust_member(tx, m, pts, reason="r")))
                assert got["old"] == got["new"], got
                continue
            if choice < 0.24 and len(members) > 2:
                survivor, duplicate = rnd.sample(members, 2)
                got = both(lambda net: net.tx(lambda tx: merge_members(tx, survivor, duplicate)))
                assert got["old"] == got["new"], got
                log.append(("merge", survivor, duplicate))
                continue
            p = rnd.choice(partners)
            events = []
            if profile == 2 and rnd.random() < 0.6:
                # a member's earliest earns reversed, then small spends: the page no longer covers them
                m = rnd.choice(members)
                mine = nets["new"].tx(lambda tx: [r for (r,) in tx.session.execute(text(
                    "SELECT e.reference FROM lots l JOIN entries e ON e.id = l.entry_id WHERE l.member_id = :m "
                    "AND l.remaining > l.reserved AND e.kind = 'earn' AND e.partner_id = :p "
                    "ORDER BY l.expires_at, l.issued_at, l.id"), {"m": m, "p": p})], readonly=True)
                for r in mine[:rnd.randint(0, 4)]:
                    events.append(Event(kind="reversal", reference=f"r{next(counter)}", original_reference=r,
                                        points=rnd.choice([None, 1])))
                if rnd.random() < 0.3:
                    ref = f"r{next(counter)}"
                    events.append(Event(kind="earn", reference=ref, member_id=m, points=rnd.randint(1, 3)))
                    refs["earn"].append((p, ref)); earn_owner.append((p, ref, m))
                for _ in range(rnd.randint(1, 3)):
                    ref = f"r{next(counter)}"
                    kind = rnd.choice(["burn", "burn", "hold"])
                    events.append(Event(kind=kind, reference=ref, member_id=m, points=rnd.randint(1, 2)))
                    if kind == "burn":
                        refs["burn"].append((p, ref))
                rnd.shuffle(events) if rnd.random() < 0.3 else None
            this_batch: list[str] = []  # profile 3: the batch's burns so far
            for _ in range(0 if events else rnd.randint(*batch)):
                kind = rnd.choices(["earn", "burn", "hold", "capture", "void", "reversal"], [5, 4, 2, 2, 1, 3] if profile == 0 else [6, 4, 2, 2, 1, 5])[0]
                m = rnd.choice(members)
                ref = f"r{next(counter)}"
                if kind == "earn":
                    events.append(Event(kind="earn", reference=ref, member_id=m, points=rnd.randint(1, 20 if profile == 0 else 3)))
                    refs["earn"].append((p, ref)); earn_owner.append((p, ref, m))
                elif kind in ("burn", "hold"):
                    bal = nets["new"].balance(m)["available"]
                    pts = max(1, rnd.choice([bal, bal + 1, bal // 2, bal // 3, rnd.randint(1, 40), 1] if profile == 0
                                           else [rnd.randint(1, 8), rnd.randint(1, 8), bal // 4, bal + 1]))
                    events.append(Event(kind=kind, reference=ref, member_id=m, points=pts))
                    if kind == "burn":
                        refs["burn"].append((p, ref))
                    if kind == "burn" and profile == 3:
                        this_batch.append(ref)
                    if profile == 3 and len(this_batch) > 1 and rnd.random() < 0.3:  # points back in this unit
                        events.append(Event(kind="reversal", reference=f"r{next(counter)}",
                                            original_reference=rnd.choice(this_batch[:-1]), points=rnd.choice([None, 1])))
                elif kind in ("capture", "void"):
                    mine = [h for h in holds if h[0] == p]
                    if not mine:
                        continue
                    _, hold_id, pts = rnd.choice(mine)
                    if kind == "capture":
                        events.append(Event(kind="capture", reference=ref, hold_id=hold_id,
                                            points=rnd.choice([None, max(1, pts // 2)])))
                        refs["capture"].append((p, ref))
                    else:
                        events.append(Event(kind="void", reference=ref, hold_id=hold_id))
                else:
                    pool = [r for k in ("earn", "burn", "capture") for (pp, r) in refs[k] if pp == p]
                    if not pool:
                        continue
                    events.append(Event(kind="reversal", reference=ref, original_reference=rnd.choice(pool),
                                        points=rnd.choice([None, None, rnd.randint(1, 15)])))
            if not events:
                continue
            got = both(lambda net: [norm(o) for o in net.post(p, events)])
            log.append((p, events))
            assert got["old"] == got["new"], (seed, page, step, events, got)
            for event_, outcome in zip(events, got["new"][1]):
                if event_.kind == "hold" and isinstance(outcome, dict):
                    holds.append((p, outcome["hold_id"], event_.points))
        d_old, d_new = dump(nets["old"]), dump(nets["new"])
        for t in TABLES:
            assert d_old[t] == d_new[t], (seed, page, t)
    finally:
        for net in nets.values():
            net.close()


@pytest.mark.skipif(bool(PG_URL), reason="two SQLite databases side by side; runs in the SQLite pass")
@pytest.mark.parametrize("seed", range(int(os.environ.get("POINTSNET_DIFFERENTIAL_SEEDS", "12"))))
def test_paged_spend_equals_full_read(template_db, tmp_path, monkeypatch, seed):
    run_history(template_db, tmp_path, monkeypatch, seed, page=1 + (seed // 3) % 6, profile=seed % 3,
                steps=60)
