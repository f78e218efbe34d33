"""The expected cost of a day, learned causally (only from the days before it), and its robust spread.

    expected(t) = level(t) x weekday(t) x month_end(t)          (multiplicative: costs scale together)

- **weekday**: over the trailing ``weeks``, each day divided by the centred 7-day mean around it, then the
  median per weekday (normalised to mean 1): weekends and busy weekdays are part of normal, under growth too.
- **level**: the trailing ``level_days`` deseasonalised days since the last level shift (the anchor),
  projected to ``t`` with a robust (Theil-Sen) slope once there are enough of them, so growth and decline
  are normal too. Month-end days are left out of the level and the weekday pattern.
- **month_end**: the last ``month_end_days`` days of a month each get a factor: the median ratio
  actual / expected-without-it over up to ``month_end_months`` past months (one past month is enough, so a
  month-end batch alarms at most on its first month).
- **sigma**: 1.4826 x the median absolute deviation of the relative residuals (actual / expected - 1) of
  the trailing normal days: out-of-sample errors, so the estimate's own error counts as noise.

The history it learns from is *cleaned*: an anomalous day counts as its expected value, so a spike does
not raise the baseline; a confirmed level shift re-anchors (its days count as they were, the level is
learned from the shift on). Pure numpy, no I/O.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

MAD_TO_SIGMA = 1.4826                     # a normal distribution's sigma per median absolute deviation


@dataclass(frozen=True, slots=True)
class Settings:
    """How the statistical detector learns and how sure it must be (defaults suit daily cloud costs)."""

    z: float = 4.0                        # robust z-score (MAD sigmas) a day must exceed, besides the 10% band
    min_history: int = 14                 # known days before the statistical detector speaks
    weeks: int = 8                        # weekday pattern from up to this many trailing weeks
    level_days: int = 14                  # level from up to this many trailing days
    trend_days: int = 28                  # trend (a robust slope, shrunk by its uncertainty) from up to this many
    trend_min_days: int = 7               # a slope only from at least this many days since the anchor
    shift_days: int = 7                   # consecutive anomalous days, same direction: a level shift
    month_end_days: int = 2               # the last N days of a month have their own learned factor
    month_end_months: int = 6             # learned from up to this many past months
    sigma_days: int = 56                  # spread from up to this many trailing normal days
    min_sigma: float = 0.01               # a perfectly flat history still has 1% noise


@dataclass(frozen=True, slots=True)
class Expectation:
    expected: float                       # USD for the day
    base: float                           # without the month-end factor (what that factor is learned against)
    sigma: float                          # relative: 0.05 = 5% of expected is one sigma


def month_end_positions(start: date, days: int, last_n: int) -> np.ndarray:
    """Per day: 1 on a month's last day, 2 on the one before, ... up to ``last_n``; 0 elsewhere."""
    out = np.zeros(days, dtype=np.int8)
    for i in range(days):
        day = start + timedelta(days=i)
        left = calendar.monthrange(day.year, day.month)[1] - day.day + 1
        if left <= last_n:
            out[i] = left
    return out


