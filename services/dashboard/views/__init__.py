"""Dashboard pages, one module per area; ROUTERS lists them in the order they are mounted."""

from services.dashboard.views import approvals, audit, members, overview, partners, session, users

ROUTERS = [session, overview, approvals, audit, users, partners, members]
