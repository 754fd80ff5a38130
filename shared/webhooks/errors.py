"""Refusals of the webhook service (they join the one error tree in shared/errors.py)."""

from shared.errors import Conflict, NotFound, ValidationFailed


class InvalidWebhookUrl(ValidationFailed):
    code, title = "invalid_webhook_url", "The webhook URL is not acceptable"


class UnknownWebhookEndpoint(NotFound):
    code, title = "unknown_webhook_endpoint", "The partner has no webhook endpoint"


class UnknownDelivery(NotFound):
    code, title = "unknown_delivery", "No such webhook delivery"


class UnknownEventType(ValidationFailed):
    code, title = "unknown_event_type", "Not a webhook event type"


class DeliveryPending(Conflict):
    code, title = "delivery_pending", "The delivery is being sent right now: replay it once its attempt is recorded"


class EndpointDisabled(Conflict):
    code, title = "endpoint_disabled", "The delivery's webhook endpoint is disabled: nothing would be sent"


class RotationOverlapRunning(Conflict):
    code, title = "rotation_overlap_running", "The previous webhook secret's overlap is still running"


class MemberNotLinked(Conflict):
    code, title = "member_not_linked", ("The delivery names a member no longer linked to its partner, or erased "
                                        "(or is a member.unlinked the member has undone by linking again): it is "
                                        "not sent again")


class DeliveryCancelled(Conflict):
    code, title = "delivery_cancelled", "The delivery was cancelled: it is never sent"
