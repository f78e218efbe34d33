"""Budget periods: which calendar days a Monthly / Quarterly / Yearly period holds, in the budget's time zone.

    period = period_of(date(2026, 3, 10), "Quarterly", anchor=date(2025, 4, 1))   # fiscal quarters from April
    period.start, period.end          # 2026-01-01, 2026-04-01 (end exclusive)
    period.key                        # "2026-01-01/Quarterly": hysteresis is remembered under it
    start, end = utc_bounds(period, ZoneInfo("Europe/Berlin"))                   # aware UTC datetimes

A period is a run of whole calendar days. The ``anchor`` (``spec.period.startDate``) fixes where periods
start: every 1, 3 or 12 months from it, on its day of the month (1-28, so every month has it), before and
after it alike. Without one, periods start on the first of the month, quarter (January, April, July,
October) or year. Days are counted in the budget's zone, so local midnight starts a period; converting to
UTC goes through :class:`zoneinfo.ZoneInfo`, so a day is 23 or 25 hours long across a DST change and a
period's bounds never shift by an hour.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

MONTHS = {"Monthly": 1, "Quarterly": 3, "Yearly": 12}


@dataclass(frozen=True, slots=True)
class Period:
    start: date                     # first day
    end: date                       # the day after the last day
    kind: str                       # Monthly | Quarterly | Yearly

    @property
    def key(self) -> str:
        """Identifies the period (thresholds fire once per key)."""
        return f"{self.start.isoformat()}/{self.kind}"

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def elapsed(self, today: date) -> int:
        """Whole days of the period before ``today``."""
        return max(0, min(self.days, (today - self.start).days))


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, day.day)


def period_of(day: date, kind: str, anchor: date | None = None) -> Period:
    """The period holding ``day``. ``anchor``: a day periods start on (day of month 1-28), else the 1st of
    January / a quarter / a month."""
    months = MONTHS.get(kind)
    if months is None:
        raise ValueError(f"unknown period {kind!r}; one of {', '.join(MONTHS)}")
    anchor = anchor or date(2000, 1, 1)
    if anchor.day > 28:
        raise ValueError(f"period start day {anchor.day} is after the 28th; not every month has it")
    # months from the anchor to the day, rounded down to a multiple of the period's length
    offset = (day.year - anchor.year) * 12 + day.month - anchor.month - (1 if day.day < anchor.day else 0)
    start = _add_months(anchor, (offset // months) * months)
    return Period(start, _add_months(start, months), kind)


def local_day(now: datetime, zone: tzinfo) -> date:
    """The calendar day ``now`` falls on in ``zone``."""
    return now.astimezone(zone).date()


def day_bounds(day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """[local midnight of ``day``, local midnight of the next day) as aware UTC datetimes (23-25 hours)."""
    return _utc_midnight(day, zone), _utc_midnight(day + timedelta(days=1), zone)


def utc_bounds(period: Period, zone: tzinfo) -> tuple[datetime, datetime]:
    return _utc_midnight(period.start, zone), _utc_midnight(period.end, zone)


def _utc_midnight(day: date, zone: tzinfo) -> datetime:
    # fold=0: an ambiguous local midnight (a zone moving clocks back at midnight) is its first occurrence
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
