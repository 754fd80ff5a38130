"""The central points ledger: double entry, integer points, append-only."""
