"""A SpendSeries made ready to model: checked (no negative costs), leading unknown days dropped, gaps filled.

Unknown days (NaN: no data that day) are not zeros. For fitting they are filled from the same weekday of
the neighbouring weeks (the mean of the known ones within two weeks), else by straight-line interpolation;
back-tests score only the days that were known (:attr:`History.known`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from ..errors import ConfigError
from ..models.spend import SpendSeries


@dataclass(frozen=True, slots=True)
class History:
    """Daily costs from ``start`` with every day filled (``values``) and which days were measured (``known``)."""

    start: date
    values: np.ndarray                  # float64, no NaN
    known: np.ndarray                   # bool, False where the day was filled in

    @property
    def end(self) -> date:
        return self.start + timedelta(days=len(self.values))

    def observed(self) -> np.ndarray:
        """The values with the filled-in days as NaN again (what back-tests compare against)."""
        return np.where(self.known, self.values, np.nan)


def check_costs(series: SpendSeries, source: str = "series") -> None:
    """Costs are never negative (credits and refunds belong in the bill, not in a spend series)."""
    values = np.asarray(series.values, dtype=np.float64)
    bad = np.flatnonzero(values < 0)
    if len(bad):
        day = series.start + timedelta(days=int(bad[0]))
        raise ConfigError(f"cost {values[bad[0]]:g} on {day.isoformat()} is negative; a daily spend is 0 or more "
                          f"(net credits and refunds out of the series)", source=source, field=day.isoformat())
    if np.isinf(values).any():
        day = series.start + timedelta(days=int(np.flatnonzero(np.isinf(values))[0]))
        raise ConfigError(f"cost on {day.isoformat()} is infinite; give a finite number", source=source,
                          field=day.isoformat())


def prepare(series: SpendSeries, source: str = "series") -> History:
    """Check, drop the unknown days before the first known one, fill the remaining gaps."""
    check_costs(series, source)
    values = np.asarray(series.values, dtype=np.float64)
    known = ~np.isnan(values)
    if not known.any():
        raise ConfigError("no day has a cost; a forecast needs at least one known day", source=source)
    first = int(np.argmax(known))
    values, known = values[first:], known[first:]
    return History(series.start + timedelta(days=first), fill_gaps(values), known)


def fill_gaps(values: np.ndarray) -> np.ndarray:
    """NaN days -> mean of the same weekday one and two weeks around (known ones), else linear interpolation."""
    filled = values.copy()
    missing = np.flatnonzero(np.isnan(values))
    if not len(missing):
        return filled
    n = len(values)
    for i in missing:
        near = [values[j] for j in (i - 7, i + 7, i - 14, i + 14) if 0 <= j < n and not np.isnan(values[j])]
        if near:
            filled[i] = float(np.mean(near))
    still = np.isnan(filled)
    if still.any():
        idx = np.arange(n)
        filled[still] = np.interp(idx[still], idx[~still], filled[~still])
    return filled
