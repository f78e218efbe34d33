"""The snapshot path: a matrix of series (one row per workload container) -> UsageStats per row.

Streaming: rows are read in blocks (``block_rows`` at a time, or whatever blocks the caller
hands in, e.g. :meth:`finops_operator.snapshot.Snapshot.row_blocks` on a memory-mapped file),
so memory stays bounded by one block whatever the number of containers. Per block:

* ``first_seen`` = the first sample of the whole row, whatever the time window (the age);
* the time window's mask (:func:`.timewindow.window_mask`) keeps the in-window columns;
  ``expected`` counts them, ``samples`` the non-NaN ones among them;
* exact window percentiles, max, mean, std over the kept columns (:mod:`.quantiles`);
* the same per bucket of the window's grid (:mod:`.buckets`): samples, mean, max, percentiles;
* each row becomes one :class:`.merge.PodSeriesStats`, merged by :func:`.merge.merge_replicas`
  (one pod: the figures are the row's own), the rule the live path shares.

A row without any sample in the window gets ``None``: no data is never reported as zero.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from ..models import UsageStats
from .buckets import BucketGrid
from .merge import Buckets, PodSeriesStats, merge_replicas
from .quantiles import RowFigures, row_figures

BLOCK_ROWS = 512
Blocks = Iterable[tuple[int, np.ndarray]]      # (first row number, rows [n, points])


def blocks_of(matrix: np.ndarray, block_rows: int = BLOCK_ROWS) -> Iterator[tuple[int, np.ndarray]]:
    """Row blocks of an in-memory matrix."""
    for start in range(0, matrix.shape[0], block_rows):
        yield start, matrix[start:start + block_rows]


def summarise(rows: np.ndarray | Blocks, timestamps: np.ndarray, grid: BucketGrid, *,
              percentiles: Iterable[int] = ()) -> Iterator[UsageStats | None]:
    """Summaries of every row, in row order (a generator: consume it while the blocks stream).

    ``rows`` is a matrix [rows, points] or an iterable of ``(start, block)`` row blocks;
    ``grid`` is :func:`.buckets.grid` of ``timestamps`` (with the time window's mask);
    ``percentiles`` are the integer percentiles (50..99) computed for the window and per bucket.
    """
    blocks = blocks_of(rows) if isinstance(rows, np.ndarray) else rows
    wanted = tuple(sorted(set(percentiles)))
    ts = np.asarray(timestamps, dtype=np.int64)
    kept = np.flatnonzero(grid.column_bucket >= 0)
    bounds = np.searchsorted(grid.column_bucket[kept], np.arange(grid.count + 1), side="left")
    shared = Buckets(grid.seconds, tuple(int(e) for e in grid.ends), grid.expected)
    expected = len(kept)
    everything = expected == len(ts)
    for _start, block in blocks:
        present = ~np.isnan(block)
        first = np.where(present.any(axis=1), np.argmax(present, axis=1), -1)
        del present
        inside = block if everything else block[:, kept]
        window = row_figures(inside, wanted)
        per_bucket = [row_figures(inside[:, bounds[i]:bounds[i + 1]], wanted, spread=False)
                      for i in range(grid.count)]
        del inside
        yield from _row_stats(window, per_bucket, first, ts, wanted, shared, expected)


def _row_stats(window: RowFigures, per_bucket: list[RowFigures], first: np.ndarray, ts: np.ndarray,
               wanted: tuple[int, ...], shared: Buckets, expected: int) -> Iterator[UsageStats | None]:
    def columns(pick) -> np.ndarray:       # [rows, buckets]
        return np.column_stack([pick(f) for f in per_bucket])

    b_samples, b_mean, b_max = columns(lambda f: f.samples), columns(lambda f: f.mean), columns(lambda f: f.max)
    b_quantiles = {q: columns(lambda f, q=q: f.quantiles[q]) for q in wanted}
    samples, firsts = window.samples.tolist(), first.tolist()
    w_max, w_mean, w_std = window.max.tolist(), window.mean.tolist(), window.std.tolist()
    w_quantiles = {q: values.tolist() for q, values in window.quantiles.items()}
    for row in range(len(samples)):
        if samples[row] == 0:
            yield None
            continue
        pod = PodSeriesStats(
            samples=samples[row], quantiles={q: w_quantiles[q][row] for q in wanted}, max=w_max[row],
            mean=w_mean[row], std=w_std[row], first=int(ts[firsts[row]]) if firsts[row] >= 0 else None,
            bucket_samples=b_samples[row], bucket_mean=b_mean[row], bucket_max=b_max[row],
            bucket_quantiles={q: b_quantiles[q][row] for q in wanted})
        yield merge_replicas([pod], expected=expected, buckets=shared)
