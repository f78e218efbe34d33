"""Raw CPU counter samples over Prometheus' remote-read API, and their rates computed on the client.

Without recording rules, every CPU statistic but the mean is a subquery: the
server evaluates ``rate()`` at every step once per statistic (bucket max, std,
each percentile, each window percentile), about 2.5 s of Prometheus CPU each at
1,000 containers x 7 days. The remote-read endpoint (``POST /api/v1/read``,
snappy-compressed protobuf, response type SAMPLES) hands over the raw samples
instead, with no evaluation and no JSON: measured 0.6-0.9 s of Prometheus CPU
for the same 2.5 million samples. The client then computes what the subqueries
would have: Prometheus 2.x's extrapolated ``rate()`` over ``[t - rate, t]`` (both
ends included) at every step, ``sum by (namespace, pod, container)``, and the
statistics per bucket and over the window (:mod:`.promremotestats`).

Pure functions; the HTTP call is :meth:`.prometheus.PrometheusSource.remote_read`.
The protobuf messages (``prompb/remote.proto``, ``types.proto``) are few and
small, so they are written and read here by hand: a ReadRequest with one Query
(start and end in ms, label matchers) and the SAMPLES response type; a
ReadResponse of QueryResults of TimeSeries (labels, then samples of a double
value and an int64 ms timestamp). Samples are decoded with numpy when every
record has the common 18-byte shape (a value that is not 0.0 and a timestamp
of 6 varint bytes, true from 1971 to 2109), else one by one.
"""
from __future__ import annotations

import re
from typing import Iterable, Iterator, NamedTuple

import numpy as np

from ..errors import DataSourceRefused

MATCH_TYPES = {"=": 0, "!=": 1, "=~": 2, "!~": 3}
_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')
SAMPLES = 0                      # ReadRequest.ResponseType.SAMPLES
RECORD = 18                      # 0x12 len(16) | 0x09 double(8) | 0x10 varint(6)


class Series(NamedTuple):
    labels: dict[str, str]
    times_ms: np.ndarray          # int64, ascending
    values: np.ndarray            # float64


# --------------------------------------------------------------------------- request


def parse_matcher(text: str) -> tuple[int, str, str]:
    """A PromQL label matcher (``namespace=~"shop|pay"``) as (type, name, value) for a remote-read Query."""
    found = _MATCHER.match(text)
    if not found:
        raise ValueError(f"{text!r} is not a label matcher of the form name=\"value\"")
    name, op, value = found.groups()
    return MATCH_TYPES[op], name, re.sub(r'\\(.)', r'\1', value)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _int_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def encode_request(start_ms: int, end_ms: int, matchers: list[tuple[int, str, str]]) -> bytes:
    """A ReadRequest (uncompressed protobuf) for one query and SAMPLES responses."""
    query = _int_field(1, start_ms) + _int_field(2, end_ms)
    for kind, name, value in matchers:
        query += _field(3, _int_field(1, kind) + _field(2, name.encode()) + _field(3, value.encode()))
    return _field(1, query) + _int_field(2, SAMPLES)


# --------------------------------------------------------------------------- response


def _read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    value, shift = 0, 0
    while pos < end and shift < 64:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise ValueError("a varint runs past its message")


def _fields(buf: bytes, pos: int, end: int):
    """(field number, wire type, value or (start, end) of a length-delimited payload) of one message."""
    while pos < end:
        key, pos = _read_varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos, end)
            yield number, wire, value
        elif wire == 2:
            size, pos = _read_varint(buf, pos, end)
            if pos + size > end:
                raise ValueError("a field runs past its message")
            yield number, wire, (pos, pos + size)
            pos += size
        elif wire == 1:
            if pos + 8 > end:
                raise ValueError("a fixed64 runs past its message")
            yield number, wire, (pos, pos + 8)
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"wire type {wire} is not valid here")


