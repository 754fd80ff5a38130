"""Clearing service: scheduled jobs that keep the ledger moving and settle it."""
