"""A unit of work that meets a unique violation is retried: a concurrent twin committed the row first,
and the retry finds it. Units that share many keys (batches of one partner reusing references) can lose
to one twin after another, each time on another key: they are retried while each violation names a key
not met before. A unit that violates the same key each time fails after two retries, so a defect that
writes a duplicate is seen rather than retried for ever."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from shared.db.types import new_id
from shared.ledger.events import Event
from shared.models import Partner
from tests.factories import make_member, make_partner, verify_ok
from tests.ledger.test_concurrency_pg import run_together


def _partner_named(name: str):
    def unit(tx):
        tx.session.execute(insert(Partner.__table__).values(id=new_id("ptn"), name=name, status="active",
                                                            created_at=tx.now))
    return unit


@pytest.mark.postgres
def test_violations_of_one_key_after_another_are_retried_until_the_unit_commits(network):
    for n in range(1, 5):
        make_partner(network, f"Taken {n}")
    tries = []

    def unit(tx):
        tries.append(len(tries) + 1)
        name = f"Taken {len(tries)}" if len(tries) <= 4 else "Free"
        _partner_named(name)(tx)
    network.tx(unit)
    assert tries == [1, 2, 3, 4, 5]  # four violations, each of another name, then the commit


def test_violations_of_the_same_key_fail_after_two_retries(network):
    make_partner(network, "Taken")
    tries = []

    def unit(tx):
        tries.append(1)
        _partner_named("Taken")(tx)
    with pytest.raises(IntegrityError):
        network.tx(unit)
    assert len(tries) == 3


@pytest.mark.postgres
def test_concurrent_batches_reusing_references_answer_conflicts_never_an_error(network):
    """Eight batches of one partner at once, each for its own member, their references drawn from one
    pool (two tills with overlapping order numbers): every batch commits; an event whose reference another
    batch took first is refused as reference_conflict, never the batch as an error."""
    partner = make_partner(network)
    members = [make_member(network, partner) for _ in range(8)]
    draw = random.Random(20261206)
    references = [draw.sample(range(400), 150) for _ in members]

    def batch(i):
        return network.post(partner, [Event("earn", f"ref-{n}", members[i], points=1) for n in references[i]])
    outcomes = run_together(len(members), batch)
    errors = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    assert errors == [], errors
    codes = {getattr(result, "code", "posted") for outcome in outcomes for result in outcome
             if not isinstance(result, dict)}
    assert codes <= {"reference_conflict"}, codes
    posted = sum(1 for outcome in outcomes for result in outcome if isinstance(result, dict))
    assert posted == len(set().union(*map(set, references)))  # each reference posted once
    verify_ok(network)
