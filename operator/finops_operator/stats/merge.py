"""Replica merge: the worst replica, per bucket and for the window, of one workload container.

Every source hands :func:`merge_replicas` one :class:`PodSeriesStats` per pod container (the
snapshot path: one per series row, its rows already being the worst replica at each step; the
live Prometheus path: one per pod, renamed pods of rollouts included) and gets the
:class:`~finops_operator.models.UsageStats` the right-sizers read.

Rules (one place for them):

* every figure (window quantiles, max, mean, std; per bucket: mean, max, quantiles) is the
  max over the pods that have samples: the worst replica, the one a request must fit;
* ``samples`` per bucket is the sum over pods capped at the bucket's expected points (a
  rollout, pods one after another, adds up to full coverage; three replicas side by side
  are not counted three times); the window's ``samples`` is the sum of the capped buckets;
* ``first_seen`` is the earliest pod's first sample.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from ..models import DaySummary, UsageStats


@dataclass(frozen=True, slots=True)
class PodSeriesStats:
    """One pod container's series over the window, the typed input of :func:`merge_replicas`.

    Window figures are exact over the pod's own samples; per-bucket arrays follow the window's
    bucket grid (``ends`` oldest first, see :mod:`.buckets`) and hold NaN (and 0 samples) where
    the pod has no sample in a bucket. ``quantiles`` and ``bucket_quantiles`` are keyed by
    integer percent (the same keys for every pod of a merge).
    """

    samples: int
    quantiles: dict[int, float]
    max: float
    mean: float
    std: float
    first: int | None                        # epoch seconds of the first sample (None: unknown)
    bucket_samples: np.ndarray               # int64 [buckets]
    bucket_mean: np.ndarray                  # float64 [buckets]
    bucket_max: np.ndarray                   # float64 [buckets]
    bucket_quantiles: dict[int, np.ndarray]  # percent -> float64 [buckets]


@dataclass(frozen=True, slots=True)
class Buckets:
    """The window's buckets as every pod of a merge shares them."""

    seconds: int
    ends: tuple[int, ...]          # epoch seconds, oldest first
    expected: np.ndarray           # int64 [buckets]: points a full bucket holds


def merge_replicas(pods: list[PodSeriesStats], *, expected: int, buckets: Buckets) -> UsageStats | None:
    """Worst-replica statistics of one workload container; None when no pod has a sample.

    ``expected`` is the number of points a full window holds at the step.
    """
    pods = [p for p in pods if p.samples > 0]
    if not pods:
        return None
    total = pods[0].bucket_samples if len(pods) == 1 else np.sum(np.vstack([p.bucket_samples for p in pods]), axis=0)
    capped = np.minimum(total, buckets.expected).tolist()
    samples = min(sum(capped), expected)
    firsts = [p.first for p in pods if p.first is not None]
    first_seen = _moment(min(firsts)) if firsts else None
    keys = sorted(pods[0].quantiles if len(pods) == 1 else set.intersection(*(set(p.quantiles) for p in pods)))
    quantiles = {q: max(p.quantiles[q] for p in pods) for q in keys}
    days = DaySummary(
        bucket_seconds=buckets.seconds, ends=buckets.ends, samples=_shared(tuple(capped)),
        mean=_worst([p.bucket_mean for p in pods]), max=_worst([p.bucket_max for p in pods]),
        quantiles={q: _worst([p.bucket_quantiles[q] for p in pods]) for q in keys if
                   all(q in p.bucket_quantiles for p in pods)})
    return UsageStats(samples=samples, expected=expected, quantiles=quantiles, max=max(p.max for p in pods),
                      mean=max(p.mean for p in pods), std=max(p.std for p in pods), first_seen=first_seen, days=days)


@functools.lru_cache(maxsize=4096)
def _shared(counts: tuple[int, ...]) -> tuple[int, ...]:
    """One tuple object per distinct per-bucket sample count (most containers share a few, e.g. full
    coverage): 20,000 summaries keep about 11 MB less."""
    return counts


@functools.lru_cache(maxsize=4096)
def _moment(epoch: int) -> datetime:
    """One datetime per first-sample time (most containers were first seen at the window start)."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def _worst(per_pod: list[np.ndarray]) -> tuple[float, ...]:
    """Per-bucket max over pods, NaN where no pod has a value."""
    if len(per_pod) == 1:
        return tuple(per_pod[0].tolist())
    stacked = np.vstack(per_pod)
    has = ~np.isnan(stacked)
    worst = np.max(np.where(has, stacked, -np.inf), axis=0)
    return tuple(np.where(has.any(axis=0), worst, np.nan).tolist())
