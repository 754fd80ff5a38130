"""A small tier ladder so that tests read in round numbers."""

from pathlib import Path

import pytest

from shared.config import Settings
from shared.programme.config import TierConfig, TierLevel

LADDER = TierConfig(window_months=12, grace_days=30, levels=(
    TierLevel(name="regular", threshold=0), TierLevel(name="silver", threshold=100),
    TierLevel(name="gold", threshold=500), TierLevel(name="platinum", threshold=2_000)))


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=Path(tmp_path) / "data", tiers=LADDER)