def _samples_fast(buf: bytes, start: int, end: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Every record in [start, end) decoded at once when all have the common 18-byte shape, else None."""
    size = end - start
    if size % RECORD:
        return None
    rows = np.frombuffer(buf, dtype=np.uint8, count=size, offset=start).reshape(-1, RECORD)
    varint = rows[:, 12:18]
    if not ((rows[:, 0] == 0x12).all() and (rows[:, 1] == 16).all() and (rows[:, 2] == 0x09).all()
            and (rows[:, 11] == 0x10).all() and (varint[:, :5] >= 0x80).all() and (varint[:, 5] < 0x80).all()):
        return None
    values = np.ascontiguousarray(rows[:, 3:11]).view("<f8").ravel().astype(np.float64)
    times = np.zeros(len(rows), dtype=np.int64)
    for i in range(6):
        times |= (varint[:, i].astype(np.int64) & 0x7F) << (7 * i)
    return times, values


def _samples_slow(buf: bytes, spans: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    times, values = [], []
    for start, end in spans:
        value, at = 0.0, 0
        for number, wire, got in _fields(buf, start, end):
            if number == 1 and wire == 1:
                value = float(np.frombuffer(buf, dtype="<f8", count=1, offset=got[0])[0])
            elif number == 2 and wire == 0:
                at = got - (1 << 64) if got >= 1 << 63 else got
        times.append(at)
        values.append(value)
    return np.asarray(times, dtype=np.int64), np.asarray(values, dtype=np.float64)


def _series(buf: bytes, start: int, end: int) -> Series:
    labels: dict[str, str] = {}
    spans: list[tuple[int, int]] = []
    first = None
    for number, wire, got in _fields(buf, start, end):
        if number == 1 and wire == 2:
            pair = {n: bytes(buf[s:e]).decode() for n, w, (s, e) in _fields(buf, *got) if w == 2}
            labels[pair.get(1, "")] = pair.get(2, "")
        elif number == 2 and wire == 2:
            if first is None:           # labels come first; try the rest of the message as one run of samples
                first = got[0] - 2      # the record's tag and one-byte length
                fast = _samples_fast(buf, first, end)
                if fast is not None:
                    return Series(labels, *fast)
            spans.append(got)
    return Series(labels, *_samples_slow(buf, spans))


def iter_series(raw: bytes, *, source: str) -> Iterator[Series]:
    """The series of a (decompressed) ReadResponse one at a time, stale markers and other NaNs dropped, by
    time; a malformed answer raises DataSourceRefused when the decoding reaches it."""
    try:
        for number, wire, got in _fields(raw, 0, len(raw)):
            if number != 1 or wire != 2:
                continue
            for n, w, span in _fields(raw, *got):
                if n == 1 and w == 2:
                    series = _series(raw, *span)
                    keep = ~np.isnan(series.values)
                    order = np.argsort(series.times_ms[keep], kind="stable")
                    yield Series(series.labels, series.times_ms[keep][order], series.values[keep][order])
    except (ValueError, UnicodeDecodeError, IndexError) as exc:
        raise DataSourceRefused(f"the remote-read answer is not a Prometheus ReadResponse ({exc})",
                                source=source) from None


def decode_response(raw: bytes, *, source: str) -> list[Series]:
    """Every series of a (decompressed) ReadResponse (:func:`iter_series`)."""
    return list(iter_series(raw, source=source))


# --------------------------------------------------------------------------- rates


def step_rates(times_ms: np.ndarray, values: np.ndarray, steps_s: np.ndarray, range_s: int) -> np.ndarray:
    """Prometheus 2.x ``rate(counter[range])`` at every step (epoch seconds), NaN where the range holds fewer
    than two samples: samples in [t - range, t], counter resets added back, extrapolated to the range's
    ends when the nearest sample is within 1.1 average intervals of them (else half an interval), and
    never to before the counter's zero (``extrapolatedRate`` in promql/functions.go)."""
    out = np.full(len(steps_s), np.nan)
    if len(times_ms) < 2:
        return out
    ends = steps_s.astype(np.int64) * 1000
    starts = ends - range_s * 1000
    lo = np.searchsorted(times_ms, starts, side="left")
    hi = np.searchsorted(times_ms, ends, side="right") - 1
    ok = hi - lo >= 1
    if not ok.any():
        return out
    drops = np.concatenate(([0.0], np.where(values[1:] < values[:-1], values[:-1], 0.0)))
    adjusted = values + np.cumsum(drops)
    lo, hi, start_ms, end_ms = lo[ok], hi[ok], starts[ok], ends[ok]
    first, last = values[lo], values[hi]
    result = adjusted[hi] - adjusted[lo]
    t_first, t_last = times_ms[lo], times_ms[hi]
    sampled = (t_last - t_first) / 1000.0
    to_start = (t_first - start_ms) / 1000.0
    to_end = (end_ms - t_last) / 1000.0
    average = sampled / (hi - lo)
    with np.errstate(divide="ignore", invalid="ignore"):
        to_zero = np.where((result > 0) & (first >= 0), sampled * (first / result), np.inf)
    to_start = np.minimum(to_start, to_zero)
    threshold = average * 1.1
    interval = sampled + np.where(to_start < threshold, to_start, average / 2) \
        + np.where(to_end < threshold, to_end, average / 2)
    out[ok] = result * (interval / sampled) / range_s
    return out


def container_rates(series: Iterable[Series], steps_s: np.ndarray, range_s: int
                    ) -> tuple[list[tuple[str, str, str]], np.ndarray]:
    """``sum by (namespace, pod, container) (rate(...))`` at every step: the pod containers (first seen
    first) and a [containers x steps] matrix, NaN where none of a container's series had a rate. Each
    series is reduced to its rates as it comes, so only one series' samples are held at a time."""
    rows: dict[tuple[str, str, str], int] = {}
    sums: list[np.ndarray] = []
    for item in series:
        key = (item.labels.get("namespace", ""), item.labels.get("pod", ""), item.labels.get("container", ""))
        rate = step_rates(item.times_ms, item.values, steps_s, range_s)
        row = rows.setdefault(key, len(rows))
        if row == len(sums):
            sums.append(rate)
        else:
            sums[row] = np.where(np.isnan(sums[row]), rate, np.where(np.isnan(rate), sums[row], sums[row] + rate))
    total = np.vstack(sums) if sums else np.empty((0, len(steps_s)))
    return list(rows), total


# --------------------------------------------------------------------------- statistics


def step_times(ends: np.ndarray, bucket_s: int, step_s: int) -> np.ndarray:
    """The steps a subquery ``[<bucket>:<step>]`` evaluated at each bucket end reads: multiples of ``step_s``
    in (ends[0] - bucket, ends[-1]] (``promql.open_range``), oldest first."""
    first = (int(ends[0]) - bucket_s) // step_s * step_s + step_s
    return np.arange(first, int(ends[-1]) + 1, step_s, dtype=np.int64)


def figures(keys: list[tuple[str, str, str]], matrix: np.ndarray, steps: np.ndarray, ends: np.ndarray,
            bucket_s: int, quantiles: tuple[int, ...]
            ) -> tuple[dict[tuple[str, str, str], dict[str, np.ndarray]], dict[str, list]]:
    """What the raw-CPU subqueries return, from the per-step rates: per pod container and bucket the max,
    std and each percentile (``stats.quantiles.row_figures``, PromQL's interpolation), and the window
    percentiles as ``{"cpu_q<p>": [(labels, value)]}``. A bucket without a rate is NaN; a container
    without any is left out."""
    from ..stats.quantiles import row_figures
    bucket = np.searchsorted(ends, steps, side="left")         # step in (ends[i] - bucket, ends[i]]
    per_stat = {name: np.full((len(keys), len(ends)), np.nan) for name in ("max", "std", *(f"q{q}" for q in quantiles))}
    for i in range(len(ends)):
        block = matrix[:, bucket == i]
        if block.shape[1] == 0:
            continue
        got = row_figures(block, quantiles)
        per_stat["max"][:, i], per_stat["std"][:, i] = got.max, got.std
        for q in quantiles:
            per_stat[f"q{q}"][:, i] = got.quantiles[q]
    whole = row_figures(matrix, quantiles, spread=False)
    present = whole.samples > 0
    buckets = {key: {name: values[row] for name, values in per_stat.items()}
               for row, key in enumerate(keys) if present[row]}
    labels = [{"namespace": ns, "pod": pod, "container": c} for ns, pod, c in keys]
    window = {f"cpu_q{q}": [(labels[row], float(whole.quantiles[q][row])) for row in np.flatnonzero(present)]
              for q in quantiles}
    return buckets, window
