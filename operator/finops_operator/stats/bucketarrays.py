"""Many series' per-bucket summaries as arrays, so the estimators run once for a whole scan. Pure.

A scan sizes 10,000 containers; their :class:`~finops_operator.models.usage.DaySummary` objects
share one bucket grid, so :mod:`.recency`, :mod:`.trend` and :mod:`.spikes` work on
``[series, buckets]`` arrays (a single summary is a batch of one): per-call numpy overhead on
14-element arrays would otherwise cost more than the arithmetic.

A bucket is **usable** when it has samples and finite figures (mean, max, every quantile); an
unusable bucket has 0 samples and NaN figures here, and counts for nothing downstream.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..models.usage import DaySummary


@dataclass(frozen=True, slots=True)
class BucketArrays:
    """Per-bucket figures of ``rows`` series on one grid: arrays ``[rows, buckets]``, oldest bucket first."""

    bucket_seconds: int
    ends: np.ndarray                    # int64 [buckets], epoch seconds
    samples: np.ndarray                 # float64 [rows, buckets]; 0 where the bucket is not usable
    mean: np.ndarray                    # float64 [rows, buckets]; NaN where not usable
    max: np.ndarray
    quantiles: dict[int, np.ndarray]

    @property
    def rows(self) -> int:
        return self.samples.shape[0]

    @property
    def usable(self) -> np.ndarray:
        return self.samples > 0

    @classmethod
    def of(cls, days: Sequence["DaySummary"]) -> "BucketArrays":
        """The arrays of summaries that share ``ends`` and quantile keys (see :func:`group_key`)."""
        first = days[0]
        qs = sorted(first.quantiles)
        samples = np.array([d.samples for d in days], dtype=np.float64).reshape(len(days), -1)
        mean = np.array([d.mean for d in days], dtype=np.float64).reshape(samples.shape)
        top = np.array([d.max for d in days], dtype=np.float64).reshape(samples.shape)
        quantiles = {q: np.array([d.quantiles[q] for d in days], dtype=np.float64).reshape(samples.shape)
                     for q in qs}
        ok = (samples > 0) & np.isfinite(mean) & np.isfinite(top)
        for values in quantiles.values():
            ok &= np.isfinite(values)

        def masked(values: np.ndarray) -> np.ndarray:
            return np.where(ok, values, np.nan)

        return cls(first.bucket_seconds, np.asarray(first.ends, dtype=np.int64), np.where(ok, samples, 0.0),
                   masked(mean), masked(top), {q: masked(v) for q, v in quantiles.items()})

    def relative(self) -> "BucketArrays":
        """Each bucket's figures divided by its own mean (the usage's shape around its level);
        buckets with a zero mean become unusable."""
        ok = self.usable & (self.mean > 0)
        scale = np.where(ok, self.mean, 1.0)

        def rel(values: np.ndarray) -> np.ndarray:
            return np.where(ok, values / scale, np.nan)

        return BucketArrays(self.bucket_seconds, self.ends, np.where(ok, self.samples, 0.0), rel(self.mean),
                            rel(self.max), {q: rel(v) for q, v in self.quantiles.items()})

    def take(self, rows: slice | np.ndarray) -> "BucketArrays":
        return BucketArrays(self.bucket_seconds, self.ends, self.samples[rows], self.mean[rows], self.max[rows],
                            {q: v[rows] for q, v in self.quantiles.items()})


def group_key(days: "DaySummary") -> tuple:
    """Summaries with equal keys can share one :class:`BucketArrays`."""
    return days.bucket_seconds, tuple(days.ends), tuple(sorted(days.quantiles))
