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

:func:`recent_quantiles` computes it for many series at once (:class:`.bucketarrays.BucketArrays`);
:func:`recent_quantile` is the same for one summary.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError, DataSourceError
from .bucketarrays import BucketArrays

if TYPE_CHECKING:
    from ..models.usage import DaySummary

#: Relative spread given to a bucket whose figures are all equal (a flat series), so its CDF is invertible.
_TIE_SPREAD = 1e-9
#: Elements of the [rows, buckets, candidates, points] comparison per chunk (bounded memory).
_CHUNK_ELEMENTS = 1 << 18


def _check(q: int, half_life_hours: float) -> None:
    if not half_life_hours > 0:
        raise ConfigError(f"halfLifeHours must be above 0, got {half_life_hours!r}", field="halfLifeHours")
    if not 1 <= q <= 100:
        raise ConfigError(f"percentile must be an integer 1..100, got {q!r}", field="percentile")


def weights_of(arrays: BucketArrays, half_life_hours: float) -> np.ndarray:
    """Bucket weights [rows, buckets]: samples x 0.5 ** (age / half-life), each row summing to 1.

    Computed in log space so a short half-life over a long window never underflows to all
    zeros. Unusable buckets weigh 0; a row without a usable bucket is all 0.
    """
    samples = arrays.samples
    age_hours = (float(arrays.ends[-1]) - arrays.ends.astype(np.float64)) / 3600.0
    decay = 0.0 if math.isinf(half_life_hours) else math.log(2.0) / half_life_hours
    live = samples > 0
    with np.errstate(divide="ignore"):
        log_w = np.where(live, np.log(np.where(live, samples, 1.0)) - decay * age_hours, -np.inf)
    top = np.max(log_w, axis=1, keepdims=True)
    weights = np.where(live, np.exp(log_w - np.where(np.isfinite(top), top, 0.0)), 0.0)
    total = weights.sum(axis=1, keepdims=True)
    return np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)


def bucket_weights(days: "DaySummary", half_life_hours: float) -> np.ndarray:
    """:func:`weights_of` for one summary; :class:`DataSourceError` when no bucket is usable."""
    _check(100, half_life_hours)
    arrays = BucketArrays.of([days])
    if not arrays.usable.any():
        raise DataSourceError("the usage summary has no bucket with samples and finite figures; nothing to weigh",
                              field="days.samples")
    return weights_of(arrays, half_life_hours)[0]


def quantile_grid(arrays: BucketArrays) -> tuple[np.ndarray, np.ndarray]:
    """Each bucket's quantile function: the probability grid U [K] and values X [rows, buckets, K].

    ``X[r, b]`` is increasing, starts at the mean-matched minimum and ends at the bucket max; an
    unusable bucket gets its row's peak (it weighs 0, and its points sit where the CDF is 1).
    """
    qs = sorted(q for q in arrays.quantiles if 0 < q < 100)
    top = arrays.max[..., None]
    inner = np.stack([arrays.quantiles[q] for q in qs], axis=-1) if qs else np.empty(top.shape[:2] + (0,))
    inner = np.minimum(np.maximum.accumulate(inner, axis=-1), top)
    upper_u = np.array([q / 100.0 for q in qs] + [1.0])
    upper = np.concatenate((inner, top), axis=-1)
    # mean = integral of Q over [0, 1]: trapezoids above the first known point, then solve for low
    rest = (0.5 * np.diff(upper_u) * (upper[..., 1:] + upper[..., :-1])).sum(axis=-1)
    with np.errstate(invalid="ignore"):
        low = np.clip(2.0 * (arrays.mean - rest) / upper_u[0] - upper[..., 0], 0.0, upper[..., 0])
    grid_u = np.concatenate(([0.0], upper_u))
    values = np.concatenate((low[..., None], upper), axis=-1)
    peak = np.nanmax(np.where(arrays.usable, arrays.max, np.nan), axis=1, initial=0.0)
    values = np.where(arrays.usable[..., None], values, peak[:, None, None])
    scale = np.maximum(1.0, np.abs(values).max(axis=-1, keepdims=True))
    return grid_u, values + _TIE_SPREAD * scale * grid_u


def _mixture(grid_u: np.ndarray, values: np.ndarray, weights: np.ndarray, q: int) -> np.ndarray:
    """The q-quantile of each row's weighted mixture of bucket distributions: [rows] (exact)."""
    rows, buckets, k = values.shape
    cands = np.sort(values.reshape(rows, buckets * k), axis=1)                # [rows, N]
    seg = (values[:, :, None, :] <= cands[:, None, :, None]).sum(axis=-1)    # [rows, buckets, N]
    lo, hi = np.clip(seg - 1, 0, k - 1), np.clip(seg, 0, k - 1)
    x0, x1 = np.take_along_axis(values, lo, axis=2), np.take_along_axis(values, hi, axis=2)
    width = x1 - x0
    frac = np.divide(cands[:, None, :] - x0, width, out=np.zeros_like(width), where=width > 0)
    inside = grid_u[lo] + frac * (grid_u[hi] - grid_u[lo])
    cdf = np.einsum("rb,rbn->rn", weights, np.where(seg == 0, 0.0, np.where(seg >= k, 1.0, inside)))
    target = q / 100.0
    j = np.clip((cdf < target - 1e-12).sum(axis=1), 1, cands.shape[1] - 1)[:, None]
    c0, c1 = np.take_along_axis(cdf, j - 1, axis=1), np.take_along_axis(cdf, j, axis=1)
    v0, v1 = np.take_along_axis(cands, j - 1, axis=1), np.take_along_axis(cands, j, axis=1)
    step = np.divide(target - c0, c1 - c0, out=np.zeros_like(c0), where=c1 > c0)
    result = np.where(c0 >= target - 1e-12, v0, v0 + np.clip(step, 0.0, 1.0) * (v1 - v0))
    return result[:, 0]


def recent_quantiles(arrays: BucketArrays, q: int, half_life_hours: float) -> np.ndarray:
    """The recency-weighted ``q``-quantile of every row: [rows], NaN for a row without a usable bucket."""
    _check(q, half_life_hours)
    weights = weights_of(arrays, half_life_hours)
    peak = np.nanmax(np.where(arrays.usable, arrays.max, np.nan), axis=1, initial=-np.inf)
    peak = np.where(np.isfinite(peak), peak, np.nan)
    if q >= 100 or arrays.rows == 0:
        return peak
    grid_u, values = quantile_grid(arrays)
    out = np.empty(arrays.rows)
    per_row = max(1, values.shape[1] * values.shape[1] * values.shape[2] * values.shape[2])
    chunk = max(1, _CHUNK_ELEMENTS // per_row)
    for start in range(0, arrays.rows, chunk):
        part = slice(start, start + chunk)
        out[part] = _mixture(grid_u, values[part], weights[part], q)
    return np.minimum(out, peak)


def recent_quantile(days: "DaySummary", q: int, half_life_hours: float) -> float:
    """The ``q``-quantile (integer percent, 1..100) of the recency-weighted usage distribution.

    See the module docstring for the model. ``half_life_hours`` may be ``math.inf``
    (every sample weighs the same). Raises :class:`ConfigError` for a bad ``q`` or
    half-life and :class:`DataSourceError` for a summary without a usable bucket.
    """
    _check(q, half_life_hours)
    arrays = BucketArrays.of([days])
    if not arrays.usable.any():
        raise DataSourceError("the usage summary has no bucket with samples and finite figures; nothing to weigh",
                              field="days.samples")
    return float(recent_quantiles(arrays, q, half_life_hours)[0])
