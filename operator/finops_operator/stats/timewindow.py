"""Which columns of a series a :class:`~finops_operator.settings.TimeWindow` keeps (business hours).

The window (weekdays + hours in an IANA time zone) keeps the columns whose *local* time is
inside it, converted per timestamp with ``zoneinfo`` so DST shifts are honoured. A window that
ends before it starts (22 -> 6) crosses midnight and belongs to the day it starts on.
"""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np

if TYPE_CHECKING:
    from ..settings import TimeWindow


def window_mask(timestamps: np.ndarray, window: "TimeWindow | None") -> np.ndarray | None:
    """Boolean column mask for ``window`` (None = every column)."""
    if window is None:
        return None
    zone = ZoneInfo(window.time_zone)
    days = set(window.days)
    mask = np.zeros(len(timestamps), dtype=bool)
    for i, ts in enumerate(np.asarray(timestamps).tolist()):
        local = datetime.fromtimestamp(ts, zone)
        hour = local.hour + local.minute / 60.0
        if window.start_hour < window.end_hour:
            mask[i] = local.weekday() in days and window.start_hour <= hour < window.end_hour
        else:   # crosses midnight: the late part belongs to the previous day
            mask[i] = (local.weekday() in days and hour >= window.start_hour) or \
                ((local.weekday() - 1) % 7 in days and hour < window.end_hour)
    return mask
