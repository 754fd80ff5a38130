"""Refusals of the dashboard's access layer, each with a stable code."""

from __future__ import annotations

from shared.errors import Conflict, NotFound, PointsnetError, ValidationFailed


class NotSignedIn(PointsnetError):
    status, code, title = 401, "not_signed_in", "Sign in first"


class Forbidden(PointsnetError):
    status, code, title = 403, "forbidden", "Your role does not allow this"


class CsrfRejected(PointsnetError):
    status, code, title = 403, "csrf_rejected", "The form is stale or was not sent by this dashboard"


class LoginThrottled(PointsnetError):
    status, code, title = 429, "login_throttled", "Too many failed sign-ins"


class InvalidUser(ValidationFailed):
    code, title = "invalid_user", "Invalid user"


class NotPending(Conflict):
    code, title = "action_not_pending", "The action was already decided"


class SameOperator(Conflict):
    code, title = "four_eyes_required", "A second operator must approve this"


class AlreadyPending(Conflict):
    code, title = "approval_already_pending", "The same request is already waiting for a second operator"


class AlreadyDone(Conflict):
    code, title = "request_already_done", "The same request was already done"


class UnknownUser(NotFound):
    code, title = "unknown_user", "No such dashboard user"
