"""Per-bucket grids: which bucket each sample falls in, end-aligned to the window end.

Bucket ``i`` of ``n`` covers ``(ends[i] - seconds, ends[i]]`` with ``ends[-1]`` = the window end.
A :class:`~finops_operator.models.Window` counts both of its ends, so a window that is a whole
number of buckets has one point (its start) left of the oldest bucket: that point is counted
in the oldest bucket, which then expects one point more than the others.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..models import Window

DAY_SECONDS = 86_400
MIN_BUCKETS = 4


def bucket_seconds(window: Window) -> int:
    """Bucket length for ``window``: a day for windows of 2 days or more, else a multiple of the
    step giving at least :data:`MIN_BUCKETS` buckets (never shorter than one step)."""
    step = window.step_seconds
    span = int((window.end - window.start).total_seconds())
    if span >= 2 * DAY_SECONDS:
        return DAY_SECONDS
    return max(step, span // MIN_BUCKETS // step * step)


def bucket_ends(start: int, end: int, seconds: int) -> np.ndarray:
    """Ends (epoch seconds, oldest first) of the buckets of a window from ``start`` to ``end``:
    ``end``, ``end - seconds``, ... back to the bucket holding ``start`` (at least one bucket).
    Every source uses these ends (live queries evaluate the per-bucket ranges at them)."""
    count = max(1, -(-(end - start) // seconds))      # ceil
    return end - seconds * np.arange(count - 1, -1, -1, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class BucketGrid:
    """The buckets of one window and where each column of a series matrix falls.

    ``column_bucket[j]`` is the bucket of column ``j`` (-1: the column is masked out, e.g. outside
    business hours); ``expected[i]`` counts the columns in bucket ``i`` (the points a full
    bucket holds); ``slices[i]`` selects them (columns are in time order, so each bucket is a
    contiguous run of the kept columns).
    """

    seconds: int
    ends: np.ndarray              # int64 [n], epoch seconds, oldest first
    column_bucket: np.ndarray     # int64 [points]
    expected: np.ndarray          # int64 [n]

    @property
    def count(self) -> int:
        return len(self.ends)

    def columns(self, bucket: int) -> np.ndarray:
        """Column numbers of ``bucket`` (ascending)."""
        return np.flatnonzero(self.column_bucket == bucket)


def grid(timestamps: np.ndarray, end: int, seconds: int, mask: np.ndarray | None = None) -> BucketGrid:
    """The bucket grid of columns at ``timestamps`` for a window ending at ``end`` (epoch seconds)."""
    ts = np.asarray(timestamps, dtype=np.int64)
    if seconds <= 0:
        raise ValueError(f"bucket length must be positive, got {seconds}")
    if len(ts) == 0:
        return BucketGrid(seconds, np.array([end], dtype=np.int64), ts.copy(), np.zeros(1, dtype=np.int64))
    ends = bucket_ends(int(ts.min()), end, seconds)
    count = len(ends)
    back = (end - ts) // seconds                      # 0 for the newest bucket
    column_bucket = np.clip(count - 1 - back, 0, count - 1)
    column_bucket = np.where(ts > end, -1, column_bucket)
    if mask is not None:
        column_bucket = np.where(mask, column_bucket, -1)
    expected = np.bincount(column_bucket[column_bucket >= 0], minlength=count).astype(np.int64)
    return BucketGrid(seconds, ends, column_bucket.astype(np.int64), expected)
