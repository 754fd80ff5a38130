"""What a request on the Approvals page is about, as a checker reads it: the partner's name beside
its id, and for a "mark paid" (settlement_paid) the amount that moves by bank and which way — who pays
whom — before and after it is approved. The amount is the request's own when it names one; with the
amount blank (the whole outstanding) what is outstanding of the settlement now, until it is approved,
and then what it recorded (its outcome's ``amount_minor``). The raw parameters stay on the page beside it."""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import and_, or_, select

from shared.db.database import Tx
from shared.models import Settlement
from shared.settlement import positions
from shared.settlement.files import NETWORK
from shared.settlement.finance import amounts, paid_sums

PARTNERS = "partners"  # the other side of the network's own settlement: the partners, together (no partner's id)
PARTNER_ACTIONS = {"contract_change": "partner_id", "partner_suspension": "partner_id", "settlement_paid": "party"}


def details_of(tx: Tx, rows: list[dict]) -> dict[int, dict]:
    """Request id -> what the page shows of it (only requests about a partner or a payment)."""
    partner_of = {r["id"]: str(r["params"].get(PARTNER_ACTIONS[r["action"]]) or "")
                  for r in rows if r["action"] in PARTNER_ACTIONS and isinstance(r["params"], dict)}
    names = positions.names_of(tx, partner_of.values())
    payments = _payments(tx, [r for r in rows if r["action"] == "settlement_paid" and r["id"] in partner_of])
    details: dict[int, dict] = {}
    for row in rows:
        if row["id"] not in partner_of:
            continue
        party = partner_of[row["id"]]
        detail = {"partner_id": party, "partner_name": names.get(party)}
        if row["action"] == "settlement_paid":
            detail |= _payment(row, party, payments)
        details[row["id"]] = detail
    return details


def _cycle(row: dict) -> date | None:
    try:
        return date.fromisoformat(str(row["params"].get("cycle_date")))
    except ValueError:
        return None


def _payments(tx: Tx, rows: list[dict]) -> dict[tuple[date, str], tuple[int, int]]:
    """(cycle, party) -> the settlement's by-bank amount (receives +, pays −) and what is outstanding of it
    now (its payments recorded so far aside), for these requests."""
    wanted = {(cycle, str(r["params"].get("party"))) for r in rows if (cycle := _cycle(r)) is not None}
    if not wanted:
        return {}
    which = or_(*[and_(Settlement.cycle_date == cycle, Settlement.party == party) for cycle, party in sorted(wanted)])
    found = tx.session.execute(select(Settlement.cycle_date, Settlement.party, Settlement.by_bank_minor,
                                      Settlement.status).where(which))
    paid = paid_sums(tx, which)
    return {(cycle, party): (int(by_bank), amounts(status, int(by_bank), paid.get((cycle, party), 0))
                             ["outstanding_minor"]) for cycle, party, by_bank, status in found}


def _minor(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _payment(row: dict, party: str, payments: dict[tuple[date, str], tuple[int, int]]) -> dict:
    outcome = _outcome(row)
    by_bank, outstanding = payments.get((_cycle(row), party), (None, None))
    by_bank = outcome.get("by_bank_minor", by_bank)
    if not isinstance(by_bank, int):
        return {"cycle_date": row["params"].get("cycle_date"), "bank_reference": row["params"].get("bank_reference")}
    pays = by_bank < 0
    asked = _minor(row["params"].get("amount_minor"))  # part of it (none: the whole amount outstanding)
    status = outcome.get("status")
    whole = False
    if outcome:  # approved: what it recorded (an outcome from before payments in parts: the whole by-bank amount)
        amount = _minor(outcome.get("amount_minor")) or asked or abs(by_bank)
    elif asked is not None:
        amount = asked
    else:  # the whole outstanding, as it stands now (less than the by-bank amount once a part is paid)
        amount, whole = outstanding if outstanding is not None else abs(by_bank), True
    # a partner settles with the network; the network's own row with the partners (it pays out or takes in
    # what they pay or receive by bank), never with itself
    other = PARTNERS if party == NETWORK else NETWORK
    return {"cycle_date": row["params"].get("cycle_date"), "bank_reference": row["params"].get("bank_reference"),
            "by_bank_minor": by_bank, "amount_minor": amount, "whole_outstanding": whole,
            "payer": party if pays else other, "payee": other if pays else party,
            "outcome_status": "partly_paid" if status == "due" else status}


def outcomes_of(rows: list[dict]) -> dict[int, dict]:
    """Request id -> its recorded outcome read from JSON (what was posted, or the refusal's code and
    detail), for the page's summary of it; a request without one, or with one not a JSON object, is left out."""
    found = {}
    for row in rows:
        try:
            outcome = json.loads(row["outcome"]) if row.get("outcome") else None
        except ValueError:
            continue
        if isinstance(outcome, dict):
            found[row["id"]] = outcome
    return found


def _outcome(row: dict) -> dict:
    """An approved payment's recorded outcome (status, by_bank_minor), or nothing."""
    if row.get("status") != "approved" or not row.get("outcome"):
        return {}
    try:
        outcome = json.loads(row["outcome"])
    except ValueError:
        return {}
    return outcome if isinstance(outcome, dict) else {}
