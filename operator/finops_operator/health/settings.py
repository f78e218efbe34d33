"""``spec.health``: how team health is weighted and when each team's daily job runs.

    health:
      weights: {efficiency: 35, waste: 25, budget: 20, savings: 20}   # renormalised over the categories with data
      time: "06:00"              # the daily job's local time (default for every team)
      timeZone: UTC              # the default time zone of teams not listed
      trendDays: 7               # the trend compares the last trendDays with the trendDays before
      daily: Enabled             # Enabled | Disabled: the daily job (scores are still shown by `finops health`)
      teams:                     # teams with their own time zone / time; empty: every team in the cost data
        - {name: payments, timeZone: Europe/Berlin}
        - {name: search, timeZone: America/New_York, time: "07:30"}

It lives in the FinOpsPolicy (whose data sources, prices and allocation the scores are computed from),
so it is also what a ``--policy`` file for ``finops health`` holds.
"""
from __future__ import annotations

from enum import Enum
from typing import Annotated

from pydantic import Field

from ..settings_base import SettingsModel, TimeZone

LocalTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", min_length=5, max_length=5,
                                 description="Local time of day, HH:MM (24 hours).")]
TeamName = Annotated[str, Field(min_length=1, max_length=63)]


class DailyJob(str, Enum):
    ENABLED = "Enabled"
    DISABLED = "Disabled"


class HealthWeights(SettingsModel):
    """Relative weight of each category (whole numbers; only their ratios matter)."""

    efficiency: int = Field(default=35, ge=0, le=100, description="Used vs requested CPU and memory.")
    waste: int = Field(default=25, ge=0, le=100, description="Idle and orphaned-volume share of the cost.")
    budget: int = Field(default=20, ge=0, le=100, description="Budgets of the scope: state and pace.")
    savings: int = Field(default=20, ge=0, le=100, description="Realized vs estimated savings, PRs merged vs opened.")

    def as_dict(self) -> dict[str, int]:
        return {"efficiency": self.efficiency, "waste": self.waste, "budget": self.budget, "savings": self.savings}


class TeamSchedule(SettingsModel):
    name: TeamName
    time_zone: TimeZone | None = Field(default=None, description="The team's time zone (default: health.timeZone).")
    time: LocalTime | None = Field(default=None, description="The team's local run time (default: health.time).")


class HealthSettings(SettingsModel):
    """Team health scores and the daily insights job per team."""

    weights: HealthWeights = HealthWeights()
    time: LocalTime = "06:00"
    time_zone: TimeZone = "UTC"
    trend_days: int = Field(default=7, ge=2, le=90, description="Days each side of the trend comparison.")
    daily: DailyJob = Field(default=DailyJob.ENABLED, description=(
        "Enabled: each team's daily job (health, insights, delivery) runs at its local time."))
    teams: list[TeamSchedule] = Field(default=[], max_length=256, description=(
        "Teams with their own time zone or time; empty: every team in the cost allocation, at time/timeZone."))
