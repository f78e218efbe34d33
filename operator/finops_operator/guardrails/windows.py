"""Change windows in a named time zone: "is now inside a window?" and "when does the next one open?".

A :class:`~finops_operator.settings.ChangeWindow` is wall-clock time in its own
IANA zone: ``days`` (0=Monday .. 6=Sunday), ``start`` and ``end`` as ``HH:MM``.

Semantics (documented because every one of them is a choice):

* **Midnight crossing.** When ``end <= start`` the window ends on the next day
  and belongs to the day it STARTS on: ``days=[4], 22:00-02:00`` is Friday 22:00
  to Saturday 02:00, and Saturday 01:00 is inside it even though Saturday is not
  listed. ``end == start`` means a full 24 hours from ``start``; ``24:00`` is
  the end of the start day.
* **Wall clock, not elapsed time.** An instant is inside a window when its local
  wall-clock time (in the window's zone) lies in ``[start, end)`` of a listed
  day. This handles DST with no special cases in the membership test:
  - spring forward (e.g. America/New_York 2024-03-10, 02:00 -> 03:00): wall
    times in the gap never occur, so a 01:00-04:00 window lasts two real hours
    and a 02:00-03:00 window does not open at all that day;
  - fall back (2024-11-03, 02:00 -> 01:00): the repeated hour's wall times occur
    twice and both occurrences are inside a window that covers them.
* **Next opening.** The first instant after ``now`` at which the wall clock
  enters a window. A start time inside a spring-forward gap opens at the
  transition (the first instant whose wall clock is past the start); a start
  time inside a fall-back overlap opens at its first occurrence, or at its
  second occurrence when ``now`` is already past the first.

Pure: no clock is read here; ``now`` is always passed in (aware datetime).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from ..errors import ConfigError
from ..settings import ChangeWindow

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_SEARCH_DAYS = 9   # a weekly schedule always opens within 8 days; one spare for DST edges


@dataclass(frozen=True, slots=True)
class WindowHit:
    """The window that matched (or opens next) and the instant in its zone."""

    window: ChangeWindow
    at: datetime          # aware, in the window's zone


def describe(window: ChangeWindow) -> str:
    """Short human text: 'Mon,Tue 22:00-02:00 Europe/Berlin'."""
    days = ",".join(_DAY_NAMES[d] for d in sorted(set(window.days)) if 0 <= d <= 6) or "no days"
    return f"{days} {window.start}-{window.end} {window.time_zone}"


def format_local(at: datetime) -> str:
    """'Mon 2024-03-11 09:00 EDT (America/New_York)' for reason messages."""
    zone = getattr(at.tzinfo, "key", str(at.tzinfo))
    return f"{_DAY_NAMES[at.weekday()]} {at:%Y-%m-%d %H:%M} {at.tzname()} ({zone})"


def _minutes(text: str, *, what: str) -> int:
    try:
        hours, minutes = (int(part) for part in text.split(":"))
    except ValueError:
        raise ConfigError(f"{text!r} is not HH:MM (write e.g. '09:00')", field=what) from None
    if not (0 <= hours <= 24 and 0 <= minutes <= 59) or (hours == 24 and minutes):
        raise ConfigError(f"{text!r} is out of range (00:00 .. 24:00)", field=what)
    return hours * 60 + minutes


def _bounds(window: ChangeWindow, day: date) -> tuple[datetime, datetime]:
    """Naive local start/end wall-clock datetimes of the window instance that starts on ``day``."""
    start = _minutes(window.start, what="guardrails.changeWindows.start")
    end = _minutes(window.end, what="guardrails.changeWindows.end")
    midnight = datetime.combine(day, time())
    begin = midnight + timedelta(minutes=start)
    if end <= start:
        end += 24 * 60     # crosses midnight (or a full day when equal)
    return begin, midnight + timedelta(minutes=end)


def _wall(at: datetime, zone: ZoneInfo) -> datetime:
    return at.astimezone(zone).replace(tzinfo=None)


def inside(now: datetime, window: ChangeWindow) -> bool:
    """True when ``now``'s wall clock in the window's zone is inside an instance of the window."""
    zone = ZoneInfo(window.time_zone)
    local = _wall(now, zone)
    days = set(window.days)
    for day in (local.date() - timedelta(days=1), local.date()):
        if day.weekday() in days:
            begin, end = _bounds(window, day)
            if begin <= local < end:
                return True
    return False


def _opening(naive: datetime, zone: ZoneInfo, after: datetime) -> datetime | None:
    """First instant > ``after`` at which the wall clock reaches ``naive`` (handles gaps and folds)."""
    candidates = []
    for fold in (0, 1):
        instant = naive.replace(tzinfo=zone, fold=fold).astimezone(timezone.utc)
        if _wall(instant, zone) == naive:
            candidates.append(instant)
    if not candidates:       # spring-forward gap: the wall clock jumps over ``naive``
        candidates.append(_gap_end(naive, zone))
    later = sorted(c for c in candidates if c > after)
    return later[0] if later else None


def _gap_end(naive: datetime, zone: ZoneInfo) -> datetime:
    """The transition instant of the gap containing ``naive``: first instant whose wall clock is past it.

    Binary search over whole seconds (tz transitions fall on whole seconds)
    between the two PEP 495 mappings of the missing wall time.
    """
    first = naive.replace(tzinfo=zone, fold=1).astimezone(timezone.utc)
    second = naive.replace(tzinfo=zone, fold=0).astimezone(timezone.utc)
    low = int(min(first, second).timestamp()) - 1       # wall clock still before ``naive``
    high = int(max(first, second).timestamp()) + 1      # wall clock already past it
    while high - low > 1:
        middle = (low + high) // 2
        if _wall(datetime.fromtimestamp(middle, timezone.utc), zone) >= naive:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, timezone.utc)


def next_opening(now: datetime, windows: list[ChangeWindow]) -> WindowHit | None:
    """The earliest instant after ``now`` at which any window opens, or None if none ever does."""
    best: WindowHit | None = None
    for window in windows:
        zone = ZoneInfo(window.time_zone)
        today = _wall(now, zone).date()
        for offset in range(-1, _SEARCH_DAYS):
            day = today + timedelta(days=offset)
            if day.weekday() not in set(window.days):
                continue
            begin, end = _bounds(window, day)
            opens = _opening(begin, zone, now)
            if opens is None or _wall(opens, zone) >= end:
                continue     # already opened, or the whole window fell into a DST gap
            if best is None or opens < best.at:
                best = WindowHit(window, opens.astimezone(zone))
            break
    return best


def matching(now: datetime, windows: list[ChangeWindow]) -> ChangeWindow | None:
    """The first window ``now`` is inside, in the configured order."""
    return next((w for w in windows if inside(now, w)), None)


def closing(now: datetime, window: ChangeWindow) -> datetime | None:
    """When the window instance ``now`` is inside closes (the first instant after ``now`` whose wall clock is
    at its end), None when ``now`` is outside. Used for quiet hours (delivery/), which are such windows."""
    zone = ZoneInfo(window.time_zone)
    local = _wall(now, zone)
    days = set(window.days)
    for day in (local.date() - timedelta(days=1), local.date()):
        if day.weekday() in days:
            begin, end = _bounds(window, day)
            if begin <= local < end:
                return _opening(end, zone, now)
    return None
