"""Request and response bodies of the partner API (v1). Unknown fields are refused."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import (AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, ValidationError,
                      field_validator, model_validator)
from pydantic_core import InitErrorDetails, PydanticCustomError

from shared.ledger.posting import MAX_BATCH

# What a reference may hold (docs/partner-integration.md, section 5): 1 to 128 characters, none of them a
# control character (U+0000 to U+001F, U+007F): references are printed in settlement files, one per line.
# The ledger refuses them too (shared/ledger/posting.py); here they are a schema refusal, 422
# validation_failed naming the field, so a batch holding one is refused whole, as any event that does
# not match the API.
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"


def _no_control_characters(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise PydanticCustomError("control_character", "must not contain control characters (U+0000 to U+001F, "
                                  "U+007F: tabs, line breaks, ...)")
    return value


ReferenceText = Annotated[str, Field(min_length=1, max_length=128, json_schema_extra={
    "pattern": NO_CONTROL_CHARACTERS}), AfterValidator(_no_control_characters)]
Reference = Field(description="The partner's own unique id for this operation: 1 to 128 characters, no control "
                              "characters.")
Points = Field(gt=0, le=10**12, description="Whole points.")
# Bounds of what a till sends (docs/partner-integration.md, section 5): beyond them a request is a schema
# refusal (422 validation_failed), never an integer the database cannot store.
MAX_AMOUNT = 10**15  # minor units: ten trillion yuan in fen
MAX_QUANTITY = 10**6


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnrolRequest(Strict):
    """Enrol a new member (phone and/or email), or link an existing one with its link token."""

    phone: str | None = Field(None, max_length=32, examples=["+8613800138000"])
    email: str | None = Field(None, max_length=254, examples=["li.lei@example.com"])
    name: str | None = Field(None, max_length=200)
    customer_ref: str | None = Field(None, min_length=1, max_length=128,
                                     description="Your own customer id for this member.")
    link_token: str | None = Field(None, max_length=200,
                                   description="Token the member got from a partner it is linked to (consent).")
    referrer_member_id: str | None = Field(None, min_length=1, max_length=40,
                                           description="The member who referred this new member (referral bonus).")

    @model_validator(mode="after")
    def _something(self):
        if not (self.phone or self.email or self.link_token):
            raise ValueError("give a phone, an email or a link_token")
        return self


class Balance(BaseModel):
    available: int
    held: int


class MemberEnrolled(BaseModel):
    member_id: str
    created: bool
    linked: bool
    balance: Balance


class LinkToken(BaseModel):
    link_token: str
    expires_at: AwareDatetime


class MemberUnlinked(BaseModel):
    """The member withdrew its consent from you: it is no longer linked to you."""

    member_id: str
    linked: Literal[False]


class Expiring(BaseModel):
    points: int
    expires_at: AwareDatetime


class MemberView(BaseModel):
    member_id: str
    balance: Balance
    held: int
    tier: str | None = Field(None, description="Member tier (e.g. regular, silver, gold); null when the network "
                                                "runs without tiers.")
    expiring_soon: list[Expiring]


class Item(Strict):
    sku: str = Field(min_length=1, max_length=64)
    category: str | None = Field(None, max_length=64)
    amount: StrictInt = Field(ge=0, le=MAX_AMOUNT, description="Line amount in minor units.")
    quantity: StrictInt = Field(1, ge=1, le=MAX_QUANTITY)


class EarnRequest(Strict):
    member_id: str = Field(min_length=1, max_length=40)
    reference: ReferenceText = Reference
    amount: StrictInt | None = Field(None, ge=0, le=MAX_AMOUNT, description="Purchase amount in minor units (fen).")
    currency: str | None = Field(None, min_length=3, max_length=3, examples=["CNY"])
    items: list[Item] | None = Field(None, max_length=500)
    points: StrictInt | None = Field(None, gt=0, le=10**12, description="Explicit points instead of the rules.")
    occurred_at: AwareDatetime | None = Field(None, description="When it happened at the till (RFC 3339).")

    @model_validator(mode="after")
    def _amount_or_points(self):
        if self.amount is None and self.points is None:
            raise ValueError("give an amount or explicit points")
        return self


class ActivityRequest(Strict):
    member_id: str = Field(min_length=1, max_length=40)
    activity: str = Field(min_length=1, max_length=64, description="An activity name from your earn rules.")
    reference: ReferenceText = Reference
    occurred_at: AwareDatetime | None = Field(None, description="When the member did it (RFC 3339).")


class ReferralBonusOut(BaseModel):
    transaction_id: str
    points: int
    funded_by: Literal["partner", "network"]


class BurnRequest(Strict):
    member_id: str = Field(min_length=1, max_length=40)
    reference: ReferenceText = Reference
    points: StrictInt = Points
    occurred_at: AwareDatetime | None = None


class HoldRequest(BurnRequest):
    pass


class CaptureRequest(Strict):
    reference: ReferenceText | None = Field(None, description="Needed if you may later reverse this capture.")
    points: StrictInt | None = Field(None, gt=0, le=10**12, description="Default: everything held.")


class VoidRequest(Strict):
    reference: ReferenceText | None = None


class ReversalRequest(Strict):
    reference: ReferenceText = Reference
    original_reference: ReferenceText
    points: StrictInt | None = Field(None, gt=0, le=10**12, description=(
        "Default: everything not yet reversed. For an earn, that is the earn's points less earlier reversals, "
        "refused with 409 `points_already_spent` if the member has spent some or some are under an open hold (its "
        "`remaining` is what can still be reversed: send that as `points`; `held`: the earn's points under an open "
        "hold, reversible once it is voided or times out). For a burn or capture: everything not yet returned."))


# The single call each batch event type is: an event takes that call's fields, and no other.
SINGLE_CALLS: dict[str, type[Strict]] = {"earn": EarnRequest, "burn": BurnRequest, "reversal": ReversalRequest}


class BatchEvent(Strict):
    """An earn, burn or reversal with the fields and bounds of its single call (POST /v1/earn, /v1/burn,
    /v1/reversals); a field its type does not take is refused as that call refuses it."""

    type: Literal["earn", "burn", "reversal"]
    reference: ReferenceText = Reference
    member_id: str | None = Field(None, min_length=1, max_length=40, description="Earns and burns.")
    amount: StrictInt | None = Field(None, ge=0, le=MAX_AMOUNT, description="Earns.")
    currency: str | None = Field(None, min_length=3, max_length=3, description="Earns.")
    items: list[Item] | None = Field(None, max_length=500, description="An earn's item lines, as in POST /v1/earn.")
    points: StrictInt | None = Field(None, gt=0, le=10**12)
    original_reference: ReferenceText | None = Field(None, description="Reversals.")
    occurred_at: AwareDatetime | None = Field(None, description="Earns and burns.")

    @model_validator(mode="after")
    def _only_its_single_calls_fields(self):
        """Each field given (even as null) that the type's single call does not take: ``extra_forbidden`` at
        its name, as that call's model answers, so the batch is refused whole naming ``events.N.<field>``."""
        takes = SINGLE_CALLS[self.type].model_fields
        given = [name for name in type(self).model_fields
                 if name in self.model_fields_set and name != "type" and name not in takes]
        if given:
            raise ValidationError.from_exception_data(type(self).__name__, [InitErrorDetails(
                type=PydanticCustomError("extra_forbidden", "Extra inputs are not permitted: {field} {belong} to "
                                         "{kinds}, not to a {type}", _taken_by(name, self.type)),
                loc=(name,), input=getattr(self, name)) for name in given])
        return self


