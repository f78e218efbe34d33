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

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError
from .trend import median

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
    figures = np.asarray(days.quantiles[q], dtype=np.float64)
    has = (np.asarray(days.samples) > 0) & np.isfinite(days.max) & np.isfinite(figures)
    maxes = np.asarray(days.max, dtype=np.float64)[has]
    if not len(maxes):
        return Spikes(False, 0.0, 0.0, q, 0.0, 0.0)
    peak = float(maxes.max())
    typical = median(figures[has])
    share = float((maxes >= NEAR_PEAK * peak).mean())
    ratio = peak / typical if typical > 0 else (float("inf") if peak > 0 else 0.0)
    rare = share <= RARE_SHARE and ratio >= FAR_RATIO
    return Spikes(rare, peak, typical, q, round(share, 6), ratio)
