"""Exact quantiles of matrix rows with gaps: one sort per block, linear interpolation.

Every percentile is read from the row sorted along time (NaN sorts last) with the same linear
interpolation as ``numpy.nanpercentile(method="linear")`` (and PromQL's
``quantile_over_time``); mean and population std (``ddof=0``) are computed in float64.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class RowFigures:
    """Column arrays of one block's figures, one entry per row (NaN where a row has no samples)."""

    samples: np.ndarray                  # int64
    quantiles: dict[int, np.ndarray]     # float64 per integer percent
    max: np.ndarray
    mean: np.ndarray
    std: np.ndarray


def row_figures(block: np.ndarray, percentiles: tuple[int, ...], *, spread: bool = True) -> RowFigures:
    """Samples, percentiles, max, mean and (with ``spread``) std of every row of ``block`` [rows, points]."""
    rows = block.shape[0]
    count = np.count_nonzero(~np.isnan(block), axis=1).astype(np.int64)
    nan = np.full(rows, np.nan)
    out = RowFigures(count, {q: nan.copy() for q in percentiles}, nan.copy(), nan.copy(), nan.copy())
    has = count > 0
    if not has.any():
        return out
    ordered = np.sort(block, axis=1)                       # NaN last; keeps the block's dtype (float32)
    index = np.arange(rows)
    last = np.maximum(count - 1, 0)
    for q in percentiles:
        pos = q / 100.0 * last
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, last)
        low = ordered[index, lo].astype(np.float64)
        high = ordered[index, hi].astype(np.float64)
        out.quantiles[q] = np.where(has, low + (high - low) * (pos - lo), np.nan)
    out.max = np.where(has, ordered[index, last].astype(np.float64), np.nan)
    del ordered
    safe = np.maximum(count, 1)
    total = np.nansum(block, axis=1, dtype=np.float64)
    out.mean = np.where(has, total / safe, np.nan)
    if spread:
        centred = block.astype(np.float64) - out.mean[:, None]
        np.square(centred, out=centred)
        out.std = np.where(has, np.sqrt(np.nansum(centred, axis=1) / safe), np.nan)
    return out
