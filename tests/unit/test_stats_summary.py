"""stats: the bucket grid, exact window and per-bucket figures against numpy on the raw matrix (properties)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from finops_operator.models import Window
from finops_operator.stats import bucket_ends, bucket_seconds, grid, row_figures, summarise

T0 = 1_790_000_400                     # a multiple of 300 and of 3600


def window(points: int, step: int) -> Window:
    start = datetime.fromtimestamp(T0, timezone.utc)
    return Window(start, start + timedelta(seconds=step * (points - 1)), step)


def timestamps(points: int, step: int) -> np.ndarray:
    return T0 + step * np.arange(points, dtype=np.int64)


@pytest.mark.parametrize("span, step, want", [
    (timedelta(days=14), 300, 86_400), (timedelta(days=2), 300, 86_400), (timedelta(days=1), 300, 21_600),
    (timedelta(hours=10), 300, 9_000), (timedelta(hours=1), 900, 900), (timedelta(minutes=10), 300, 300),
])
def test_bucket_length(span, step, want):
    start = datetime(2026, 3, 2, tzinfo=timezone.utc)
    assert bucket_seconds(Window(start, start + span, step)) == want


@settings(max_examples=200, deadline=None)
@given(step=st.sampled_from([15, 30, 60, 300, 900, 3600]), span=st.integers(1, 40 * 86_400))
def test_bucket_length_is_a_day_from_two_days_else_a_step_multiple_with_four_buckets(step, span):
    start = datetime(2026, 3, 2, tzinfo=timezone.utc)
    seconds = bucket_seconds(Window(start, start + timedelta(seconds=span), step))
    if span >= 2 * 86_400:
        assert seconds == 86_400
    else:
        assert seconds % step == 0 and seconds >= step
        assert span // seconds >= 4 or seconds == step


def test_buckets_are_end_aligned_and_the_oldest_takes_the_window_start():
    ts = timestamps(2 * 288 + 1, 300)                          # two whole days, both ends counted
    g = grid(ts, int(ts[-1]), 86_400)
    assert g.ends.tolist() == [int(ts[-1]) - 86_400, int(ts[-1])]
    assert g.expected.tolist() == [289, 288] and g.column_bucket[0] == 0 and g.column_bucket[-1] == 1
    assert g.column_bucket[289] == 1 and g.column_bucket[288] == 0     # (end - day, end]: left-open
    assert bucket_ends(int(ts[0]), int(ts[-1]), 86_400).tolist() == g.ends.tolist()
    assert bucket_ends(int(ts[1]), int(ts[-1]), 86_400).tolist() == g.ends.tolist()   # a partial oldest bucket
    assert bucket_ends(int(ts[-1]), int(ts[-1]), 86_400).tolist() == [int(ts[-1])]    # at least one
    masked = grid(ts, int(ts[-1]), 86_400, mask=np.arange(len(ts)) % 2 == 0)
    assert masked.expected.sum() == (len(ts) + 1) // 2 and (masked.column_bucket[1::2] == -1).all()


matrices = st.integers(1, 6).flatmap(lambda rows: st.integers(1, 60).flatmap(lambda points: hnp.arrays(
    np.float32, (rows, points), elements=st.one_of(st.just(np.nan), st.floats(0, 1e6, width=32)))))


@settings(max_examples=60, deadline=None)
@given(matrix=matrices, q=st.integers(50, 99))
def test_any_integer_percentile_matches_numpy_linear(matrix, q):
    figures = row_figures(matrix, (q,))
    for row, values in enumerate(matrix.astype(np.float64)):
        kept = values[~np.isnan(values)]
        assert figures.samples[row] == len(kept)
        if len(kept) == 0:
            assert np.isnan(figures.quantiles[q][row]) and np.isnan(figures.max[row])
            continue
        assert figures.quantiles[q][row] == pytest.approx(np.percentile(kept, q, method="linear"), rel=1e-9, abs=1e-9)
        assert figures.max[row] == kept.max()
        assert figures.mean[row] == pytest.approx(kept.mean(), rel=1e-9, abs=1e-6)
        assert figures.std[row] == pytest.approx(kept.std(), rel=1e-6, abs=1e-3)


@settings(max_examples=40, deadline=None)
@given(matrix=matrices, q=st.integers(50, 99), step=st.sampled_from([60, 300, 3600]),
       keep=st.integers(0, 2**16 - 1), block_rows=st.integers(1, 4))
def test_window_and_bucket_figures_agree_with_numpy_on_the_raw_matrix(matrix, q, step, keep, block_rows):
    points = matrix.shape[1]
    ts = timestamps(points, step)
    mask = np.array([(keep >> (i % 16)) & 1 == 1 for i in range(points)]) if keep else None
    g = grid(ts, int(ts[-1]), bucket_seconds(window(points, step)), mask)
    blocks = ((start, matrix[start:start + block_rows]) for start in range(0, len(matrix), block_rows))
    got = list(summarise(blocks, ts, g, percentiles=[q]))
    assert len(got) == len(matrix)
    data = matrix.astype(np.float64)
    for row, stats in enumerate(got):
        inside = data[row] if mask is None else data[row][mask]
        kept = inside[~np.isnan(inside)]
        if len(kept) == 0:
            assert stats is None
            continue
        assert stats.samples == len(kept) and stats.expected == len(inside)
        assert stats.quantiles[q] == pytest.approx(np.percentile(kept, q), rel=1e-9, abs=1e-9)
        assert stats.max == kept.max() and stats.mean == pytest.approx(kept.mean(), rel=1e-9, abs=1e-6)
        first = int(np.argmax(~np.isnan(data[row])))              # the whole row, whatever the mask
        assert stats.first_seen == datetime.fromtimestamp(int(ts[first]), timezone.utc)
        days = stats.days
        assert days.ends == tuple(g.ends.tolist()) and sum(days.samples) == stats.samples
        for i in range(g.count):
            cells = data[row][g.column_bucket == i]
            cells = cells[~np.isnan(cells)]
            assert days.samples[i] == len(cells)
            if len(cells) == 0:
                assert np.isnan(days.mean[i]) and np.isnan(days.max[i]) and np.isnan(days.quantiles[q][i])
                continue
            assert days.max[i] == cells.max() and days.mean[i] == pytest.approx(cells.mean(), rel=1e-9, abs=1e-6)
            assert days.quantiles[q][i] == pytest.approx(np.percentile(cells, q), rel=1e-9, abs=1e-9)
