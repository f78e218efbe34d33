"""Remote read without a server: the request bytes, the answer decoded on both paths (numpy and one by one),
hostile answers refused, and Prometheus 2.x's extrapolated rate() recomputed by hand."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from finops_operator.errors import DataSourceRefused
from finops_operator.sources import promremote as pr

T0 = 1_796_000_000_000          # ms, 2026-11-30


def varint(n: int) -> bytes:
    return pr._varint(n)


def field(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def sample(value: float, ms: int) -> bytes:
    body = (b"\x09" + struct.pack("<d", value) if value != 0.0 else b"") + b"\x10" + varint(ms)
    return field(2, body)


def series(labels: dict[str, str], samples: list[tuple[float, int]], labels_last: bool = False) -> bytes:
    head = b"".join(field(1, field(1, k.encode()) + field(2, v.encode())) for k, v in labels.items())
    tail = b"".join(sample(v, t) for v, t in samples)
    return field(1, tail + head if labels_last else head + tail)


def response(*encoded: bytes) -> bytes:
    return field(1, b"".join(encoded))


def test_matchers_parse_as_promql_writes_them():
    assert pr.parse_matcher('namespace=~"shop|pay"') == (2, "namespace", "shop|pay")
    assert pr.parse_matcher('container!=""') == (1, "container", "")
    assert pr.parse_matcher(' cluster = "eu \\"west\\"" ') == (0, "cluster", 'eu "west"')
    assert pr.parse_matcher('namespace!~"kube-.*"') == (3, "namespace", "kube-.*")
    with pytest.raises(ValueError, match="not a label matcher"):
        pr.parse_matcher("namespace=shop")


def test_the_request_is_a_read_request_for_samples():
    raw = pr.encode_request(1000, 2000, [(0, "__name__", "up"), (2, "job", "a|b")])
    top = list(pr._fields(raw, 0, len(raw)))
    assert [(n, w) for n, w, _ in top] == [(1, 2), (2, 0)] and top[1][2] == pr.SAMPLES
    query = list(pr._fields(raw, *top[0][2]))
    assert [(n, v) for n, w, v in query if w == 0] == [(1, 1000), (2, 2000)]
    matchers = [{n: (v if w == 0 else raw[v[0]:v[1]].decode()) for n, w, v in pr._fields(raw, *got)}
                for n, w, got in query if n == 3]
    assert matchers == [{1: 0, 2: "__name__", 3: "up"}, {1: 2, 2: "job", 3: "a|b"}]


def test_common_samples_decode_at_once_and_odd_ones_one_by_one():
    steady = [(float(i) + 0.5, T0 + 300_000 * i) for i in range(50)]
    odd = [(0.0, T0), (2.0, T0 + 15_000), (float("nan"), T0 + 30_000), (3.5, 5)]    # a zero, a stale marker, a short ts
    got = pr.decode_response(response(series({"namespace": "shop", "pod": "a"}, steady),
                                      series({"pod": "b"}, odd, labels_last=True)), source="s")
    assert [s.labels for s in got] == [{"namespace": "shop", "pod": "a"}, {"pod": "b"}]
    assert got[0].values.tolist() == [v for v, _ in steady] and got[0].times_ms.tolist() == [t for _, t in steady]
    assert got[1].times_ms.tolist() == [5, T0, T0 + 15_000] and got[1].values.tolist() == [3.5, 0.0, 2.0]
    cols = pr.decode_columns(memoryview(response(series({"pod": "a"}, steady), series({"pod": "c"}, []),
                                      series({"pod": "d"}, steady[::-1]))), source="s")
    assert cols.bounds.tolist() == [0, 50, 50, 100]                     # an empty series, a reversed one sorted
    assert cols.times_ms[50:].tolist() == [t for _, t in steady]


def test_a_recorded_rule_lands_on_one_time_grid():
    a = series({"namespace": "n", "pod": "p", "container": "c"}, [(1.0, 1_000_000), (2.0, 1_300_000)])
    b = series({"namespace": "n", "pod": "q", "container": "c"}, [(5.0, 1_300_000), (7.0, 1_600_000)])
    keys, times, matrix = pr.gauge_matrix(pr.decode_columns(response(a, b), source="s"), 1000, 1600, 100)
    assert keys == [("n", "p", "c"), ("n", "q", "c")] and times.tolist() == [1300.0, 1600.0]   # (start, end]
    assert np.array_equal(matrix, [[2.0, np.nan], [5.0, 7.0]], equal_nan=True)
    assert pr.gauge_matrix(pr.decode_columns(response(a, b), source="s"), 0, 1600, 5) is None   # 2 x 3 > 5


@pytest.mark.parametrize("raw", [b"\x0a\xff\x01", b"\x0a\x05\x0a\x03\x12", b"\x0b", b"\x0a\x02\x0a\x80"])
def test_a_broken_answer_is_refused_not_crashed(raw):
    with pytest.raises(DataSourceRefused, match="not a Prometheus ReadResponse"):
        pr.decode_response(raw, source="http://prom")


def rate_by_hand(points: list[tuple[int, float]], t: int, rng: int) -> float:
    """promql/functions.go extrapolatedRate, written out for one window (seconds and values)."""
    inside = [(ts, v) for ts, v in points if t - rng <= ts <= t]
    if len(inside) < 2:
        return float("nan")
    result, prev = inside[-1][1] - inside[0][1], inside[0][1]
    for _, v in inside:
        if v < prev:
            result += prev
        prev = v
    to_start, to_end = inside[0][0] - (t - rng), t - inside[-1][0]
    sampled = inside[-1][0] - inside[0][0]
    average = sampled / (len(inside) - 1)
    if result > 0 and inside[0][1] >= 0:
        to_start = min(to_start, sampled * inside[0][1] / result)
    threshold = average * 1.1
    interval = sampled + (to_start if to_start < threshold else average / 2) + (to_end if to_end < threshold else average / 2)
    return result * interval / sampled / rng


def test_rates_extrapolate_as_prometheus_2_does():
    rng = np.random.default_rng(7)
    times = np.cumsum(rng.integers(20, 45, size=400)) + 1_000_000           # jittered scrapes, seconds
    values = np.cumsum(rng.uniform(0, 3, size=400))
    values[150:] -= values[150] - 0.4                                        # a counter reset: on from 0.4
    points = list(zip(times.tolist(), values.tolist()))
    steps = np.arange(times[0] - 100, times[-1] + 200, 60)
    got = pr.step_rates(times * 1000, values, steps, 300)
    want = np.array([rate_by_hand(points, int(t), 300) for t in steps])
    assert np.array_equal(np.isnan(got), np.isnan(want)) and np.isnan(got).sum() >= 2
    assert np.allclose(got, want, rtol=1e-12, equal_nan=True)
    assert (got[~np.isnan(got)] >= 0).all()                                  # the reset is added back


def test_rates_are_summed_by_pod_container_and_bucketed_like_the_subqueries():
    steps = np.arange(600, 3601, 300)
    a = pr.Series({"namespace": "n", "pod": "p", "container": "c", "id": "1"}, np.arange(0, 3601, 300) * 1000,
                  np.arange(13, dtype=float) * 300)                        # 1 core
    b = pr.Series({"namespace": "n", "pod": "p", "container": "c", "id": "2"}, np.arange(0, 3601, 300) * 1000,
                  np.arange(13, dtype=float) * 150)                        # half a core, same container
    keys, matrix = pr.container_rates([a, b], steps, 300)
    assert keys == [("n", "p", "c")] and np.allclose(matrix, 1.5)
    ends = np.array([1800, 3600])
    assert pr.step_times(ends, 1800, 300).tolist() == list(range(300, 3601, 300))
    buckets, window = pr.figures(keys, matrix, steps, ends, 1800, (90,))
    assert buckets[("n", "p", "c")]["max"].tolist() == [1.5, 1.5] and window["cpu_q90"][0][1] == pytest.approx(1.5)
