"""The posting engine: one partner's events applied set-based in one unit of work.

Single operations are batches of one, so the end-of-day file of a big partner and
a lunchtime POS earn go through the same rules. Per event the engine checks first
and changes state only once nothing can refuse it, so a refused event writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import takewhile

from sqlalchemy import Text, bindparam, cast, false, func, literal_column, null, select, true, union_all, update

from shared.db.database import Tx
from shared.db.lists import among_bound, bound_list, per_dialect
from shared.db.types import new_id
from shared.errors import (
    BatchTooLarge, CaptureExceedsHold, HoldNotOpen, InsufficientPoints, InvalidAmount, InvalidPoints, MemberErased,
    NotReversible, NothingToEarn, OccurredAtOutOfRange, PartnerSuspended, PointsAlreadySpent, PointsnetError,
    ReferenceConflict, ReversalExceedsRemaining, UnknownHold, UnknownMember, UnknownReference, ValidationFailed,
)
from shared.ledger import expiry
from shared.ledger.cycles import cycle_date_for, enter_open_cycle
from shared.ledger.due import load_due
from shared.ledger.events import KINDS, MAX_POINTS, Event, differences
from shared.lazy import lazy
from shared.ledger.journal import Journal
from shared.ledger.spend_order import MemberLots, SpendOrder, UnitLots
from shared.ledger.rules import (
    NETWORK, Line, LotState, Terms, consumption_key, issuance_lines, party, redemption_lines, return_to_lots,
    reversal_line, take_in_order,
)
from shared.ledger.state import (
    among_rows, chunks, load_lots, load_spendable, lock_members_following_merges, survivors,
)
from shared.models import (
    Contract, Entry, Hold, HoldLot, Lot, LotConsumption, Member, MemberLink, ObligationLine,
)
from shared.rules.evaluate import Evaluation, evaluate, is_active
from shared.rules.store import campaign_usage, rules_in_force_for
from shared.money import MAX_MICRO, apply_rate_ppm
from shared.partners.contracts import partner_with_terms, terms_by_id, terms_in_force
from shared.partners.lifecycle import PartnerTerminated, buy_out_rate, hold_off_termination, is_terminated
from shared.partners.limits import FloatExhausted, FloatGuard, float_status, float_total_refusal
from shared.programme import activities
from shared.programme.engine import Programme
from shared.programme.tiers import MemberTiers

MAX_BATCH = 10_000
entries_t = Entry.__table__
lines_t = ObligationLine.__table__
consumptions_t = LotConsumption.__table__


@per_dialect
def _linked_query(dialect: str):
    return select(MemberLink.__table__.c.member_id).where(
        MemberLink.__table__.c.partner_id == bindparam("partner_id"),
        among_bound(dialect, MemberLink.__table__.c.member_id, "ids"))


@per_dialect
def _stored_query(dialect: str):
    return select(entries_t.c.reference, entries_t.c.request, entries_t.c.result).where(
        entries_t.c.partner_id == bindparam("partner_id"), among_bound(dialect, entries_t.c.reference, "ids"))


@per_dialect
def _stored_and_linked_query(dialect: str):
    """``_stored_query``'s rows (``link`` false) and, in the same statement, the listed ``members`` linked
    to the partner (``link`` true, the member id as ``reference``): the links read again under the locks."""
    links_t = MemberLink.__table__
    stored = _stored_query(dialect).add_columns(false().label("link"))
    linked = select(links_t.c.member_id, cast(null(), Text), cast(null(), Text), true()).where(
        links_t.c.partner_id == bindparam("partner_id"), among_bound(dialect, links_t.c.member_id, "members"))
    return union_all(stored, linked)


@dataclass
class Original:
    """What a reversal needs to know about the entry it reverses."""

    entry_id: str
    kind: str
    member_id: str
    partner_id: str
    points: int
    lot_ids: list[str] = field(default_factory=list)  # earn: the lots it created
    returnable: dict[str, int] = field(default_factory=dict)  # burn/capture: lot -> points still returnable
    lines: list[tuple[str, Line]] = field(default_factory=list)
    reversed_lines: dict[str, list[int]] = field(default_factory=dict)  # line id -> [points, amount]
    reversed: int = 0  # points of this entry already reversed
    posted_at: datetime | None = None  # None: posted in this unit


@dataclass
class OpenHold:
    id: str
    member_id: str
    points: int
    status: str
    expires_at: object
    lots: list[tuple[str, int, datetime | None]]  # (lot id, reserved points, the lot's expiry then) in order
    created_at: datetime | None = None  # when it was placed: the day whose spend limit it counts toward


def lot_json(lot: LotState) -> dict:
    return {"lot_id": lot.id, "points": lot.points, "expires_at": lot.expires_at.isoformat(),
            "funded_by": party(lot.funder_partner_id)}


class Posting:
    def __init__(self, tx: Tx, partner_id: str, events: list[Event], *, quote: bool = False):
        if len(events) > MAX_BATCH:
            raise BatchTooLarge(f"a batch holds at most {MAX_BATCH} events, this one has {len(events)}")
        self.tx = tx
        self.now = tx.now
        self.partner_id = partner_id
        self.events = events
        self.outcomes: list[dict | PointsnetError | None] = [None] * len(events)
        if not quote:  # a termination waits for this posting, or this posting for it (PostgreSQL)
            hold_off_termination(tx, partner_id)
        # the partner's status and the terms in force in this instant's cycle: one statement
        self._terms_read_for = cycle_date_for(self.now, tx.settings)
        self.partner_status, self._terms_read = partner_with_terms(tx, partner_id, self._terms_read_for)
        self.cycle_date = enter_open_cycle(tx, pin=not quote)
        self.journal = Journal(tx, self.cycle_date)
        self._posted_at, self._cycle = self.now.isoformat(), self.cycle_date.isoformat()  # in every result
        self.originals: dict[str, Original] = {}
        self.holds: dict[str, OpenHold] = {}
        self._released_holds: set[str] = set()  # timed-out holds a spend released in this unit
        self.unit_lots = UnitLots(self.journal)  # the lots of each member read or made, each spender's order
        self._horizons: dict[str, tuple] = {}  # members whose open lots were read only in part
        self.linked: set[str] = set()
        self._terms: Terms | None = None
        self._rules: tuple | None = None
        self._rule_versions: dict = {}
        self._usage: dict = {}
        self._campaign_keys: list[str] = []
        self.quote = quote  # a quote_earn: reads what the earn would, writes nothing
        self.gives_points = not quote  # a quote locks nothing
        self.programme = Programme(self)  # velocity limits, activities, referral bonuses
        self.tiers = MemberTiers(tx)
        self._survivors: dict[str, str] = {}
        self._buy_out_rates: dict[str, int | None] = {}  # reversals into bought-out lots (rare): per partner
        self._lot_terms: dict[str, Terms] = {}  # and the contract terms of those lots

    # -- entry point -------------------------------------------------------------------
    def run(self) -> list[dict | PointsnetError]:
        candidates = self._validate_all()
        # Only under the members' locks can a twin that committed first be seen for sure (read in _load).
        stored = self._load(candidates)
        pending = self._replay_stored(candidates, stored)
        earns = [self.events[i] for i in pending if self.events[i].kind == "earn" and self.events[i].points is None]
        if earns and self.partner_status == "active":
            self._load_rules(earns)  # so capped campaigns are locked after the members, before a partner's float
        posted: dict[str, int] = {}  # reference -> the event of this unit that posted under it
        for index in pending:
            event = self.events[index]
            if event.reference is not None and event.reference in posted:
                self.outcomes[index] = self._replay_in_batch(event, posted[event.reference])
                continue
            try:
                self.outcomes[index] = getattr(self, f"_{event.kind}")(event)
            except PointsnetError as error:
                self.outcomes[index] = error
            else:
                if event.reference is not None:
                    posted[event.reference] = index
        self.programme.flush_counters()
        self.journal.flush()
        self.programme.flush()
        self.tiers.flush()
        return self.outcomes  # type: ignore[return-value]

    @lazy
    def float_guard(self) -> FloatGuard:
        return FloatGuard(self.tx, self.partner_id)

    @lazy
    def lot_expiry(self):
        """When the lots this unit issues expire (one posting time, so one expiry)."""
        return self.tx.settings.lot_expiry(self.now)

    @lazy
    def rules_in_force(self) -> tuple:
        """(the partner's, the network's) rules in force at posted_at, each (version, rules) or None."""
        return rules_in_force_for(self.tx, self.partner_id, self.now)

    @property
    def terms(self) -> Terms:
        if self._terms is None:
            if self._terms_read is not None and self._terms_read_for == self.cycle_date:
                self._terms = self._terms_read  # read with the partner's status
            else:  # none in force (refused, as terms_in_force does)
                self._terms = terms_in_force(self.tx, self.partner_id, self.cycle_date)
        return self._terms

    # -- validation and replays ----------------------------------------------------------
    def _validate_all(self) -> list[int]:
        """The events that pass validation (the others have their refusal as outcome).

        A reference is taken only by what is posted: an event whose reference an earlier event of the
        batch posted under replays it or conflicts with it (``_replay_in_batch``), but one whose earlier
        namesakes were all refused, writing nothing, is a new event, as it would be in a later call."""
        candidates = []
        for index, event in enumerate(self.events):
            try:
                self._validate(event)
            except PointsnetError as error:
                self.outcomes[index] = error
                continue
            candidates.append(index)
        return candidates

    def _replay_stored(self, candidates: list[int], stored: dict) -> list[int]:
        """Events whose reference is already in the ledger (``stored``, read under the members' locks)
        answer with its result (or a conflict)."""
        pending = []
        for index in candidates:
            event = self.events[index]
            row = stored.get(event.reference) if event.reference else None
            if row is None:
                pending.append(index)
                continue
            self.outcomes[index] = self._stored_outcome(event, row)
        return pending

    @staticmethod
    def _stored_outcome(event: Event, row) -> dict | PointsnetError:
        """What an event whose reference is in the ledger answers: that entry's result if its content is
        the same, else a conflict."""
        diff = differences(json.loads(row.request), event.request())
        if diff:
            return ReferenceConflict(f"reference {event.reference!r} was already used with different "
                                     f"{', '.join(diff)}", reference=event.reference, differs=diff)
        return json.loads(row.result)

    def _replay_in_batch(self, event: Event, first: int) -> dict | PointsnetError:
        diff = differences(self.events[first].request(), event.request())
        if diff:
            return ReferenceConflict(f"reference {event.reference!r} appears earlier in this batch with different "
                                     f"{', '.join(diff)}", reference=event.reference, differs=diff)
        return self.outcomes[first]  # type: ignore[return-value]

    def _validate(self, event: Event) -> None:
        if event.kind not in KINDS:
            raise ValidationFailed(f"unknown event kind {event.kind!r}",
                                   errors=[{"field": "type", "message": f"unknown event kind {event.kind!r}"}])
        if event.kind in ("earn", "burn", "hold", "reversal", "activity"):
            if not event.reference or len(event.reference) > 128:
                raise ValidationFailed("reference is required (1 to 128 characters)", errors=[
                    {"field": "reference", "message": "required, 1 to 128 characters"}])
        if event.reference is not None and any(ord(c) < 32 or ord(c) == 127 for c in event.reference):
            # References are printed in settlement files: no line breaks or other control characters. The
            # partner API's schema refuses them first (services/partner_api/schemas.py); this is the backstop.
            raise ValidationFailed("reference must not contain control characters (line breaks, tabs, ...)", errors=[
                {"field": "reference", "message": "must not contain control characters (U+0000 to U+001F, U+007F)"}])
        for name in ("member_id", "original_reference", "hold_id", "activity", "currency"):
            value = getattr(event, name)
            if isinstance(value, str) and "\x00" in value:  # PostgreSQL cannot hold one in text: every entry point
                raise ValidationFailed(f"{name} must not contain a NUL character (U+0000)",
                                       errors=[{"field": name, "message": "contains a NUL character (U+0000)"}])
        if event.kind in ("earn", "burn", "hold", "activity") and not event.member_id:
            raise UnknownMember("member_id is required")
        if event.points is not None and (
            isinstance(event.points, bool) or not isinstance(event.points, int) or not 0 < event.points <= MAX_POINTS
        ):
            raise InvalidPoints(f"points must be a positive integer, not {event.points!r}")
        if event.kind in ("burn", "hold") and event.points is None:
            raise InvalidPoints("points are required")
        if event.kind == "earn":
            if event.points is None and event.amount is None:
                raise InvalidAmount("an earn needs an amount or explicit points")
            if event.amount is not None and (isinstance(event.amount, bool) or not isinstance(event.amount, int)
                                             or event.amount < 0):
                raise InvalidAmount(f"amount must be a non-negative integer in minor units, not {event.amount!r}")
            if event.currency and event.currency.upper() != self.tx.settings.currency:
                raise InvalidAmount(f"currency {event.currency} is not the network's ({self.tx.settings.currency})")
            self._validate_items(event)
        if event.kind == "activity":
            activities.validate(event)
        if event.kind == "reversal" and not event.original_reference:
            raise UnknownReference("original_reference is required")
        if event.kind in ("capture", "void") and not event.hold_id:
            raise UnknownHold("hold_id is required")
        if event.occurred_at is not None and event.occurred_at.tzinfo is None:
            raise OccurredAtOutOfRange("occurred_at needs a time zone (RFC 3339 with an offset)")
        if event.occurred_at is not None:
            window = timedelta(hours=self.tx.settings.occurred_at_window_hours)
            if not self.now - window <= event.occurred_at <= self.now:
                raise OccurredAtOutOfRange(
                    f"occurred_at {event.occurred_at.isoformat()} must lie within the {window} before "
                    f"the network's time {self.now.isoformat()}", posted_at=self.now.isoformat())

    @staticmethod
    def _validate_items(event: Event) -> None:
        """Item lines are part of the purchase: each has an amount, and together they are at most the
        purchase's ``amount`` (the rest, amount − items, earns at the base rate). Without an ``amount``
        (explicit points) the rules do not read the items, so there is nothing to add them up against."""
        total = 0
        for item in event.items or ():
            if isinstance(item.amount, bool) or not isinstance(item.amount, int) or item.amount < 0:
                raise InvalidAmount(f"an item's amount must be a non-negative integer in minor units, "
                                    f"not {item.amount!r}")
            total += item.amount
        if event.amount is not None and total > event.amount:
            raise InvalidAmount(f"the items add up to {total} minor units, more than the purchase's amount "
                                f"{event.amount}: items are lines of the purchase, so the amount includes them")

    def _stored_by_reference(self, references: list[str]) -> dict:
        return {row.reference: row for row in among_rows(self.tx, _stored_query(self.tx.dialect), references,
                                                          partner_id=self.partner_id)}

    def _stored_and_still_linked(self, events: list[Event]) -> dict:
        """The stored entries of the events' references (``_stored_by_reference``), read once the members
        are locked; on PostgreSQL, with them, the links of the directly named members read again.

        A link may have gone while the posting waited for a member's lock: an unlink holds it from its
        start (shared/members/consent.py) and deletes only the link, which the locking statement, begun
        before the unlink's commit, still sees (READ COMMITTED). A statement begun after the locks sees
        it gone: this one, which the posting runs anyway. A member no longer linked then is unknown to
        the partner, as any unlinked member is (per event in a batch). SQLite's one writer changes
        nothing between the read before the locks and the locks."""
        references = list(dict.fromkeys(e.reference for e in events if e.reference))
        recheck = self.linked & self.journal.members.keys()
        if not self.tx.is_postgres or not recheck:
            return self._stored_by_reference(references)
        dialect, stored, still = self.tx.dialect, {}, set()
        for index, chunk in enumerate(list(chunks(references)) or [[]]):  # the members with the first chunk
            for row in self.tx.session.execute(_stored_and_linked_query(dialect), {
                    "ids": bound_list(dialect, chunk), "members": bound_list(dialect, recheck if index == 0 else ()),
                    "partner_id": self.partner_id}):
                if row.link:
                    still.add(row.reference)
                else:
                    stored[row.reference] = row
        self.linked -= recheck - still
        return stored

    # -- loading -------------------------------------------------------------------------
    def _load(self, pending: list[int]) -> dict:
        """Lock every member the events touch (in id order), then read what the events change; returns
        the stored entries of the events' references (``_stored_and_still_linked``).

        Originals and holds are read only after their members are locked: every change
        to them happens under the same locks, so what is read cannot be stale.
        """
        events = [self.events[i] for i in pending]
        references = {e.original_reference for e in events if e.kind == "reversal"}
        hold_ids = {e.hold_id for e in events if e.kind in ("capture", "void")}
        direct = {e.member_id for e in events if e.member_id}
        self.linked.update(row.member_id for row in among_rows(self.tx, _linked_query(self.tx.dialect), direct,
                                                               partner_id=self.partner_id))
        locked_rows = self._lock_members(events, references, hold_ids)
        stored = self._stored_and_still_linked(events)  # the links too: one may have gone while it waited
        load_due(self.journal)  # so that every balance answered is as a spend now would find it
        self._load_originals(references)
        self._load_holds(hold_ids)
        # Earners' tiers and qualifying points, read under their locks: an earn may upgrade.
        self.tiers.load({e.member_id for e in events if e.kind in ("earn", "activity")} & self.linked
                        & set(self.journal.members),
                        for_earns=True, rows=locked_rows)
        lot_ids = {lot_id for o in self.originals.values() for lot_id in o.returnable}
        lot_ids |= {lot_id for h in self.holds.values() for lot_id, *_ in h.lots}
        # Only members who spend need their open lots, and only as many as their spends ask; an earn
        # never reads them.
        needs = dict.fromkeys((h.member_id for h in self.holds.values()), 0)
        for event in events:
            if event.kind in ("burn", "hold"):
                needs[event.member_id] = needs.get(event.member_id, 0) + event.points
        needs = {member_id: need for member_id, need in needs.items() if member_id in self.journal.members}
        lots, self._horizons = load_spendable(self.tx, needs, self.now)
        extra = load_lots(self.tx, lot_ids=lot_ids - lots.keys(),
                          entry_ids={o.entry_id for o in self.originals.values() if o.kind == "earn"})
        lots.update((lot_id, lot) for lot_id, lot in extra.items() if lot_id not in lots)
        self.journal.lots = lots
        issued: dict[str, list[str]] = {}  # entry -> the lots it created, among those read
        for lot in lots.values():
            self._lots_of(lot.member_id).append(lot)
            issued.setdefault(lot.entry_id, []).append(lot.id)
        for original in self.originals.values():
            if original.kind == "earn":
                original.lot_ids = sorted(issued.get(original.entry_id, ()),
                                          key=lambda lot_id: (lots[lot_id].billing == "network", lot_id))
        return stored

    def _lock_members(self, events: list[Event], references: set[str], hold_ids: set[str]) -> list:
        """Lock the members the events touch (``self.journal.members``); returns the rows read.

        The owners of the entries to reverse and the holds to resolve are read before their locks. A
        merge that held an owner's lock meanwhile has moved its holds and lots to the survivor (and
        the owner is no longer locked: it is merged), so once locked the owners are looked at again:
        an owner merged since it was read gives way to its survivor, which is locked too, until what
        was read holds under the locks (each round follows a merge that committed). The survivor's id
        may sort before members locked already: on PostgreSQL the locks are then taken again, all in
        id order, from a savepoint set before them (a lock out of order could deadlock with a writer
        holding the survivor and waiting for one of ours). The referrers to pay (``members_to_lock``) are
        read before their locks too: a referrer merged meanwhile gives way to its survivor, which its
        referees' referrals name now. SQLite's one writer sees no merge commit meanwhile."""
        self._hold_off_terminations(references)
        owners = self._owners(references, hold_ids)
        referrers = self.programme.members_to_lock(events, self.linked)

        def more(members: dict) -> set[str]:
            nonlocal owners
            found: set[str] = set()
            unlocked = owners - members.keys()  # merged, erased or gone
            if unlocked and survivors(self.tx, unlocked):  # merged since they were read
                owners = self._owners(references, hold_ids)  # the survivors own them now
                found |= owners
            unpaid = referrers - members.keys()
            if unpaid:  # a referrer merged since it was read: the survivor is paid (merge._move_referrals)
                found.update(survivors(self.tx, unpaid).values())
            return found

        rows: list = []
        # without owners or referrers read before the locks no round can follow: no savepoint
        self.journal.members = lock_members_following_merges(
            self.tx, self.linked | owners | referrers, more, rows=rows, savepoint=bool(owners or referrers))
        return rows

    def _owners(self, references: set[str], hold_ids: set[str]) -> set[str]:
        """The members of the entries to reverse and of the holds to resolve."""
        holds_t = Hold.__table__
        owners: set[str] = set()
        for chunk in chunks(references):
            owners.update(self.tx.session.execute(select(entries_t.c.member_id).where(
                entries_t.c.partner_id == self.partner_id, entries_t.c.reference.in_(chunk))).scalars())
        for chunk in chunks(hold_ids):
            owners.update(self.tx.session.execute(select(holds_t.c.member_id).where(
                holds_t.c.id.in_(chunk), holds_t.c.partner_id == self.partner_id)).scalars())
        # an entry of a member merged into another now belongs to the survivor (its lots moved there)
        self._survivors = survivors(self.tx, {owner for owner in owners if owner})
        return {self._survivors.get(owner, owner) for owner in owners if owner}

    def _hold_off_terminations(self, references: set[str]) -> None:
        """Hold off the terminations of the other partners whose lots the burns and captures to reverse
        took points from (``_buy_out_rate``), in id order and before the members' locks, as a posting
        of theirs would: a buy-out waits for these reversals, having locked the issuer's postings
        before the members holding its lots. PostgreSQL only (SQLite's writers run one at a time)."""
        if not self.tx.is_postgres or not references:
            return
        lots_t, funders = Lot.__table__, set()
        for chunk in chunks(references):
            funders.update(self.tx.session.execute(
                select(lots_t.c.funder_partner_id).distinct()
                .join_from(entries_t, consumptions_t, consumptions_t.c.entry_id == entries_t.c.id)
                .join(lots_t, lots_t.c.id == consumptions_t.c.lot_id)
                .where(entries_t.c.partner_id == self.partner_id, entries_t.c.reference.in_(chunk),
                       entries_t.c.kind.in_(("burn", "capture")), lots_t.c.billing == "postpaid")).scalars())
        for funder in sorted(funders - {None, self.partner_id}):
            hold_off_termination(self.tx, funder)

    def _load_originals(self, references: set[str]) -> None:
        session = self.tx.session
        for chunk in chunks(references):
            rows = session.execute(select(entries_t).where(entries_t.c.partner_id == self.partner_id,
                                                           entries_t.c.reference.in_(chunk))).all()
            by_id = {}
            for row in rows:
                original = Original(row.id, row.kind, self._survivors.get(row.member_id, row.member_id),
                                    row.partner_id, row.points, posted_at=row.posted_at)
                self.originals[row.reference] = by_id[row.id] = original
            if not by_id:
                continue
            ids = list(by_id)
            reversal_ids = {}
            for reversal in session.execute(select(entries_t.c.id, entries_t.c.original_entry_id, entries_t.c.points)
                                            .where(entries_t.c.original_entry_id.in_(ids),
                                                   entries_t.c.kind == "reversal")):
                reversal_ids[reversal.id] = reversal.original_entry_id
                by_id[reversal.original_entry_id].reversed += reversal.points
            moves = session.execute(
                select(consumptions_t).where(consumptions_t.c.entry_id.in_(ids + list(reversal_ids)))
                .order_by(consumptions_t.c.entry_id, consumptions_t.c.seq)).all()
            for move in moves:
                if move.entry_id in by_id:
                    original = by_id[move.entry_id]
                    if original.kind in ("burn", "capture"):
                        original.returnable[move.lot_id] = original.returnable.get(move.lot_id, 0) + move.points
            for move in moves:
                if move.entry_id in reversal_ids:
                    original = by_id[reversal_ids[move.entry_id]]
                    if original.kind in ("burn", "capture"):  # returns are negative moves
                        original.returnable[move.lot_id] += move.points
            line_rows = session.execute(select(lines_t).where(lines_t.c.entry_id.in_(ids))).all()
            for line in line_rows:
                by_id[line.entry_id].lines.append((line.id, Line(
                    line.payer, line.payee, line.kind, line.points, line.amount_micro, line.contract_id, line.lot_id)))
                by_id[line.entry_id].reversed_lines[line.id] = [0, 0]
            if line_rows:
                sums = session.execute(
                    select(lines_t.c.original_line_id, func.sum(lines_t.c.points), func.sum(lines_t.c.amount_micro))
                    .where(lines_t.c.original_line_id.in_([line.id for line in line_rows]))
                    .group_by(lines_t.c.original_line_id)).all()
                line_entry = {line.id: line.entry_id for line in line_rows}
                for line_id, points, amount in sums:
                    by_id[line_entry[line_id]].reversed_lines[line_id] = [-int(points), -int(amount)]

    def _load_holds(self, hold_ids: set[str]) -> None:
        holds_t, hold_lots_t = Hold.__table__, HoldLot.__table__
        for chunk in chunks(hold_ids):
            rows = self.tx.session.execute(select(holds_t).where(holds_t.c.id.in_(chunk),
                                                                 holds_t.c.partner_id == self.partner_id)).all()
            for row in rows:
                self.holds[row.id] = OpenHold(row.id, row.member_id, row.points, row.status, row.expires_at, [],
                                              row.created_at)
            reserved = self.tx.session.execute(select(hold_lots_t).where(hold_lots_t.c.hold_id.in_(chunk))
                                               .order_by(hold_lots_t.c.hold_id, hold_lots_t.c.seq)).all()
            for row in reserved:
                if row.hold_id in self.holds:
                    self.holds[row.hold_id].lots.append((row.lot_id, row.points, row.lot_expires_at))

    # -- helpers -------------------------------------------------------------------------
    def _member(self, member_id: str | None, *, linked: bool = True):
        member = self.journal.members.get(member_id or "")
        if member is None or (linked and member_id not in self.linked):
            if not linked:  # the ledger's member of an entry or hold, perhaps a merge's survivor: never named
                if member_id and self._erased(member_id):
                    raise MemberErased("the member of this entry or hold was erased; its points can no longer "
                                       "be reversed, captured or released")
                raise UnknownMember("the member of this entry or hold is not found")
            if member_id in self.linked and self._erased(member_id):
                raise MemberErased(f"member {member_id} was erased; it can no longer earn or spend points")
            raise UnknownMember(f"no member {member_id} linked to this partner")
        return member

    def _erased(self, member_id: str) -> bool:
        status = self.tx.session.execute(select(Member.status).where(Member.id == member_id)).scalar_one_or_none()
        return status == "erased"

    def _require_active(self) -> None:
        if self.partner_status != "active":
            if is_terminated(self.tx, self.partner_id):
                raise PartnerTerminated("the partner has left the network; it cannot earn, burn or hold")
            raise PartnerSuspended("the partner is suspended; it cannot earn, burn or hold")

    def _lots_of(self, member_id: str) -> MemberLots:
        return self.unit_lots.of(member_id)

    def _spendable(self, member_id: str) -> Iterator[LotState]:
        """The member's lots a spend may take, with free points and in consumption order, after
        expiring any that are due (lazily, before a burn or hold): all of them, or, while not all were
        read, those up to the horizon of what was read."""
        order = self._expire_due(self.journal.members[member_id])
        horizon = self._horizons.get(member_id)
        lots = order.free_lots()
        return lots if horizon is None else takewhile(lambda lot: consumption_key(lot) <= horizon, lots)

    def _expire_due(self, member) -> SpendOrder:
        """Expire the member's lots in this unit that are due; returns its lots' order."""
        order = self.unit_lots.order(member.id)
        expiry.forfeit(self.journal, member, order.due(self.now))
        return order

    def _read_the_rest(self, member_id: str) -> None:
        """Read the member's other open lots (those already read keep their state in this unit)."""
        del self._horizons[member_id]
        lots = self._lots_of(member_id)
        for lot in load_lots(self.tx, member_ids=[member_id]).values():
            if lot.id not in self.journal.lots:
                self.journal.lots[lot.id] = lot
                lots.append(lot)

    def _result(self, entry: dict, member, **extra) -> dict:
        result = {"entry_id": entry["id"], "kind": entry["kind"], "reference": entry["reference"],
                  "member_id": member.id, "points": entry["points"], "posted_at": self._posted_at,
                  "cycle_date": self._cycle, **extra, "balance": member.balance()}
        entry["result"] = result
        return result

    def _request(self, event: Event) -> dict:
        return event.request()

    # -- operations ----------------------------------------------------------------------
    def _earn(self, event: Event) -> dict:
        self._require_active()
        member = self._member(event.member_id)
        terms = self.terms
        partner_points, network_points, evaluation, float_cost = self._earn_checks(event, member.id)
        if float_cost:  # drawn only once nothing else can refuse the earn; its referral bonus's too
            self.float_guard.draw(float_cost, member_id=member.id, reference=event.reference)
        entry = self.journal.entry("earn", partner_points + network_points, partner_id=self.partner_id,
                                   member_id=member.id, reference=event.reference,
                                   occurred_at=event.occurred_at or self.now, request=self._request(event))
        original = Original(entry["id"], "earn", member.id, self.partner_id, partner_points + network_points)
        lots = []
        if partner_points:
            lot = self._new_lot(entry, member.id, self.partner_id, terms.billing, terms.contract_id, partner_points)
            self.journal.transfer(entry, f"partner:{self.partner_id}:issued", f"member:{member.id}", partner_points)
            for line in issuance_lines(lot, terms):
                line_id = self.journal.line(entry, line)
                original.lines.append((line_id, line))
                original.reversed_lines[line_id] = [0, 0]
            lots.append(lot)
        if network_points:  # network-funded campaign points: always their own lot
            lots.append(self._new_lot(entry, member.id, None, "network", None, network_points))
            self.journal.transfer(entry, "network:promotions", f"member:{member.id}", network_points)
        original.lot_ids = [lot.id for lot in lots]
        self.originals[event.reference] = original
        member.change(available=partner_points + network_points)
        self.tiers.earned(member.id, partner_points + network_points, entry["id"], entry["occurred_at"])
        extra = {}
        if evaluation is not None:
            for line in evaluation.lines:
                if line.campaign and line.points:
                    self.journal.campaign_awards.append({"id": new_id("cmp"), "campaign": line.campaign,
                                                         "member_id": member.id, "entry_id": entry["id"],
                                                         "points": line.points})
                    used = self._usage
                    used[(line.campaign, member.id)] = used.get((line.campaign, member.id), 0) + line.points
                    used[(line.campaign, None)] = used.get((line.campaign, None), 0) + line.points
            extra = {"breakdown": [{"rule": l.rule, "description": l.description, "points": l.points,
                                    "funded_by": l.funded_by} for l in evaluation.lines],
                     "rules": self._rule_versions}
        result = self._result(entry, member, lots=[lot_json(lot) for lot in lots], **extra)
        self.programme.after_earn(event, entry, member, result)
        return result

    def _earn_checks(self, event: Event, member_id: str) -> tuple[int, int, Evaluation | None, int]:
        """Every refusal an earn can meet once its partner and member pass, in the earn's order, run by
        the earn and by its quote alike so that they cannot disagree: nothing to earn, money that does
        not fit the ledger, the prepaid float, the velocity limits. Returns (partner points, network
        points, the rules' evaluation or None for explicit points, the float they cost — with the
        partner-funded referral bonus the earn pays). The earn checks under its locks; a quote reads
        without them, and draws, counts and alerts nothing."""
        if event.points is not None:
            partner_points, network_points, evaluation = event.points, 0, None
        else:
            evaluation = self._evaluate(event, member_id)
            partner_points, network_points = evaluation.partner_points, evaluation.network_points
            if partner_points + network_points <= 0:
                raise NothingToEarn(f"a purchase of {event.amount} minor units earns no points under the rules",
                                    breakdown=[line.__dict__ for line in evaluation.lines])
        self._require_money_fits(partner_points)
        bonus = self.programme.referral_bonus(event, member_id)
        bonus_points = bonus[0] if bonus is not None and bonus[1] == "partner" else 0
        if bonus_points:  # written after the earn, at this partner's terms
            self._require_money_fits(bonus_points, referral_bonus=True)
        terms = self.terms
        # A prepaid partner's float funds the earn's points and the partner-funded referral bonus the
        # earn pays (``Referrals.after_earn``): both are checked here, before anything is written, and
        # drawn together by the earn (docs/ledger.md, decision 14).
        bonus_cost = bonus_points * terms.point_value_micro if terms.billing == "prepaid" else 0
        float_cost = partner_points * terms.point_value_micro if terms.billing == "prepaid" else 0
        float_cost += bonus_cost
        if self.quote:
            if float_cost:
                self._quote_float(float_cost, bonus_cost)
            self.programme.limits.check_quote(member_id, partner_points + network_points, partner_points)
        else:
            if float_cost:
                self.float_guard.ensure(float_cost, member_id=member_id, reference=event.reference,
                                        referral_bonus_micro=bonus_cost)
            self.programme.check_earn(member_id, partner_points + network_points, partner_points)
        return partner_points, network_points, evaluation, float_cost

    def _quote_float(self, amount_micro: int, referral_bonus_micro: int = 0) -> None:
        """Refuse, as ``FloatGuard.ensure`` refuses the earn, a quote for an issuance the prepaid float
        (overdraft included) cannot fund, read without the float's lock and alerting nobody."""
        status = float_status(self.tx, self.partner_id)
        if status["enforced"] and amount_micro > status["headroom_micro"]:
            raise FloatExhausted.needing(amount_micro, status["headroom_micro"],
                                         referral_bonus_micro=referral_bonus_micro)
        refusal = float_total_refusal(self.tx, self.partner_id, amount_micro)
        if refusal is not None:
            raise refusal

    def _activity(self, event: Event) -> dict:
        return self.programme.activity(event)

    def _new_lot(self, entry: dict, member_id: str, funder: str | None, billing: str, contract_id: str | None,
                 points: int) -> LotState:
        lot = LotState(new_id("lot"), member_id, entry["id"], funder, billing, contract_id, points, points, 0,
                       self.now, self.lot_expiry)
        self.journal.new_lot(lot)
        self._lots_of(member_id).append(lot)
        return lot

    def _evaluate(self, event: Event, member_id: str) -> Evaluation:
        """The rules in force at posted_at, applied at the partner's occurred_at (network time zone),
        at the tier the member holds now (an earn earlier in this batch may have raised it)."""
        if self._rules is None:  # a quote (a batch loads them in run)
            self._load_rules([event])
        # one look-up per capped campaign: the usage of every member of the batch is in self._usage
        used = self._usage
        usage = {key: (used.get((key, member_id), 0), used.get((key, None), 0)) for key in self._campaign_keys}
        evaluation = evaluate(amount=event.amount or 0, items=event.items, currency=self.tx.settings.currency,
                              occurred_local=(event.occurred_at or self.now).astimezone(self.tx.settings.zone),
                              contract_base_rate_micro=self.terms.base_rate_micro, partner=self._rules[0],
                              partner_scope=self.partner_id, network=self._rules[1], usage=usage,
                              tier=self.tiers.tier(member_id))
        if evaluation.partner_points + evaluation.network_points > MAX_POINTS:  # explicit points have this bound too
            raise InvalidAmount(f"a purchase of {event.amount} minor units would earn "
                                f"{evaluation.partner_points + evaluation.network_points} points; one earn carries "
                                f"at most {MAX_POINTS}")
        return evaluation

    def _load_rules(self, earns: list[Event]) -> None:
        """The rules in force, and what the capped campaigns they hold have given (``earns``: the
        unit's validated earns computed by the rules)."""
        partner, network = self.rules_in_force
        self._rules = (partner[1] if partner else None, network[1] if network else None)
        self._rule_versions = {"partner": partner[0] if partner else None, "network": network[0] if network else None}
        self._usage, self._campaign_keys = self._campaign_usage(earns)

    def _campaign_usage(self, earns: list[Event]) -> tuple[dict, list[str]]:
        """What the capped campaigns running when ``earns`` occurred have given: in all, for a cap in
        all (read under the campaign's lock, so that two units cannot both give its last points), and
        to the earns' members, for a cap per member (their locks are held already). A campaign
        without caps reads nothing (on PostgreSQL it is locked shared: see ``campaign_usage``).
        Returns the usage and the capped campaigns' keys."""
        partner_rules, network_rules = self._rules
        campaigns = [(f"{self.partner_id}:{c.id}", c) for c in (partner_rules.campaigns if partner_rules else ())]
        campaigns += [(f"network:{c.id}", c) for c in (network_rules.campaigns if network_rules else ())]
        zone = self.tx.settings.zone
        moments = {(e.occurred_at or self.now).astimezone(zone) for e in earns}
        running = [(key, c) for key, c in campaigns if any(is_active(c, local) for local in moments)]
        in_all = {key: c.campaign_cap for key, c in running if c.campaign_cap is not None}
        per_member = {key for key, c in running if c.per_member_cap is not None}
        usage = campaign_usage(self.tx, in_all, per_member, {e.member_id for e in earns if e.member_id},
                               lock=self.gives_points, running=[key for key, _ in running if key not in in_all])
        return usage, sorted(in_all.keys() | per_member)

    def _burn(self, event: Event) -> dict:
        member, plan = self._plan_spend(event)
        entry = self.journal.entry("burn", event.points, partner_id=self.partner_id, member_id=member.id,
                                   reference=event.reference, occurred_at=event.occurred_at or self.now,
                                   request=self._request(event))
        original = Original(entry["id"], "burn", member.id, self.partner_id, event.points)
        self._redeem(entry, plan, original)
        self.journal.transfer(entry, f"member:{member.id}", f"partner:{self.partner_id}:redeemed", event.points)
        member.change(available=-event.points)
        self.originals[event.reference] = original
        return self._result(entry, member, consumed=[{"lot_id": lot.id, "points": points} for lot, points in plan])

    def _plan_spend(self, event: Event):
        """The member and the lots a burn or hold would take, or the refusal."""
        self._require_active()
        self._require_money_fits(event.points)
        member = self._member(event.member_id)
        plan = take_in_order(self._spendable(member.id), event.points)
        if plan is None and member.held and self._release_lapsed_holds(member.id):
            plan = take_in_order(self._spendable(member.id), event.points)
        if plan is None and member.id in self._horizons and member.available >= event.points:
            self._read_the_rest(member.id)  # its lots read so far do not cover it; the rest may
            plan = take_in_order(self._spendable(member.id), event.points)
        if plan is None:
            raise InsufficientPoints(f"member has {member.available} points available, {event.points} asked",
                                     available=member.available)
        self.programme.check_spend(member.id, event.points)
        return member, plan

    def _release_lapsed_holds(self, member_id: str) -> bool:
        """Release the member's timed-out holds that the job has not reached yet (``release_lapsed_holds``),
        so that a spend sees their points: refused for want of them, it was ``insufficient_points``, and
        that refusal is kept for its Idempotency-Key. Read only when a spend falls short and the member
        has points held. Each hold once per unit, and none this unit captured or voided."""
        released, loaded = release_lapsed_holds(
            self.journal, member_id, skip=lambda hold_id: hold_id in self._released_holds
            or (hold_id in self.holds and self.holds[hold_id].status != "open"))
        if loaded:  # reserved lots beyond what this unit read of the member's
            self._lots_of(member_id).extend(loaded)
        for hold_id in released:
            self._released_holds.add(hold_id)
            if hold_id in self.holds:
                self.holds[hold_id].status = "expired"
        return bool(released)

    def _require_money_fits(self, points: int, *, referral_bonus: bool = False) -> None:
        """Refuse, before anything is written, points whose money at this partner's terms (issuance fee,
        prepaid funding, a redemption's reimbursement: at most points × the larger of its point value and
        fee) would not fit the ledger's 64-bit amounts: a 500 from the database before. ``referral_bonus``:
        the points are the partner-funded referral bonus an earn would pay, which the refusal names."""
        largest = max(self.terms.point_value_micro, self.terms.issuance_fee_micro)
        if points * largest > MAX_MICRO:
            if referral_bonus:
                raise InvalidAmount(f"the referral bonus this earn would pay the member's referrer ({points} "
                                    f"points, funded by this partner) moves more money at this partner's point "
                                    f"value than one ledger line holds (at most {MAX_MICRO // largest} points): "
                                    f"the referral programme's bonus_points must be lowered")
            raise InvalidAmount(f"{points} points at this partner's point value move more money than one ledger "
                                f"line holds; split them (at most {MAX_MICRO // largest} at a time)")

    def _redeem(self, entry: dict, plan: list[tuple[LotState, int]], original: Original) -> None:
        for lot, points in plan:
            self.journal.move(entry, lot, points)
            original.returnable[lot.id] = original.returnable.get(lot.id, 0) + points
            for line in redemption_lines(lot, points, self.terms):
                line_id = self.journal.line(entry, line)
                original.lines.append((line_id, line))
                original.reversed_lines[line_id] = [0, 0]

    def _hold(self, event: Event) -> dict:
        member, plan = self._plan_spend(event)
        hold_id = new_id("hld")
        entry = self.journal.entry("hold", event.points, partner_id=self.partner_id, member_id=member.id,
                                   reference=event.reference, occurred_at=event.occurred_at or self.now,
                                   hold_id=hold_id, request=self._request(event))
        expires_at = self.now + timedelta(minutes=self.tx.settings.hold_timeout_minutes)
        self.journal.holds.append({"id": hold_id, "partner_id": self.partner_id, "member_id": member.id,
                                   "entry_id": entry["id"], "points": event.points, "captured_points": 0,
                                   "status": "open", "created_at": self.now, "expires_at": expires_at})
        reserved = []
        for seq, (lot, points) in enumerate(plan, start=1):
            self.journal.reserve(lot, points)
            self.journal.hold_lots.append({"hold_id": hold_id, "lot_id": lot.id, "seq": seq, "points": points,
                                           "lot_expires_at": lot.expires_at})
            reserved.append((lot.id, points, lot.expires_at))
        self.holds[hold_id] = OpenHold(hold_id, member.id, event.points, "open", expires_at, reserved)
        self.originals[event.reference] = Original(entry["id"], "hold", member.id, self.partner_id, event.points)
        self.journal.transfer(entry, f"member:{member.id}", f"member:{member.id}:held", event.points)
        member.change(available=-event.points, held=event.points)
        return self._result(entry, member, hold_id=hold_id, expires_at=expires_at.isoformat())

    def _capture(self, event: Event) -> dict:
        return self._resolve_hold(event, "capture")

    def _void(self, event: Event) -> dict:
        return self._resolve_hold(event, "void")

    def _resolve_hold(self, event: Event, kind: str) -> dict:
        self._require_active()  # a capture or void is a write of the partner's like any other
        hold = self.holds.get(event.hold_id)
        if hold is None:
            raise UnknownHold(f"no hold {event.hold_id}")
        if hold.status != "open":
            raise HoldNotOpen(f"hold {hold.id} is already {hold.status}", hold_status=hold.status)
        if hold.expires_at <= self.now:
            raise HoldNotOpen(f"hold {hold.id} timed out at {hold.expires_at.isoformat()}", hold_status="expired")
        captured = 0
        if kind == "capture":
            captured = hold.points if event.points is None else event.points
            if captured > hold.points:
                raise CaptureExceedsHold(f"capture of {captured} exceeds the {hold.points} points held",
                                         held=hold.points)
            # its redemption lines are written at the terms in force now, which may not be the hold's
            self._require_money_fits(captured)
        elif event.points is not None:
            raise InvalidPoints("a void releases the whole hold; points are not accepted")
        member = self._member(hold.member_id, linked=False)
        entry = self.journal.entry(kind, captured or hold.points, partner_id=self.partner_id, member_id=member.id,
                                   reference=event.reference, occurred_at=event.occurred_at or self.now,
                                   hold_id=hold.id, request=self._request(event))
        release_hold(self.journal, hold, entry, captured, redeem=self._capture_lot_lines if captured else None)
        status = "captured" if kind == "capture" else "voided"
        self.journal.resolve_hold({"id": hold.id, "status": status, "captured_points": captured,
                                   "resolved_entry_id": entry["id"]})
        hold.status = status
        # what it releases no longer counts toward the member's spend limit of the day it was placed
        self.programme.hold_resolved(hold.member_id, hold.created_at, hold.points - captured)
        if captured:
            self.journal.transfer(entry, f"member:{member.id}:held", f"partner:{self.partner_id}:redeemed", captured)
            original = Original(entry["id"], "capture", member.id, self.partner_id, captured)
            for lot_id, points in entry.pop("_taken"):
                original.returnable[lot_id] = original.returnable.get(lot_id, 0) + points
            original.lines = entry.pop("_lines")
            original.reversed_lines = {line_id: [0, 0] for line_id, _ in original.lines}
            if event.reference:
                self.originals[event.reference] = original
        # Released points of a due lot expire at once — before the answer is made, so the balance it
        # shows (and that a replay of it shows) is the member's balance after this unit of work.
        self._expire_due(member)
        return self._result(entry, member, hold_id=hold.id, captured=captured, released=hold.points - captured)

    def _capture_lot_lines(self, entry: dict, lot: LotState, points: int) -> None:
        entry.setdefault("_taken", []).append((lot.id, points))
        for line in redemption_lines(lot, points, self.terms):
            entry.setdefault("_lines", []).append((self.journal.line(entry, line), line))
        entry.setdefault("_lines", [])

    def _reversal(self, event: Event) -> dict:
        self._require_active()
        original = self.originals.get(event.original_reference)
        if original is None:
            raise UnknownReference(f"no entry with reference {event.original_reference!r}")
        if original.kind not in ("earn", "burn", "capture"):
            raise NotReversible(f"a {original.kind} cannot be reversed"
                                + ("; void it while it is open, or reverse its capture by the capture's own reference"
                                   if original.kind == "hold" else ""))
        if original.member_id not in self.journal.members and self._erased(original.member_id):
            # as an earn or burn for the member answers: its id stays in the ledger, nothing posts to it
            # the member is not named: after a merge it is the survivor, perhaps another partner's member
            raise MemberErased("the member of this entry was erased; its points can no longer be reversed")
        member = self._member(original.member_id, linked=False)
        if original.kind == "earn":
            return self._reverse_earn(event, original, member)
        return self._reverse_redemption(event, original, member)

    def _reversal_entry(self, event: Event, original: Original, member, points: int) -> dict:
        return self.journal.entry("reversal", points, partner_id=self.partner_id, member_id=member.id,
                                  reference=event.reference, occurred_at=event.occurred_at or self.now,
                                  original_entry_id=original.entry_id, request=self._request(event))

    def _reverse_lines(self, entry: dict, original: Original, lot_id: str, points: int) -> None:
        for line_id, line in original.lines:
            if line.lot_id != lot_id:
                continue
            before = original.reversed_lines[line_id]
            reversal = reversal_line(line, line_id, (before[0], before[1]), points)
            if reversal is not None:
                self.journal.line(entry, reversal)
                before[0] -= reversal.points
                before[1] -= reversal.amount_micro
                if reversal.kind == "prepaid_funding" and reversal.payer == self.partner_id:
                    self.float_guard.give_back(-reversal.amount_micro)  # this unit's later earns may draw it

    def _reverse_earn(self, event: Event, original: Original, member) -> dict:
        """Take back points of an earn from what remains of its lots; never more (the rest is cash at the till)."""
        all_lots = [self.journal.lots[lot_id] for lot_id in original.lot_ids]
        expiry.expire_due(self.journal, member, all_lots, self.now)  # expired points are no longer the member's
        # A lot its issuer sold to the network when it left (a buy-out) is no longer the issuer's to take back.
        lots = [lot for lot in all_lots if not lot.bought_out]
        remaining = sum(lot.free for lot in lots)
        points = original.points - original.reversed if event.points is None else event.points
        if (remaining < points and member.held and any(lot.reserved for lot in lots)
                and self._release_lapsed_holds(member.id)):
            # points whose hold timed out are the member's again, as for a short burn (docs/ledger.md, 7)
            expiry.expire_due(self.journal, member, all_lots, self.now)  # released points of a lot past due
            remaining = sum(lot.free for lot in lots)
        sold = sum(lot.free for lot in all_lots if lot.bought_out)
        if original.points == original.reversed:  # the design's code for an earn (docs/ledger.md, 8), saying why
            raise PointsAlreadySpent(f"all {original.points} points of this earn were reversed already; nothing is "
                                     "left to reverse" + ("" if event.points is None else f", {points} asked"),
                                     remaining=0, held=0)
        if points <= 0 or points > remaining:
            # the rest is spent, or held by an open hold (the member's until it is captured or voided)
            held = sum(lot.reserved for lot in lots)
            raise PointsAlreadySpent(
                f"only {remaining} points of this earn remain with the member, neither spent nor held; "
                f"{points} cannot be reversed"
                + (f" ({held} are held by an open hold: reversible once it is voided or times out)" if held else "")
                + (f" ({sold} were bought out by the network when the partner left)" if sold else ""),
                remaining=remaining, held=held)
        entry = self._reversal_entry(event, original, member, points)
        left = points
        back: dict[str, int] = {}  # each lot's points go back to the account that funded them
        for lot in lots:
            take = min(lot.free, left)
            if take:
                self.journal.move(entry, lot, take)
                self._reverse_lines(entry, original, lot.id, take)
                source = "network:promotions" if lot.billing == "network" else f"partner:{lot.funder_partner_id}:issued"
                back[source] = back.get(source, 0) + take
                left -= take
        for account, taken in back.items():
            self.journal.transfer(entry, f"member:{member.id}", account, taken)
        member.change(available=-points)
        self.tiers.reversed(member.id, points, original, self.originals.values())
        self.programme.after_earn_reversed(original.entry_id, member.id, points)
        original.reversed += points
        self.originals[event.reference] = Original(entry["id"], "reversal", member.id, self.partner_id, points)
        return self._result(entry, member, original_reference=event.original_reference,
                            reversible_remaining=remaining - points)

    def _reverse_redemption(self, event: Event, original: Original, member) -> dict:
        remaining = sum(original.returnable.values())
        points = remaining if event.points is None else event.points
        if remaining == 0:  # without points: "all that is left", and nothing is
            raise ReversalExceedsRemaining(f"nothing of this {original.kind} is left to return"
                                           + ("" if event.points is None else f"; {points} asked"), remaining=0)
        if points > remaining:
            raise ReversalExceedsRemaining(
                f"only {remaining} points of this {original.kind} can still be returned; {points} asked",
                remaining=remaining)
        plan = return_to_lots(list(original.returnable.items()), points)
        # what is left in a lot past its expiry expires now; only the returned points get the grace
        expiry.expire_due(self.journal, member, [self.journal.lots[lot_id] for lot_id, _ in plan], self.now)
        entry = self._reversal_entry(event, original, member, points)
        grace = timedelta(days=self.tx.settings.return_grace_days)
        for lot_id, give in plan:
            lot = self.journal.lots[lot_id]
            self.journal.move(entry, lot, -give)
            if lot.expires_at <= self.now:
                self.journal.set_expiry(lot, max(lot.expires_at, self.now + grace))
            original.returnable[lot_id] -= give
            if lot not in self._lots_of(member.id):
                self._lots_of(member.id).append(lot)
            self._reverse_lines(entry, original, lot_id, give)
            if self._not_bought_out_with(original, lot):
                self._fund_bought_out(entry, lot, give)
        self.journal.transfer(entry, f"partner:{original.partner_id}:redeemed", f"member:{member.id}", points)
        member.change(available=points)
        self.originals[event.reference] = Original(entry["id"], "reversal", member.id, self.partner_id, points)
        return self._result(entry, member, original_reference=event.original_reference,
                            reversible_remaining=remaining - points)

    def _buy_out_rate(self, partner_id: str) -> int | None:
        """``lifecycle.buy_out_rate``, read once per partner in this unit (None is an answer too).

        Read under the partner's postings lock, as its own postings take it (``hold_off_termination``):
        a termination of the partner, which takes it exclusively, waits for this unit, or this unit for
        it and then reads its buy-out. So a reversal that returns points to a lot of the partner that was
        empty at the buy-out either commits first (the buy-out then counts those points) or sees the
        buy-out (and buys the lot out with them). Taken before the members' locks for the reversals
        known then (``_hold_off_terminations``); here for any other (a burn reversed in its own batch)."""
        if partner_id not in self._buy_out_rates:
            if partner_id != self.partner_id:
                hold_off_termination(self.tx, partner_id)
            self._buy_out_rates[partner_id] = buy_out_rate(self.tx, partner_id)
        return self._buy_out_rates[partner_id]

    def _not_bought_out_with(self, original: Original, lot: LotState) -> bool:
        """Whether points ``original`` took from ``lot`` and a reversal now returns were left out of its
        issuer's buy-out: they had left the lot before it. Told by who paid for their redemption (the
        issuer: before the buy-out; the network: after it), not by the times, which do not order units
        that waited on each other's locks: the issuer redeeming them itself (it can no longer post once
        it has left); a lot not open at the buy-out (spent or expired then: not bought out at all). Only
        where no money moved for them (a redeemer's point value of 0) do the times decide."""
        if lot.billing != "postpaid" or lot.funder_partner_id is None or self._buy_out_rate(lot.funder_partner_id) is None:
            return False
        if not lot.bought_out or original.partner_id == lot.funder_partner_id:
            return True
        payers = {line.payer for _, line in original.lines if line.lot_id == lot.id and line.kind == "redemption"}
        if payers:
            return lot.funder_partner_id in payers
        return original.posted_at is not None and original.posted_at < lot.bought_out_at

    def _fund_bought_out(self, entry: dict, lot: LotState, points: int) -> None:
        """Points that left a lot before its issuer's buy-out come back to it after: the buy-out did not
        cover them (the issuer paid for them as they were redeemed, and the reversal refunds it), so the
        issuer funds them now as it funded the lot's other points then — at the buy-out's rate and the
        lot's contract point value, a ``prepaid_funding`` line to the network — and the network, which
        reimburses the lot's redemptions from now on, is paid for them. A lot that was not open at the
        buy-out (spent or expired then) is bought out now, with these points."""
        if not lot.bought_out:
            lot.bought_out_at = self.now
            self.tx.session.execute(update(Lot).where(Lot.id == lot.id).values(bought_out_at=self.now))
        if lot.contract_id not in self._lot_terms:
            self._lot_terms.update(terms_by_id(self.tx, {lot.contract_id}))
        value = self._lot_terms[lot.contract_id].point_value_micro
        amount = apply_rate_ppm(points * value, self._buy_out_rate(lot.funder_partner_id))
        if amount:
            self.journal.line(entry, Line(lot.funder_partner_id, NETWORK, "prepaid_funding", points, amount,
                                          lot.contract_id, lot.id))


def expire_hold(journal: Journal, row, reserved: list) -> dict:
    """Release a timed-out hold (``row``: its ``holds`` row; ``reserved``: ``hold_lots`` rows, its own
    among them, in order) with a ``hold_expiry`` entry for the hold's partner: what the hold-timeout
    job does, and a spend that needs the points before the job got there. Returns the entry."""
    hold = OpenHold(row.id, row.member_id, row.points, row.status, row.expires_at,
                    [(r.lot_id, r.points, r.lot_expires_at) for r in reserved if r.hold_id == row.id])
    entry = journal.entry("hold_expiry", row.points, partner_id=row.partner_id, member_id=row.member_id,
                          hold_id=row.id)
    # resolved first: a balance answered while it is released (the expiry of points it held past their
    # lot's date) must not apply it again as a hold past its timeout still open
    journal.resolve_hold({"id": row.id, "status": "expired", "captured_points": 0,
                          "resolved_entry_id": entry["id"]})
    release_hold(journal, hold, entry, 0)
    entry["result"] = {"entry_id": entry["id"], "kind": "hold_expiry", "hold_id": row.id,
                       "member_id": row.member_id, "points": row.points,
                       "balance": journal.members[row.member_id].balance()}
    return entry


def release_lapsed_holds(journal: Journal, member_id: str, *, skip=lambda hold_id: False) -> tuple[list[str], list]:
    """Release, as the hold-timeout job would (``expire_hold``: a ``hold_expiry`` entry each, for the
    hold's partner), the member's holds that timed out but that the job has not reached yet (but those
    ``skip`` names), so that what takes the member's points — a spend that falls short, an earn
    reversal, an operator's debit adjustment — sees them (docs/ledger.md, decision 7). The member's
    lock must be held: a capture or the job resolves a hold under it. The lots the holds reserve join
    ``journal.lots``; the caller expires what is due among them. Returns the ids of the holds released
    and the lots read for them that the journal did not hold yet."""
    tx = journal.tx
    holds_t, hold_lots_t = Hold.__table__, HoldLot.__table__
    rows = [row for row in tx.session.execute(
        select(holds_t).where(holds_t.c.member_id == member_id, holds_t.c.status == literal_column("'open'"),
                              holds_t.c.expires_at <= tx.now)
        .order_by(holds_t.c.expires_at, holds_t.c.id)).all() if not skip(row.id)]
    if not rows:
        return [], []
    reserved = tx.session.execute(select(hold_lots_t).where(hold_lots_t.c.hold_id.in_([row.id for row in rows]))
                                  .order_by(hold_lots_t.c.hold_id, hold_lots_t.c.seq)).all()
    missing = {r.lot_id for r in reserved} - journal.lots.keys()
    loaded = list(load_lots(tx, lot_ids=missing).values()) if missing else []
    journal.lots.update((lot.id, lot) for lot in loaded)
    for row in rows:
        expire_hold(journal, row, reserved)
    return [row.id for row in rows], loaded


def release_hold(journal: Journal, hold: OpenHold, entry: dict, captured: int, redeem=None) -> None:
    """Capture ``captured`` points of a hold from its lots in reservation order; release the rest.

    Released points keep the expiry their lot had when they were reserved: if that has passed but the
    lot has since been given a reversal's grace (only the returned points get it), they expire now.
    (Where the lot itself is still past its expiry, the caller's ``expire_due`` takes them.)"""
    now = journal.tx.now
    left, lapsed = captured, []
    for lot_id, reserved, expired_at in hold.lots:
        lot = journal.lots[lot_id]
        take = min(reserved, left)
        journal.reserve(lot, -reserved)
        if take:
            journal.move(entry, lot, take)
            redeem(entry, lot, take)
            left -= take
        if reserved > take and expired_at is not None and expired_at <= now < lot.expires_at:
            lapsed.append((lot, reserved - take))
    member = journal.members[hold.member_id]
    if hold.points - captured:
        journal.transfer(entry, f"member:{member.id}:held", f"member:{member.id}", hold.points - captured)
    member.change(available=hold.points - captured, held=-hold.points)
    if lapsed:
        expiry.forfeit_points(journal, member, lapsed)


def post_events(tx: Tx, partner_id: str, events: list[Event]) -> list[dict | PointsnetError]:
    """Apply a partner's events in order; one outcome per event (a result, or the refusal)."""
    return Posting(tx, partner_id, events).run()


def quote_earn(tx: Tx, partner_id: str, event: Event) -> dict:
    """What an earn with this content would award now, computed exactly as the earn will, posting nothing."""
    posting = Posting(tx, partner_id, [event], quote=True)
    posting._validate(event)
    row = posting._stored_by_reference([event.reference]).get(event.reference)
    if row is not None:  # in the earn's order: a reference already used answers before anything else
        outcome = posting._stored_outcome(event, row)
        if isinstance(outcome, PointsnetError):
            raise outcome
        paid = outcome.get("referral_bonus")  # the bonus that earn paid, as its answer again names it
        return {**_quote_of_posted(tx, posting, outcome),
                "referral_bonus": {"points": paid["points"], "funded_by": paid["funded_by"]} if paid else None}
    posting._require_active()  # refused in the earn's order: the partner, then the member
    posting.linked.update(tx.session.execute(select(MemberLink.member_id).where(
        MemberLink.partner_id == partner_id, MemberLink.member_id == event.member_id)).scalars())
    # the member as the earn's lock finds it (active, not merged into another), read without a lock
    member = tx.session.execute(select(Member.status, Member.merged_into).where(
        Member.id == event.member_id)).one_or_none()
    if (event.member_id not in posting.linked or member is None or member.status != "active"
            or member.merged_into is not None):
        if event.member_id in posting.linked and member is not None and member.status == "erased":
            raise MemberErased(f"member {event.member_id} was erased; it can no longer earn or spend points")
        raise UnknownMember(f"no member {event.member_id} linked to this partner")
    version = tx.session.execute(select(Contract.version).where(Contract.id == posting.terms.contract_id)).scalar_one()
    _, _, evaluation, _ = posting._earn_checks(event, event.member_id)  # the earn's own refusals, read only
    # the referrer's bonus the earn would pay (and its checks above refused for): Referrals.bonus_due, read only
    bonus = posting.programme.referral_bonus(event, event.member_id)
    if evaluation is None:
        lines = [{"rule": "explicit", "description": "points given in the request", "points": event.points,
                  "funded_by": "partner"}]
        rules = {}
    else:
        lines = [{"rule": l.rule, "description": l.description, "points": l.points, "funded_by": l.funded_by}
                 for l in evaluation.lines]
        rules = posting._rule_versions
    return {"member_id": event.member_id, "points": sum(line["points"] for line in lines),
            "contract_version": version, "rules": rules, "breakdown": lines,
            "referral_bonus": {"points": bonus[0], "funded_by": bonus[1]} if bonus is not None else None}


def _quote_of_posted(tx: Tx, posting: Posting, result: dict) -> dict:
    """The quote of an earn already posted under this reference with the same content: what that earn
    awarded (the earn answers its result again and awards nothing more), whatever the rules say now."""
    version = tx.session.execute(select(Contract.version).join(Lot, Lot.contract_id == Contract.id).where(
        Lot.entry_id == result["entry_id"]).limit(1)).scalar_one_or_none()
    if version is None:  # only network-funded points: no contract of yours in the lots
        version = tx.session.execute(select(Contract.version).where(
            Contract.id == posting.terms.contract_id)).scalar_one()
    lines = result.get("breakdown") or [{"rule": "explicit", "description": "points given in the request",
                                         "points": result["points"], "funded_by": "partner"}]
    return {"member_id": result["member_id"], "points": result["points"], "contract_version": version,
            "rules": result.get("rules") or {}, "breakdown": lines}
