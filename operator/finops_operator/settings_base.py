"""Building blocks of the policy settings, shared by :mod:`.settings` and the detector modules.

Each finding type declares its own settings model in its detector module (a
:class:`SettingsModel` subclass); :mod:`.settings` assembles them from the
registry into ``spec.detectors``. This module imports only :mod:`.models`
so that both sides can import it without a cycle.
"""
from __future__ import annotations

from enum import Enum
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from .models import SUPPORTED_PERCENTILES

# A percentile the usage statistics hold (models.UsageStats): the CRD gets the same enum.
Percentile = Literal[SUPPORTED_PERCENTILES]  # type: ignore[valid-type]


class SettingsModel(BaseModel):
    """camelCase aliases (the CRD's keys), unknown keys rejected, immutable."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid",
                              frozen=True)


def known_zone(value: str) -> str:
    """An IANA time zone this operator's tz database knows, else a ValueError saying what to write."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'Europe/Berlin'") from exc
    return value


class LimitPolicy(str, Enum):
    KEEP_RATIO = "KeepRatio"      # scale limits with requests, keep limit/request ratio
    NO_CPU_LIMIT = "NoCPULimit"   # drop CPU limits (avoid throttling), memory limit = keep ratio
    BURSTABLE = "Burstable"       # limit = request x burstFactor
    GUARANTEED = "Guaranteed"     # limit = request


class TimeWindow(SettingsModel):
    """Only samples inside this window count (e.g. business hours)."""

    days: list[int] = Field(default=[0, 1, 2, 3, 4], description="Weekdays, 0=Monday .. 6=Sunday")
    start_hour: int = Field(default=8, ge=0, le=23)
    end_hour: int = Field(default=20, ge=1, le=24)
    time_zone: str = Field(default="UTC", description="IANA time zone, e.g. Europe/Berlin")

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)