class Baseline:
    """The causal model over one series: ``expect(t)``, then ``observe(t, ...)``, day after day."""

    def __init__(self, start: date, values: np.ndarray, settings: Settings):
        self.settings = settings
        self.values = np.asarray(values, dtype=np.float64)
        self.cleaned = self.values.copy()
        self.residuals = np.full(len(self.values), np.nan)
        self.month_end = month_end_positions(start, len(self.values), settings.month_end_days)
        self.month_ratios: dict[int, list[float]] = {}
        self.anchor = 0
        self.known_before = np.concatenate([[0], np.cumsum(~np.isnan(self.values))])

    # ------------------------------------------------------------------ the model

    def weekday_factors(self, t: int) -> np.ndarray:
        """Factor for each day ``t + j`` (j mod 7): the median ratio of a weekday to the centred 7-day mean
        around it (a whole week, so free of the pattern, and following a trend), over the trailing weeks.
        Month-end days are left out; windows across the anchor (a level shift) are skipped."""
        lo = max(3, t - 7 * self.settings.weeks)
        if t - 3 <= lo:
            return np.ones(7)
        c = np.where(self.month_end > 0, np.nan, self.cleaned)
        windows = np.lib.stride_tricks.sliding_window_view(c[lo - 3:t], 7)        # centred on lo .. t-4
        idx = np.arange(lo, lo + len(windows))
        known = np.count_nonzero(~np.isnan(windows), axis=1)
        with np.errstate(all="ignore"):
            mean = np.nanmean(np.where(known[:, None] >= 6, windows, 0.0), axis=1)
            ratio = c[idx] / mean
        across = (idx - 3 < self.anchor) & (self.anchor <= idx + 3) & (self.anchor > 0)
        ok = (known >= 6) & ~np.isnan(ratio) & (mean > 0) & ~across
        factors = np.ones(7)
        cols = (idx - t) % 7
        for col in range(7):
            pick = ratio[ok & (cols == col)]
            if len(pick):
                factors[col] = np.median(pick)
        mean_factor = factors.mean()
        return factors / mean_factor if mean_factor > 0 else np.ones(7)

    def level(self, t: int, weekday: np.ndarray) -> float | None:
        """Deseasonalised level at ``t``: median of the trailing days (since the anchor), trend-projected."""
        idx, d = self.deseasonalised(t, weekday, self.settings.trend_days)
        if len(d) < 3:
            return None
        slope = shrunk_slope(idx, d) if len(d) >= self.settings.trend_min_days else 0.0
        recent = idx >= t - self.settings.level_days
        return max(float(np.median(d[recent] + slope * (t - idx[recent]))), 0.0)

    def deseasonalised(self, t: int, weekday: np.ndarray, days: int) -> tuple[np.ndarray, np.ndarray]:
        """(day, cleaned / weekday factor) of the known days in the last ``days`` since the anchor, no month-end."""
        lo = max(self.anchor, t - days)
        idx = np.arange(lo, t)
        factor = weekday[(idx - t) % 7]
        ok = ~np.isnan(self.cleaned[lo:t]) & (self.month_end[lo:t] == 0) & (factor > 0.05)
        return idx[ok], self.cleaned[lo:t][ok] / factor[ok]

    def month_factor(self, t: int, sigma: float) -> tuple[float, float]:
        """(factor, sigma) of day ``t``: a month-end day's factor, and the spread widened by its uncertainty
        (the median of n noisy ratios is off by about 1.25 sigma / sqrt(n); past ratios may scatter more)."""
        ratios = np.array(self.month_ratios.get(int(self.month_end[t]), [])[-self.settings.month_end_months:])
        if not len(ratios):
            return 1.0, sigma
        factor = float(np.median(ratios))
        sigma = sigma * np.sqrt(1 + 1.57 / len(ratios))
        if len(ratios) >= 3 and factor > 0:
            sigma = max(sigma, robust_sigma(ratios / factor - 1))
        return factor, float(sigma)

    def sigma(self, t: int) -> float:
        """Relative spread: past out-of-sample errors; early on, at least the week-over-week spread."""
        recent = self.residuals[max(0, t - self.settings.sigma_days):t]
        recent = recent[~np.isnan(recent)]
        sigma = robust_sigma(recent) if len(recent) >= 7 else 0.0
        if len(recent) < 28:
            sigma = max(sigma, self.week_over_week_sigma(t))
        return max(sigma, self.settings.min_sigma)

    def week_over_week_sigma(self, t: int) -> float:
        """Spread of day / same day a week before (not straddling the anchor; no month-end), over sqrt(2)."""
        i = np.arange(max(7, t - self.settings.sigma_days), t)
        i = i[~((i - 7 < self.anchor) & (self.anchor <= i)) & (self.month_end[i] == 0) & (self.month_end[i - 7] == 0)]
        now, before = self.cleaned[i], self.cleaned[i - 7]
        ok = ~np.isnan(now) & ~np.isnan(before) & (before > 0)
        ratios = now[ok] / before[ok] - 1
        return robust_sigma(ratios) / np.sqrt(2) * (1 + 2 / np.sqrt(len(ratios))) if len(ratios) >= 5 else 0.1

    def expect(self, t: int) -> Expectation | None:
        """What day ``t`` should cost, from the days before it; None while the history is too short."""
        if self.known_before[t] < self.settings.min_history:
            return None
        weekday = self.weekday_factors(t)
        level = self.level(t, weekday)
        if level is None:
            return None
        base = level * weekday[0]
        factor, sigma = self.month_factor(t, self.sigma(t)) if self.month_end[t] else (1.0, self.sigma(t))
        return Expectation(base * factor, base, sigma)

    # ------------------------------------------------------------------ learning from what happened

    def observe(self, t: int, expectation: Expectation | None, anomalous: bool) -> None:
        """Day ``t`` happened: learn the month-end ratio, and count the day as normal or as its expected value."""
        actual = self.values[t]
        if expectation is None or np.isnan(actual):
            return
        if self.month_end[t] and expectation.base > 0:
            self.month_ratios.setdefault(int(self.month_end[t]), []).append(actual / expectation.base)
        if anomalous:
            self.cleaned[t] = expectation.expected
        elif expectation.expected > 0:
            self.residuals[t] = actual / expectation.expected - 1

    def reanchor(self, first: int, last: int) -> None:
        """A level shift from ``first`` (confirmed on ``last``): the new level is normal from now on."""
        self.anchor = first
        self.cleaned[first:last + 1] = self.values[first:last + 1]
        self.residuals[first:last + 1] = np.nan


def robust_sigma(x: np.ndarray) -> float:
    """1.4826 x the median absolute deviation: the standard deviation, were it normal, that outliers cannot inflate."""
    return MAD_TO_SIGMA * float(np.median(np.abs(x - np.median(x)))) if len(x) else 0.0


def shrunk_slope(x: np.ndarray, y: np.ndarray) -> float:
    """The Theil-Sen slope, shrunk towards 0 by its standard error (slope^2 / (slope^2 + se^2)): a clear trend
    is kept whole, a slope that noise alone could make is mostly dropped (extrapolating noise raises alarms)."""
    slope = theil_sen_slope(x, y)
    noise = robust_sigma(y - slope * x)
    se = noise * np.sqrt(12.0 / len(x) ** 3) * 1.1     # OLS slope error on evenly spaced days; Theil-Sen ~10% more
    return slope * slope**2 / (slope**2 + se**2) if slope else 0.0


def theil_sen_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Median of the pairwise slopes: a trend that one outlier cannot bend."""
    i, j = np.triu_indices(len(x), k=1)
    return float(np.median((y[j] - y[i]) / (x[j] - x[i])))
