"""Programme features around the posting engine: velocity limits, activity points, referral bonuses."""
