"""Dashboard pages, one module per area; ROUTERS lists them in the order they are mounted."""

from services.dashboard.views import (approvals, audit, ledger, members, my_partner, overview, partners, reports,
                                     session, settlement, users)

ROUTERS = [session, overview, approvals, audit, users, partners, members, ledger, settlement, reports, my_partner]
