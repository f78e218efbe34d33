"""The recency-weighted quantile of a usage series, from its per-bucket summary. Pure, no I/O.

The VPA recommender keeps a decaying histogram: every sample is added with a weight that
doubles every half-life, so recent usage counts more than old usage. We get the same from a
:class:`~finops_operator.models.usage.DaySummary` without re-reading the samples:

* each bucket's distribution is the piecewise-linear quantile function through
  ``(0, low)``, ``(q / 100, quantiles[q][i])`` for every computed ``q`` and ``(1, max[i])``,
  where ``low`` (the unknown bucket minimum) is chosen so that the distribution's mean
  equals the bucket's mean (clipped to ``[0, lowest quantile]``);
* bucket ``i`` weighs ``samples[i] x 0.5 ** (age_i / half_life)`` with
  ``age_i = ends[-1] - ends[i]`` (the window end is the newest bucket's end);
* the result is the ``q``-quantile of the weighted mixture of the buckets' distributions,
  read exactly (the mixture CDF is piecewise linear between the buckets' breakpoints).

With ``half_life = inf`` every sample weighs the same and the result approximates the
window's own ``q``-quantile (exactly so when every bucket has the same distribution).
``q = 100`` is the window max (recency does not lower a peak that happened).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError, DataSourceError

if TYPE_CHECKING:
    from ..models.usage import DaySummary

#: Spread given to a bucket whose quantiles are all equal (a flat series), so its CDF is invertible.
_TIE_SPREAD = 1e-12


def usable(days: "DaySummary") -> np.ndarray:
    """Buckets that can be weighed: samples, and a finite mean, max and quantiles."""
    figures = [days.mean, days.max, *days.quantiles.values()]
    finite = np.isfinite(np.asarray(figures, dtype=np.float64)).all(axis=0)
    return (np.asarray(days.samples) > 0) & finite


def bucket_weights(days: "DaySummary", half_life_hours: float) -> np.ndarray:
    """Weight of each bucket: samples x 0.5 ** (age / half-life), normalised to sum to 1.

    Computed in log space so a short half-life over a long window never underflows to
    all zeros. Buckets without samples (or with a non-finite figure) weigh 0.
    """
    if not half_life_hours > 0:
        raise ConfigError(f"halfLifeHours must be above 0, got {half_life_hours!r}", field="halfLifeHours")
    ok = usable(days)
    if not ok.any():
        raise DataSourceError("the usage summary has no bucket with samples and finite figures; nothing to weigh",
                              field="days.samples")
    samples = np.where(ok, np.asarray(days.samples, dtype=np.float64), 0.0)
    ends = np.asarray(days.ends, dtype=np.float64)
    age_hours = (ends[-1] - ends) / 3600.0
    decay = 0.0 if math.isinf(half_life_hours) else math.log(2.0) / half_life_hours
    with np.errstate(divide="ignore"):
        log_w = np.log(samples) - decay * age_hours
    log_w -= log_w[samples > 0].max()
    weights = np.where(samples > 0, np.exp(log_w), 0.0)
    return weights / weights.sum()


@np.errstate(invalid="ignore", over="ignore")        # rows that are not usable() are computed, then dropped
def quantile_grid(days: "DaySummary") -> tuple[np.ndarray, np.ndarray]:
    """Each bucket's quantile function: the probability grid U [K] and values X [buckets, K].

    ``X[i]`` is non-decreasing, starts at the mean-matched minimum and ends at the bucket max.
    """
    qs = sorted(q for q in days.quantiles if 0 < q < 100)
    inner_u = np.array([q / 100.0 for q in qs])
    n = len(days.ends)
    inner = (np.array([days.quantiles[q] for q in qs], dtype=np.float64).T if qs
             else np.empty((n, 0)))
    top = np.asarray(days.max, dtype=np.float64)[:, None]
    inner = np.minimum(np.maximum.accumulate(inner, axis=1), top) if qs else inner
    upper_u = np.concatenate((inner_u, [1.0]))
    upper = np.concatenate((inner, top), axis=1)
    # mean = integral of Q over [0, 1]: trapezoids above the first known point, then solve for low
    rest = (0.5 * np.diff(upper_u) * (upper[:, 1:] + upper[:, :-1])).sum(axis=1)
    first_u, first_x = upper_u[0], upper[:, 0]
    mean = np.asarray(days.mean, dtype=np.float64)
    low = 2.0 * (mean - rest) / first_u - first_x
    low = np.clip(np.nan_to_num(low, nan=0.0), 0.0, first_x)
    grid_u = np.concatenate(([0.0], upper_u))
    values = np.concatenate((low[:, None], upper), axis=1)
    scale = np.maximum(1.0, np.abs(values).max(axis=1, keepdims=True))
    return grid_u, values + _TIE_SPREAD * scale * grid_u        # strictly increasing for interp


def bucket_cdfs(grid_u: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Each bucket's piecewise-linear CDF (``values[i]`` at ``grid_u``) at the points ``at``: [buckets, points].

    One ``np.interp`` for all buckets: each row is shifted into its own range (rows are strictly
    increasing) and the points are clipped to the row's range first, so below it reads 0, above it 1.
    """
    rows = values.shape[0]
    low, high = values[:, :1], values[:, -1:]
    span = float(high.max() - low.min()) + 1.0
    offset = span * np.arange(rows, dtype=np.float64)[:, None]
    points = np.clip(at[None, :], low, high) + offset
    return np.interp(points.ravel(), (values + offset).ravel(), np.tile(grid_u, rows)).reshape(rows, len(at))


def recent_quantile(days: "DaySummary", q: int, half_life_hours: float) -> float:
    """The ``q``-quantile (integer percent, 1..100) of the recency-weighted usage distribution.

    See the module docstring for the model. ``half_life_hours`` may be ``math.inf``
    (every sample weighs the same). Raises :class:`ConfigError` for a bad ``q`` or
    half-life and :class:`DataSourceError` for a summary without samples.
    """
    if not 1 <= q <= 100:
        raise ConfigError(f"percentile must be an integer 1..100, got {q!r}", field="percentile")
    weights = bucket_weights(days, half_life_hours)
    live = weights > 0
    peak = float(np.asarray(days.max, dtype=np.float64)[live].max())
    if q >= 100:
        return peak
    return min(peak, _mixture_quantile(days, weights, live, q))


def _mixture_quantile(days: "DaySummary", weights: np.ndarray, live: np.ndarray, q: int) -> float:
    """The q-quantile of the weighted mixture of the live buckets' distributions (exact, see the module)."""
    grid_u, values = quantile_grid(days)
    values, weights = values[live], weights[live]
    candidates = np.sort(values, axis=None)
    cdf = weights @ bucket_cdfs(grid_u, values, candidates)
    target = q / 100.0
    j = int(np.searchsorted(cdf, target - 1e-12))
    if j <= 0:
        return float(candidates[0])
    if j >= len(candidates):
        return float(candidates[-1])
    lo, hi = cdf[j - 1], cdf[j]
    frac = 0.0 if hi <= lo else (target - lo) / (hi - lo)
    return float(candidates[j - 1] + frac * (candidates[j] - candidates[j - 1]))
