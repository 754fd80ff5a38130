"""Programme configuration as plain values: the tier ladder (``POINTSNET_TIERS``, JSON).

Kept free of I/O and of the rest of ``shared`` so that ``shared.config`` can import it.
"""

from __future__ import annotations

from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TierLevel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    threshold: int = Field(ge=0, description="qualifying points in the window needed to hold this tier")


DEFAULT_LEVELS = (
    TierLevel(name="regular", threshold=0),
    TierLevel(name="silver", threshold=1_000),
    TierLevel(name="gold", threshold=5_000),
    TierLevel(name="platinum", threshold=20_000),
    TierLevel(name="diamond", threshold=50_000),
)


class TierConfig(BaseModel):
    """The ladder, lowest first; the lowest tier needs 0 points and is where every member starts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    window_months: int = Field(12, ge=1, le=120, description="rolling window of qualifying points")
    grace_days: int = Field(30, ge=0, le=366, description="after the anniversary, before a downgrade")
    levels: tuple[TierLevel, ...] = DEFAULT_LEVELS

    @model_validator(mode="after")
    def _ladder(self):
        if not self.levels or self.levels[0].threshold != 0:
            raise ValueError("tiers: the first (lowest) level must have threshold 0")
        names = [level.name for level in self.levels]
        if len(set(names)) != len(names):
            raise ValueError("tiers: level names must be unique")
        if any(b.threshold <= a.threshold for a, b in zip(self.levels, self.levels[1:])):
            raise ValueError("tiers: thresholds must increase strictly from the lowest level up")
        return self

    @property
    def lowest(self) -> str:
        return self.levels[0].name

    @cached_property
    def _ranks(self) -> tuple[tuple[TierLevel, ...], dict[str, int]]:
        return self.levels, {level.name: index for index, level in enumerate(self.levels)}

    def rank(self, name: str | None) -> int:
        """0 for the lowest tier; a stored name no longer configured counts as the lowest."""
        levels, ranks = self._ranks
        if levels is not self.levels:  # a model_copy with other levels carries its original's cache
            ranks = {level.name: index for index, level in enumerate(self.levels)}
        return ranks.get(name, 0)

    def name(self, stored: str | None) -> str:
        """The tier a stored value means (NULL and unknown names: the lowest)."""
        return self.levels[self.rank(stored)].name

    def qualified(self, points: int) -> str:
        """The highest tier whose threshold these qualifying points reach."""
        reached = self.levels[0]
        for level in self.levels:
            if points >= level.threshold:
                reached = level
        return reached.name
