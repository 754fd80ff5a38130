"""Dashboard users (operators only): who has access, and signing someone out everywhere."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse

from services.dashboard.paging import Paging, page_of, paging
from services.dashboard.render import page
from services.dashboard.security import checked_form, network_of, require
from shared.access import audit, sessions, users
from shared.access.errors import UnknownUser
from shared.models import StaffUser

router = APIRouter()


@router.get("/users")
def users_page(request: Request, paged: Paging = Depends(paging), staff=Depends(require("operator"))):
    rows, total = network_of(request).tx(
        lambda tx: users.users_page(tx, offset=paged.offset, limit=paged.limit), readonly=True)
    return page(request, "users.html", users=page_of(rows, total, paged))


@router.post("/users/{user_id}/sign-out")
def sign_out_everywhere(request: Request, user_id: str = Path(..., max_length=40),
                        checked=Depends(checked_form("operator"))):
    staff, _form = checked

    def unit(tx):
        if tx.session.get(StaffUser, user_id) is None:  # no one to sign out: refused, not audited
            raise UnknownUser(f"no dashboard user {user_id}")
        ended = sessions.revoke_user(tx, user_id)
        audit.record(tx, staff, "user.sessions_revoked", user_id, sessions=ended)

    network_of(request).tx(unit)
    return RedirectResponse((request.scope.get("root_path") or "") + "/users", status_code=303)
