"""The member programme on top of the ledger: tiers, activity status, expiry reminders."""
