"""Every refusal the network can give, each with a stable machine-readable code.

PointsnetError
 ├── ValidationFailed (422)
 │    ├── InvalidPoints            invalid_points
 │    ├── InvalidAmount            invalid_amount
 │    ├── OccurredAtOutOfRange     occurred_at_out_of_range
 │    ├── InvalidContact           invalid_contact
 │    ├── NothingToEarn            nothing_to_earn
 │    ├── IdempotencyKeyReused     idempotency_key_reused
 │    ├── UnknownActivity          unknown_activity
 │    └── BatchTooLarge            batch_too_large
 ├── NotFound (404)
 │    ├── UnknownPartner           unknown_partner
 │    ├── UnknownMember            unknown_member
 │    ├── UnknownHold              unknown_hold
 │    └── UnknownReference         unknown_reference
 └── Conflict (409)
      ├── InsufficientPoints       insufficient_points
      ├── PointsAlreadySpent       points_already_spent
      ├── ReversalExceedsRemaining reversal_exceeds_remaining
      ├── CaptureExceedsHold       capture_exceeds_hold
      ├── HoldNotOpen              hold_not_open
      ├── NotReversible            not_reversible
      ├── ReferenceConflict        reference_conflict
      ├── RequestInProgress        request_in_progress
      ├── ConsentRequired          consent_required
      ├── InvalidLinkToken         invalid_link_token
      ├── PartnerSuspended         partner_suspended (403)
      ├── CycleClosed              cycle_closed
      ├── ActivityCapReached       activity_cap_reached
      ├── VelocityLimitExceeded    velocity_limit_exceeded (422)
      ├── ContractNotAtBoundary    contract_not_at_boundary
      ├── MemberErased             member_erased
      └── HoldsOpen                holds_open (erasure; a consent withdrawn with the partner's holds open)
"""

from __future__ import annotations

from typing import Any


class PointsnetError(Exception):
    status = 400
    code = "error"
    title = "Request refused"
    retry_after: int | None = None  # seconds: sent as the answer's Retry-After header

    def __init__(self, detail: str, **extra: Any):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def to_problem(self) -> dict[str, Any]:
        """RFC 9457 problem details body."""
        body = {
            "type": f"https://pointsnet.dev/problems/{self.code.replace('_', '-')}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }
        body.update(self.extra)
        return body


class ValidationFailed(PointsnetError):
    status, code, title = 422, "validation_failed", "Invalid request"


class InvalidPoints(ValidationFailed):
    code, title = "invalid_points", "Points must be a positive integer"


class InvalidAmount(ValidationFailed):
    code, title = "invalid_amount", "Invalid amount"


class OccurredAtOutOfRange(ValidationFailed):
    code, title = "occurred_at_out_of_range", "occurred_at outside the accepted window"


class InvalidContact(ValidationFailed):
    code, title = "invalid_contact", "Invalid phone number or email"


class NothingToEarn(ValidationFailed):
    code, title = "nothing_to_earn", "The purchase earns no points"


class IdempotencyKeyReused(ValidationFailed):
    code, title = "idempotency_key_reused", "Idempotency key reused with a different request"


class BatchTooLarge(ValidationFailed):
    code, title = "batch_too_large", "Too many events in one batch"


class UnknownActivity(ValidationFailed):
    code, title = "unknown_activity", "No such activity in the partner's earn rules"


class NotFound(PointsnetError):
    status, code, title = 404, "not_found", "Not found"


class UnknownPartner(NotFound):
    code, title = "unknown_partner", "Unknown partner"


class UnknownMember(NotFound):
    code, title = "unknown_member", "Unknown member"


class UnknownHold(NotFound):
    code, title = "unknown_hold", "Unknown hold"


class UnknownReference(NotFound):
    code, title = "unknown_reference", "Unknown reference"


class Conflict(PointsnetError):
    status, code, title = 409, "conflict", "Conflict"


class InsufficientPoints(Conflict):
    code, title = "insufficient_points", "Not enough points"


class PointsAlreadySpent(Conflict):
    code, title = "points_already_spent", "Points of this earn were already spent"


class ReversalExceedsRemaining(Conflict):
    code, title = "reversal_exceeds_remaining", "More points than remain to be reversed"


class CaptureExceedsHold(Conflict):
    code, title = "capture_exceeds_hold", "Capture exceeds the held points"


class HoldNotOpen(Conflict):
    code, title = "hold_not_open", "The hold is already resolved"


class NotReversible(Conflict):
    code, title = "not_reversible", "This entry cannot be reversed"


class ReferenceConflict(Conflict):
    code, title = "reference_conflict", "Reference already used for a different request"


class RequestInProgress(Conflict):
    code, title = "request_in_progress", "A request with this idempotency key is still running"
    retry_after = 1


class ConsentRequired(Conflict):
    code, title = "consent_required", "Member enrolled elsewhere: a link token is required"


class CustomerRefTaken(Conflict):
    code, title = "customer_ref_taken", "Your customer id is already linked to another member"


class InvalidLinkToken(Conflict):
    code, title = "invalid_link_token", "Link token unknown, used or expired"


class PartnerSuspended(Conflict):
    status, code, title = 403, "partner_suspended", "Partner is suspended"


class CycleClosed(Conflict):
    code, title = "cycle_closed", "The settlement cycle is closed"


class ActivityCapReached(Conflict):
    code, title = "activity_cap_reached", "The member has reached this activity's cap"


class VelocityLimitExceeded(Conflict):
    """A business refusal like the other conflicts (so its outcome is stored for the Idempotency-Key),
    answered 422: the request is well formed but over a daily limit; retrying it the same day fails
    again, so it is deliberately not 429, which clients retry."""

    status, code, title = 422, "velocity_limit_exceeded", "Daily velocity limit exceeded"


class ContractNotAtBoundary(Conflict):
    code, title = "contract_not_at_boundary", "Contract changes take effect at a future cycle boundary"


class MemberErased(Conflict):
    """The member's personal data was erased: its id stays in the ledger, but nothing posts to it again."""

    code, title = "member_erased", "The member was erased"


class HoldsOpen(Conflict):
    """Open holds block the request: an erasure (any partner's holds of the member) or a member's consent
    withdrawn from one partner (that partner's holds of the member: ``POST /v1/members/{id}/unlink``,
    ``pointsnet members unlink``). Capture or void them first; ``open_holds`` says how many."""

    code, title = "holds_open", "The member has open holds"