def _taken_by(name: str, kind: str) -> dict:
    kinds = [f"{other}s" for other, model in SINGLE_CALLS.items() if name in model.model_fields]
    return {"field": name, "belong": "belong" if name.endswith("s") else "belongs",
            "kinds": " and ".join(kinds), "type": kind}


class BatchRequest(Strict):
    events: list[BatchEvent] = Field(min_length=1, json_schema_extra={"maxItems": MAX_BATCH})

    @field_validator("events", mode="before")
    @classmethod
    def _at_most_max_batch(cls, events):
        """Too many events is the documented 422 ``batch_too_large`` (services/partner_api/app.py), not a
        ``validation_failed``: a client splits its file on that code. Counted before any event is read."""
        if isinstance(events, list) and len(events) > MAX_BATCH:
            raise PydanticCustomError("batch_too_large", "a batch holds at most {limit} events, this one has {count}",
                                      {"limit": MAX_BATCH, "count": len(events)})
        return events


class LotOut(BaseModel):
    lot_id: str
    points: int
    expires_at: AwareDatetime
    funded_by: str


class Consumed(BaseModel):
    lot_id: str
    points: int


class QuoteLine(BaseModel):
    rule: str = Field(description="base_rate, campaign:<id>, minimum_spend or explicit")
    description: str
    points: int
    funded_by: Literal["partner", "network"]


class RuleVersions(BaseModel):
    partner: int | None = None
    network: int | None = None


