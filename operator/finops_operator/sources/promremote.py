"""Samples over Prometheus' remote-read API, and the statistics the queries would give computed from them.

Without recording rules, every CPU statistic but the mean is a subquery: the
server evaluates ``rate()`` at every step once per statistic (bucket max, std,
each percentile, each window percentile), about 2.5 s of Prometheus CPU each at
1,000 containers x 7 days; with them, each statistic is still one pass over the
recorded series. The remote-read endpoint (``POST /api/v1/read``,
snappy-compressed protobuf, response type SAMPLES) hands over the samples
instead, with no evaluation and no JSON: measured 0.6-0.9 s of Prometheus CPU
for 2.5 million samples. From the raw CPU counter the client computes
Prometheus 2.x's extrapolated ``rate()`` over ``[t - rate, t]`` (both ends
included) at every step, ``sum by (namespace, pod, container)``
(:func:`container_rates`); a recorded series is put on its evaluation instants
(:func:`gauge_matrix`); :func:`figures` gives the statistics per bucket and over
the window.

Pure functions; the HTTP call is :meth:`.prometheus.PrometheusSource.read_raw`.
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
from ..stats.quantiles import row_figures
from .promstats import PodKey, pod_key

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


def _label(buf: bytes, span: tuple[int, int], into: dict[str, str]) -> None:
    """Add one Label message (name = 1, value = 2) to ``into``."""
    pair = {n: bytes(buf[s:e]).decode() for n, w, (s, e) in _fields(buf, *span) if w == 2}
    into[pair.get(1, "")] = pair.get(2, "")


def _slow(buf: bytes, start: int, end: int) -> tuple[dict[str, str], np.ndarray, np.ndarray]:
    """A TimeSeries' labels and samples one field at a time (any field order, zero values, any varint length)."""
    labels: dict[str, str] = {}
    times, values = [], []
    for number, wire, got in _fields(buf, start, end):
        if number == 1 and wire == 2:
            _label(buf, got, labels)
        if number != 2 or wire != 2:
            continue
        value, at = 0.0, 0
        for n, w, field in _fields(buf, *got):
            if n == 1 and w == 1:
                value = float(np.frombuffer(buf, dtype="<f8", count=1, offset=field[0])[0])
            elif n == 2 and w == 0:
                at = field - (1 << 64) if field >= 1 << 63 else field
        times.append(at)
        values.append(value)
    return labels, np.asarray(times, dtype=np.int64), np.asarray(values, dtype=np.float64)


def _head(buf: bytes, start: int, end: int) -> tuple[dict[str, str], int]:
    """A TimeSeries' labels and where its first sample record starts (``end`` without samples)."""
    labels: dict[str, str] = {}
    for number, wire, got in _fields(buf, start, end):
        if number == 1 and wire == 2:
            _label(buf, got, labels)
        elif number == 2 and wire == 2:
            return labels, got[0] - 2          # the record's tag and one-byte length (checked by the caller)
    return labels, end


class Columns(NamedTuple):
    """Every series of a ReadResponse in flat arrays: series i's samples are ``[bounds[i], bounds[i + 1])``."""

    labels: list[dict[str, str]]
    bounds: np.ndarray             # int64 [series + 1]
    times_ms: np.ndarray           # int64, ascending within a series
    values: np.ndarray             # float64, no NaN (stale markers dropped)

    def series(self) -> Iterator[Series]:
        for i, labels in enumerate(self.labels):
            lo, hi = int(self.bounds[i]), int(self.bounds[i + 1])
            yield Series(labels, self.times_ms[lo:hi], self.values[lo:hi])


CHUNK = 2048                     # series decoded together: bounds the temporary copies to a few MB


