"""A right-sizer's ``timeWindow`` (weekdays and hours in an IANA time zone) as a PromQL filter.

PromQL's ``hour()`` and ``day_of_week()`` work in UTC, so the filter shifts
``time()`` by the zone's UTC offset. The offset changes at DST transitions:
the window is cut into segments of constant offset and the local time is

    time() + o0 + (o1 - o0) * (time() >= bool t1) + (o2 - o1) * (time() >= bool t2) ...

(one term per transition inside the window), evaluated at every subquery
step. The filter keeps the same samples as the snapshot path's
:func:`finops_operator.usage.window_mask`: local weekday in ``days`` and
``startHour <= local hour < endHour``.
"""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from ..settings import TimeWindow

_PROBE_S = 3600      # offsets are sampled hourly, then the change is found to the second


def _offset(zone: ZoneInfo, at: int) -> int:
    offset = datetime.fromtimestamp(at, timezone.utc).astimezone(zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def offset_segments(time_zone: str, start: int, end: int) -> list[tuple[int, int]]:
    """``[(from_epoch, utc_offset_s), ...]``: the zone's UTC offset from each time on, covering [start, end]."""
    zone = ZoneInfo(time_zone)
    out = [(start, _offset(zone, start))]
    at = start
    while at < end:
        nxt = min(at + _PROBE_S, end)
        if _offset(zone, nxt) != out[-1][1]:
            lo, hi = at, nxt                      # offset(lo) is the current one, offset(hi) the new one
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if _offset(zone, mid) == out[-1][1] else (lo, mid)
            out.append((hi, _offset(zone, hi)))
        at = nxt
    return out


def local_time(time_zone: str, start: int, end: int) -> str:
    """A PromQL scalar expression: the evaluation time shifted to local time in ``time_zone``."""
    segments = offset_segments(time_zone, start, end)
    expr = "time()" + _signed(segments[0][1])
    for (_, before), (at, after) in zip(segments, segments[1:]):
        expr += _signed(after - before, f" * (time() >= bool {at})")
    return expr


def _signed(seconds: int, times: str = "") -> str:
    return "" if seconds == 0 else f" {'+' if seconds > 0 else '-'} {abs(seconds)}{times}"


def in_window(window: TimeWindow | None, start: int, end: int) -> str | None:
    """A PromQL instant-vector filter, non-empty exactly when the evaluation time is inside ``window``
    (None when the window keeps every hour of every day). Use as ``<series> and on() <filter>``."""
    if window is None:
        return None
    local = f"vector({local_time(window.time_zone, start, end)})"
    parts = []
    hours = f"hour({local})"
    if window.start_hour > 0:
        hours += f" >= {window.start_hour}"
    if window.end_hour < 24:
        hours += f" < {window.end_hour}"
    if hours != f"hour({local})":
        parts.append(f"({hours})")
    days = sorted(set(window.days))
    if days != list(range(7)):
        # settings count 0 = Monday; PromQL's day_of_week() 0 = Sunday
        parts.append("(" + " or ".join(f"day_of_week({local}) == {(d + 1) % 7}" for d in days) + ")"
                     if days else "(vector(0) == 1)")
    return " and on() ".join(parts) if parts else None