class LedgerResult(BaseModel):
    """Every success carries the ledger transaction id, the member's id and its new balance (both null for
    a member the partner is no longer linked to: a reversal, capture or void of its own after the member
    withdrew its consent)."""

    transaction_id: str
    kind: str
    reference: str | None
    member_id: str | None = Field(description="null when the member is no longer linked to you (it withdrew its "
                                  "consent): not yours to see, as in `GET /v1/transactions`")
    points: int
    posted_at: AwareDatetime
    cycle_date: date
    balance: Balance | None = Field(description="the member's balance right after; null when the member is "
                                    "no longer linked to you (it withdrew its consent): not yours to see")
    lots: list[LotOut] | None = None
    consumed: list[Consumed] | None = None
    hold_id: str | None = None
    expires_at: AwareDatetime | None = None
    captured: int | None = None
    released: int | None = None
    original_reference: str | None = None
    reversible_remaining: int | None = None
    breakdown: list[QuoteLine] | None = Field(None, description="earns computed by the rules: which rule gave what")
    rules: RuleVersions | None = Field(None, description="the rule versions an earn used")
    activity: str | None = Field(None, description="activity awards: the activity's name")
    referral_bonus: ReferralBonusOut | None = Field(
        None, description="the referrer's bonus this earn triggered (the referee's first qualifying earn)")


class Problem(BaseModel):
    """RFC 9457 problem details with a stable machine-readable code."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    code: str
    detail: str


class BatchOutcome(BaseModel):
    index: int
    reference: str
    status: int
    result: LedgerResult | None = None
    problem: Problem | None = None


class BatchResult(BaseModel):
    accepted: int
    refused: int
    results: list[BatchOutcome]


class QuoteReferralBonus(BaseModel):
    points: int
    funded_by: Literal["partner", "network"]


class Quote(BaseModel):
    member_id: str
    points: int
    contract_version: int
    rules: RuleVersions
    breakdown: list[QuoteLine]
    referral_bonus: QuoteReferralBonus | None = Field(
        None, description="the referrer's bonus the earn with this body would pay (the referee's first qualifying "
                          "earn: the earn's `referral_bonus`, without `transaction_id` since nothing is posted); "
                          "null when it would pay none")


class Movement(BaseModel):
    transaction_id: str
    kind: str
    points: int
    available_change: int
    held_change: int
    posted_at: AwareDatetime
    partner: str | None


class History(BaseModel):
    member_id: str
    movements: list[Movement]
    next_cursor: str | None


class Transaction(BaseModel):
    transaction_id: str
    kind: str
    reference: str | None
    member_id: str | None
    points: int
    posted_at: AwareDatetime
    cycle_date: date
    original_transaction_id: str | None
    hold_id: str | None = Field(description="The hold this entry is about: the hold itself (`hold`), or the one it "
                                            "resolved (`capture`, `void`, `hold_expiry` — a timeout, which carries "
                                            "no reference); null for every other kind.")


class Transactions(BaseModel):
    transactions: list[Transaction]
    next_cursor: str | None


class NetworkKeys(BaseModel):
    keys: list[dict]


class StatementSummary(BaseModel):
    cycle_date: date
    net_minor: int = Field(description="Positive: you receive; negative: you pay (minor units).")
    from_float_minor: int = Field(0, description="The part of the net your prepaid float settles (your cycle's "
                                                 "prepaid funding; 0 without a float).")
    by_bank_minor: int = Field(description="What moves by bank: net + from float. Positive: you receive.")
    payment_date: date
    status: str
    paid_minor: int = Field(description="The bank transfers recorded against it so far, the by-bank amount's sign "
                                        "aside (minor units): all of it once paid or received; 0 with nothing by bank.")
    outstanding_minor: int = Field(description="What is still to move by bank: the by-bank amount, its sign aside, "
                                               "less paid_minor; 0 once paid or received.")


class Statements(BaseModel):
    statements: list[StatementSummary]
    next_cursor: str | None


class Statement(StatementSummary):
    statement_sha256: str
    statement_csv: str


class CheckpointView(BaseModel):
    tree_size: int = Field(description="Leaves (sealed entries) in the tree this checkpoint signs.")
    root_hash: str = Field(description="Base64 RFC 9162 root hash of the tree.")
    created_at: str = Field(description="When the network signed it (UTC).")
    note: str = Field(description="The checkpoint as a C2SP signed note (docs/verifiable-ledger.md).")


class InclusionProof(BaseModel):
    transaction_id: str
    leaf_index: int
    tree_size: int
    leaf_hash: str = Field(description="Base64 SHA-256(0x00 || leaf_data).")
    leaf_data: str | None = Field(description="Base64 canonical encoding of the transaction with its postings, "
                                              "lot consumptions, lots and obligation lines; null when it names a "
                                              "member not linked to you (not yours to see, as `member_id` in "
                                              "`GET /v1/transactions`): `leaf_hash` and the path still prove the "
                                              "leaf is in the signed tree.")
    inclusion_path: list[str] = Field(description="Base64 RFC 9162 inclusion proof, from the leaf upwards.")
    checkpoint: CheckpointView


class ConsistencyProof(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_size: int = Field(alias="from")
    to_size: int = Field(alias="to")
    consistency_path: list[str] = Field(description="Base64 RFC 9162 consistency proof.")
