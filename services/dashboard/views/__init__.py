"""Dashboard pages, one module per area; ROUTERS lists them in the order they are mounted."""

from services.dashboard.views import approvals, audit, ledger, my_partner, overview, reports, session, settlement, users

ROUTERS = [session, overview, approvals, audit, users, ledger, settlement, reports, my_partner]
