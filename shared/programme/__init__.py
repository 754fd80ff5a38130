"""Programme features around the ledger: velocity limits, activity points, referral bonuses,
tiers, activity status and expiry reminders."""
