"""Who may use the dashboard and what they did there: staff users and roles, server-side
sessions, login throttling, the audit log and maker-checker approvals."""
