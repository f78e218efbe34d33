"""The report's period and the buckets of its trends (UTC, end exclusive)."""
from __future__ import annotations

from datetime import datetime, timedelta

from ..errors import ConfigError

WEEKS_OF_TREND = 8
MONTHS_OF_TREND = 6


def months_back(moment: datetime, months: int) -> datetime:
    """``moment`` the same day ``months`` calendar months earlier (the day clamped to the month's length)."""
    year, month = divmod(moment.year * 12 + moment.month - 1 - months, 12)
    month += 1
    days = [31, 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28, 31, 30, 31, 30, 31, 31, 30, 31,
            30, 31][month - 1]
    return moment.replace(year=year, month=month, day=min(moment.day, days))


def period_start(period: str, end: datetime) -> datetime:
    if period == "weekly":
        return end - timedelta(days=7)
    if period == "monthly":
        return months_back(end, 1)
    raise ConfigError(f"unknown report period {period!r}; use weekly or monthly", field="period")


def buckets(period: str, end: datetime) -> list[tuple[datetime, datetime]]:
    """The trend's periods, oldest first, the report's own period last."""
    if period == "weekly":
        return [(end - timedelta(days=7 * (i + 1)), end - timedelta(days=7 * i)) for i in reversed(range(WEEKS_OF_TREND))]
    period_start(period, end)
    return [(months_back(end, i + 1), months_back(end, i)) for i in reversed(range(MONTHS_OF_TREND))]


def bucket_label(period: str, start: datetime, end: datetime) -> str:
    """'Nov 23' (week ending) or '2026-11' (month ending); the end is exclusive."""
    last = end - timedelta(microseconds=1)
    return f"{last:%b %d}" if period == "weekly" else f"{last:%Y-%m-%d}"