def _decode(raw: bytes) -> Columns:
    heads: list[tuple[dict[str, str], int, int, int]] = []       # labels, first sample, end, start
    for number, wire, got in _fields(raw, 0, len(raw)):
        if number == 1 and wire == 2:
            for n, w, span in _fields(raw, *got):
                if n == 1 and w == 2:
                    labels, first = _head(raw, *span)
                    heads.append((labels, first, span[1], span[0]))
    labels = [h[0] for h in heads]
    sizes = np.array([end - first for _, first, end, _ in heads], dtype=np.int64)
    counts = np.where(sizes % RECORD == 0, sizes // RECORD, 0)
    bounds = np.concatenate(([0], np.cumsum(counts)))
    times = np.empty(int(bounds[-1]), dtype=np.int64)          # filled in place, chunk by chunk
    values = np.empty(int(bounds[-1]))
    odd: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for lo in range(0, len(heads), CHUNK):
        hi = min(lo + CHUNK, len(heads))
        chunk_t, chunk_v, fast = _decode_chunk(raw, heads[lo:hi], sizes[lo:hi], counts[lo:hi])
        times[bounds[lo]:bounds[hi]], values[bounds[lo]:bounds[hi]] = chunk_t, chunk_v
        for i in (lo + np.flatnonzero(~fast)).tolist():  # a zero value, another varint length, fields out of order
            labels[i], got_t, got_v = _slow(raw, heads[i][3], heads[i][2])
            odd[i] = (got_t, got_v)
    if odd:
        parts = [odd[i] if i in odd else (times[bounds[i]:bounds[i + 1]], values[bounds[i]:bounds[i + 1]])
                 for i in range(len(heads))]
        counts = np.array([len(t) for t, _ in parts], dtype=np.int64)
        bounds = np.concatenate(([0], np.cumsum(counts)))
        times = np.concatenate([t for t, _ in parts])
        values = np.concatenate([v for _, v in parts])
    return _clean(Columns(labels, bounds, times, values))


def _decode_chunk(raw: bytes, heads: list[tuple[dict[str, str], int, int, int]], sizes: np.ndarray,
                  counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The common 18-byte records of a run of series decoded at once: their times and values (``counts``
    per series of ``sizes`` bytes of samples; a size that is no multiple of 18 counts 0) and which series
    decoded cleanly."""
    whole = sizes % RECORD == 0
    view = memoryview(raw)
    rows = np.frombuffer(b"".join(view[first:end] for (_, first, end, _), ok in zip(heads, whole) if ok),
                         dtype=np.uint8).reshape(-1, RECORD)
    good = ((rows[:, 0] == 0x12) & (rows[:, 1] == 16) & (rows[:, 2] == 0x09) & (rows[:, 11] == 0x10)
            & (rows[:, 12:17] >= 0x80).all(axis=1) & (rows[:, 17] < 0x80))
    offsets = np.concatenate(([0], np.cumsum(counts)))
    bad = np.concatenate(([0], np.cumsum(~good)))
    fast = whole & (bad[offsets[1:]] == bad[offsets[:-1]])
    values = np.ascontiguousarray(rows[:, 3:11]).view("<f8").ravel()
    times = np.zeros(len(rows), dtype=np.int64)
    for i in range(6):
        times |= (rows[:, 12 + i].astype(np.int64) & 0x7F) << (7 * i)
    return times, values, fast


def _clean(cols: Columns) -> Columns:
    """NaN values (stale markers) dropped, each series sorted by time."""
    bounds, times, values = cols.bounds, cols.times_ms, cols.values
    nan = np.isnan(values)
    if nan.any():
        kept = np.concatenate(([0], np.cumsum(~nan)))
        bounds, times, values = kept[bounds], times[~nan], values[~nan]
    step = np.diff(times) <= 0
    edges = bounds[1:-1] - 1                   # where one series ends and the next starts: not a step back
    step[edges[(edges >= 0) & (edges < len(step))]] = False
    for i in np.unique(np.searchsorted(bounds, np.flatnonzero(step), side="right") - 1):
        lo, hi = bounds[i], bounds[i + 1]
        order = np.argsort(times[lo:hi], kind="stable")
        times[lo:hi], values[lo:hi] = times[lo:hi][order], values[lo:hi][order]
    return Columns(cols.labels, bounds, times, values)


def decode_columns(raw: bytes, *, source: str) -> Columns:
    """Every series of a (decompressed) ReadResponse as flat arrays, decoded at once when every sample record
    has the common 18-byte shape (else that series one field at a time); DataSourceRefused when malformed."""
    try:
        return _decode(raw)
    except (ValueError, UnicodeDecodeError, IndexError) as exc:
        raise DataSourceRefused(f"the remote-read answer is not a Prometheus ReadResponse ({exc})",
                                source=source) from None


def iter_series(raw: bytes, *, source: str) -> Iterator[Series]:
    """The series of a (decompressed) ReadResponse (:func:`decode_columns`), one at a time."""
    return decode_columns(raw, source=source).series()


def decode_response(raw: bytes, *, source: str) -> list[Series]:
    """Every series of a (decompressed) ReadResponse (:func:`decode_columns`)."""
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
                    ) -> tuple[list[PodKey], np.ndarray]:
    """``sum by (namespace, pod, container) (rate(...))`` at every step: the pod containers (first seen
    first) and a [containers x steps] matrix, NaN where none of a container's series had a rate. Each
    series is reduced to its rates as it comes, so only one series' samples are held at a time."""
    rows: dict[PodKey, int] = {}
    sums: list[np.ndarray] = []
    for item in series:
        rate = step_rates(item.times_ms, item.values, steps_s, range_s)
        row = rows.setdefault(pod_key(item.labels), len(rows))
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


def gauge_matrix(cols: Columns, start_s: int, end_s: int, max_cells: int
                 ) -> tuple[list[PodKey], np.ndarray, np.ndarray] | None:
    """Plain series (a recorded rule: every series evaluated at the same instants) on one time grid: the
    pod container of each series (one row per series), the union of their sample times in (start, end]
    (epoch seconds) and a [series x times] matrix, NaN where a series has no sample. None when the matrix
    would hold more than ``max_cells`` values (the series were not sampled together)."""
    keys = [pod_key(lb) for lb in cols.labels]
    row = np.repeat(np.arange(len(keys), dtype=np.int32), np.diff(cols.bounds))
    at, values = cols.times_ms, cols.values
    inside = (at > start_s * 1000) & (at <= end_s * 1000)
    if not inside.all():                       # the read asked for (start, end]; a server may send more
        at, row, values = at[inside], row[inside], values[inside]
    del inside
    times = np.unique(at)
    if len(times) * len(keys) > max_cells:
        return None
    matrix = np.full((len(keys), len(times)), np.nan)
    matrix[row, np.searchsorted(times, at)] = values
    return keys, times / 1000.0, matrix


def figures(keys: list[PodKey], matrix: np.ndarray, times: np.ndarray, ends: np.ndarray,
            bucket_s: int, quantiles: tuple[int, ...], *, resource: str = "cpu",
            stats: tuple[str, ...] = ("max", "std")
            ) -> tuple[dict[PodKey, dict[str, np.ndarray]], dict[str, list]]:
    """What the per-statistic queries return, from a [rows x times] matrix: per pod container and bucket
    ``stats`` (of count, mean, max, std) and each percentile (``stats.quantiles.row_figures``, PromQL's
    interpolation), and the window percentiles as ``{"<resource>_q<p>": [(labels, value)]}``. Rows of one
    pod container are combined by the max of each statistic (the queries' ``max by``). A bucket without
    a sample is NaN; a container without any is left out."""
    bucket = np.searchsorted(ends, times, side="left")         # time in (ends[i] - bucket, ends[i]]
    names = (*stats, *(f"q{q}" for q in quantiles))
    per_stat = {name: np.full((len(keys), len(ends)), np.nan) for name in names}
    for i in range(len(ends)):
        block = matrix[:, bucket == i]
        if block.shape[1] == 0:
            continue
        got = row_figures(block, quantiles, spread="std" in stats)
        values = {"count": np.where(got.samples > 0, got.samples, np.nan), "mean": got.mean, "max": got.max,
                  "std": got.std, **{f"q{q}": got.quantiles[q] for q in quantiles}}
        for name in names:
            per_stat[name][:, i] = values[name]
    whole = row_figures(matrix[:, bucket < len(ends)], quantiles, spread=False)
    rows: dict[PodKey, list[int]] = {}
    for row, key in enumerate(keys):
        if whole.samples[row] > 0:
            rows.setdefault(key, []).append(row)
    buckets = {key: {name: values[idx[0]] if len(idx) == 1 else np.fmax.reduce(values[idx], axis=0)
                     for name, values in per_stat.items()} for key, idx in rows.items()}
    window = {f"{resource}_q{q}": [({"namespace": key[0], "pod": key[1], "container": key[2]},
                                    float(np.max(whole.quantiles[q][idx]))) for key, idx in rows.items()]
              for q in quantiles}
    return buckets, window
