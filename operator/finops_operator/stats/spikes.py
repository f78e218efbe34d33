"""Whether a series' peak comes from rare spikes. Pure, no I/O.

A percentile says nothing about how the usage above it looks: a JVM that sits at its
heap limit every hour and a batch job that spikes once a week can have the same p99.
For memory that matters: a request below a peak that comes back (however rarely) lets
the node run out when it does. The peaks are **rare spikes** when both hold:

* few buckets reach the peak: at most :data:`RARE_SHARE` of the buckets with samples have
  a max within :data:`NEAR_PEAK` of the window max (``max[i] >= 0.9 x window max``), and
* the peak is far above the typical level: ``window max >= FAR_RATIO x typical``, where
  ``typical`` is the median over buckets of the bucket's ``q``-quantile (``q`` defaults to
  the highest computed quantile).

The figures behind the verdict are kept so the evidence can show them.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError
from .bucketarrays import BucketArrays

if TYPE_CHECKING:
    from ..models.usage import DaySummary

NEAR_PEAK = 0.9
RARE_SHARE = 0.25
FAR_RATIO = 1.5


@dataclass(frozen=True, slots=True)
class Spikes:
    rare: bool                  # the window max comes from rare spikes
    peak: float                 # the window max
    typical: float              # median over buckets of the bucket's q-quantile
    quantile: int               # the q used for "typical"
    near_peak_share: float      # share of buckets whose max is within NEAR_PEAK of the peak
    peak_ratio: float           # peak / typical (inf when typical is 0 and the peak is not)


def spikes_of(arrays: BucketArrays, q: int) -> list[Spikes]:
    """The rare-spike verdict of every row (``q`` must be one of the arrays' quantiles)."""
    usable = arrays.usable
    maxes = np.where(usable, arrays.max, np.nan)
    figures = np.where(usable, arrays.quantiles[q], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)           # rows without a usable bucket: NaN, below
        peak = np.nanmax(maxes, axis=1)
        typical = np.nanmedian(figures, axis=1)
    count = usable.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(count > 0, (maxes >= NEAR_PEAK * peak[:, None]).sum(axis=1) / np.maximum(count, 1), 0.0)
        ratio = np.where(typical > 0, peak / typical, np.where(peak > 0, np.inf, 0.0))
    out = []
    for row in range(arrays.rows):
        if count[row] == 0:
            out.append(Spikes(False, 0.0, 0.0, q, 0.0, 0.0))
            continue
        rare = bool(share[row] <= RARE_SHARE and ratio[row] >= FAR_RATIO)
        out.append(Spikes(rare, float(peak[row]), float(typical[row]), q, round(float(share[row]), 6),
                          float(ratio[row])))
    return out


def spikes(days: "DaySummary", q: int | None = None) -> Spikes:
    """The rare-spike verdict for ``days`` (see the module docstring)."""
    if q is None:
        if not days.quantiles:
            raise ConfigError("the usage summary has no per-bucket quantiles to compare the peak with",
                              field="days.quantiles")
        q = max(days.quantiles)
    if q not in days.quantiles:
        computed = ", ".join(map(str, sorted(days.quantiles)))
        raise ConfigError(f"percentile {q} is not in the usage summary; computed: {computed}", field="percentile")
    return spikes_of(BucketArrays.of([days]), q)[0]
