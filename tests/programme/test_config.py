"""Programme settings from the environment, and ladders refused with the reason."""

import pytest
from pydantic import ValidationError

from shared.config import Settings


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("POINTSNET_TIERS", '{"grace_days": 60, "levels": [{"name": "basic", "threshold": 0}, '
                                          '{"name": "vip", "threshold": 300}]}')
    monkeypatch.setenv("POINTSNET_EXPIRY_REMINDER_DAYS", "7, 30,30")
    settings = Settings()
    assert settings.tiers.grace_days == 60 and settings.tiers.window_months == 12
    assert [settings.tiers.qualified(p) for p in (0, 299, 300)] == ["basic", "basic", "vip"]
    assert settings.tiers.name(None) == "basic" and settings.tiers.name("gone") == "basic"
    assert settings.expiry_reminder_days == (30, 7)
    monkeypatch.setenv("POINTSNET_EXPIRY_REMINDER_DAYS", "")
    assert Settings().expiry_reminder_days == ()


@pytest.mark.parametrize("ladder,problem", [
    ('{"levels": [{"name": "a", "threshold": 5}]}', "threshold 0"),
    ('{"levels": [{"name": "a", "threshold": 0}, {"name": "a", "threshold": 9}]}', "unique"),
    ('{"levels": [{"name": "a", "threshold": 0}, {"name": "b", "threshold": 9}, {"name": "c", "threshold": 9}]}',
     "increase"),
    ('{"levels": [{"name": "Gold!", "threshold": 0}]}', "pattern"),
])
def test_bad_ladders_are_refused(monkeypatch, ladder, problem):
    monkeypatch.setenv("POINTSNET_TIERS", ladder)
    with pytest.raises(ValidationError, match=problem):
        Settings()


def test_dormant_must_come_after_at_risk():
    with pytest.raises(ValidationError, match="greater"):
        Settings(activity_at_risk_days=90, activity_dormant_days=60)
    with pytest.raises(ValidationError, match="positive"):
        Settings(expiry_reminder_days="30,0")


def test_ranks_follow_the_ladder_also_in_a_copy_with_other_levels():
    from shared.programme.config import TierConfig, TierLevel

    tiers = TierConfig()
    assert [tiers.rank(level.name) for level in tiers.levels] == list(range(len(tiers.levels)))
    assert tiers.rank(None) == tiers.rank("retired-name") == 0 and tiers.name(None) == tiers.lowest
    # the rank cache was filled above; a copy with another ladder must not use it
    copy = tiers.model_copy(update={"levels": (TierLevel(name="basic", threshold=0), TierLevel(name="gold",
                                                                                         threshold=10))})
    assert copy.rank("gold") == 1 and copy.name("gold") == "gold" and tiers.rank("gold") == 2
