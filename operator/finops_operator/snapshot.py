"""Snapshot files: a cluster inventory plus raw usage series, in one ``.npz``.

Format ``finops-snapshot/v1``: a ``.npz`` as ``numpy.savez`` writes it, no pickles. ``cpu`` and ``memory``
are stored uncompressed so that :func:`load_snapshot` memory-maps them and scans read them row
block by row block (:meth:`Snapshot.row_blocks`: peak memory is one block, not the matrix); the
other members are deflated (level 1). Files with deflated ``cpu``/``memory`` (older writers) are
read into memory instead:

``meta``        uint8 array holding UTF-8 JSON::

                    {"format": "finops-snapshot/v1", "cluster": ..., "region": ...,
                     "window": {"start": ISO, "end": ISO, "stepSeconds": int},
                     "workloads": [...], "pods": [...], "nodes": [...], "pdbs": [...],
                     "volumes": [...], "nodeGroups": [...], "nodePools": [...],
                     "containers": [{"workload": {"kind", "namespace", "name"}, "container": ...}]}

                ``workloads`` .. ``nodePools`` are the :mod:`finops_operator.models`
                dataclasses as JSON (field names as in the dataclasses, enums by
                value, times as ISO 8601); ``containers`` gives the row order.
``timestamps``  int64 [n_points], epoch seconds, evenly spaced at the step,
                first = window start, last = window end.
``cpu``         float32 [n_containers, n_points], cores per replica (worst
                replica at each step); NaN = no sample (gap).
``memory``      float32 [n_containers, n_points], bytes per replica; NaN = gap.
``throttled``   float32 [n_containers], share of CFS periods throttled over the
                window; NaN = unknown (no CPU limit).

:func:`load_snapshot` checks all of that and raises :class:`SnapshotError`
naming the file and the field: sizes first (the file, each member and each array header
against :mod:`.safeio`'s snapshot limits, before anything is decompressed), then every
inventory number (finite, >= 0, at most :data:`MAX_NUMBER`), every usage value (finite
or NaN, >= 0) and every ``finops.dev/source`` hint (a path inside the repository); :func:`save_snapshot` runs the same checks
first and writes atomically, so a bad or half-written file never appears.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import mmap
import os
import stat
import types
import typing
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from . import models, safeio
from .errors import SnapshotError
from .models import ClusterState, ContainerKey, Window, WorkloadRef

FORMAT = "finops-snapshot/v1"
ARRAYS = ("timestamps", "cpu", "memory", "throttled")
MAPPED = ("cpu", "memory")      # stored uncompressed, memory-mapped on load
BLOCK_ROWS = 512
MAX_NUMBER = 10**18     # any count, size or quantity in the inventory (an exabyte; a billion cores)


@dataclass(slots=True)
class Snapshot:
    """Inventory (``state``, usage left empty) plus the raw series, rows in ``keys`` order."""

    state: ClusterState
    keys: list[ContainerKey]
    timestamps: np.ndarray      # int64 [n_points]
    cpu: np.ndarray             # float32 [n_containers, n_points]
    memory: np.ndarray          # float32 [n_containers, n_points]
    throttled: np.ndarray       # float32 [n_containers]

    def row_blocks(self, name: str, block_rows: int = BLOCK_ROWS) -> Iterator[tuple[int, np.ndarray]]:
        """``(first row, rows)`` blocks of the ``cpu`` or ``memory`` matrix, in row order.

        A memory-mapped matrix gives its pages back after each block (they stay in the page
        cache), so a full pass keeps one block resident, not the whole file.
        """
        return row_blocks(getattr(self, name), block_rows)

    def index(self) -> dict[ContainerKey, int]:
        """Row number of each container."""
        return {key: row for row, key in enumerate(self.keys)}

    def validate(self, source: str = "snapshot") -> None:
        """Raise :class:`SnapshotError` when arrays and inventory disagree."""
        _check_arrays(self, source)
        _check_rows(self, source)


# --------------------------------------------------------------------------- JSON codec


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _fail(source: str, path: str, message: str) -> typing.NoReturn:
    raise SnapshotError(message, source=source, field=path)


def _decode(tp: Any, value: Any, path: str, source: str) -> Any:
    """Rebuild ``tp`` (a models dataclass or a typing form of one) from JSON."""
    if tp is Any:
        return value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        return _decode(next(a for a in args if a is not type(None)), value, path, source)
    if origin is list:
        if not isinstance(value, list):
            _fail(source, path, f"expected a list, got {type(value).__name__}")
        return [_decode(args[0], v, f"{path}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            _fail(source, path, f"expected a mapping, got {type(value).__name__}")
        return {_key(args[0], k, path, source): _decode(args[1], v, f"{path}.{k}", source) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return _decode_dataclass(tp, value, path, source)
    if isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(value)
        except ValueError:
            _fail(source, path, f"unknown value {value!r}; use one of {[e.value for e in tp]}")
    if tp is datetime:
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            _fail(source, path, f"{value!r} is not an ISO 8601 time")
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(_number(value, path, source))
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return _number(value, path, source)
    if isinstance(tp, type) and isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    _fail(source, path, f"expected {getattr(tp, '__name__', tp)}, got {value!r}")


def _key(tp: Any, key: str, path: str, source: str) -> int | str:
    """A mapping key from JSON (always text): an integer where the model says so (e.g. percentiles)."""
    if tp is not int:
        return str(key)
    try:
        return int(key)
    except ValueError:
        _fail(source, f"{path}.{key}", f"key {key!r} is not an integer")


def _number(value: int | float, path: str, source: str) -> int | float:
    if not 0 <= value <= MAX_NUMBER:    # NaN fails too
        text = repr(value) if len(repr(value)) < 24 else f"{repr(value)[:20]}... ({len(repr(value))} digits)"
        _fail(source, path, f"{text} is not a number between 0 and {MAX_NUMBER:.0e}; re-create the snapshot")
    return value


def _decode_dataclass(tp: type, value: Any, path: str, source: str) -> Any:
    if not isinstance(value, dict):
        _fail(source, path, f"expected a mapping, got {type(value).__name__}")
    kwargs = {}
    for name, hint, required in _plan(tp):
        if name in value:
            kwargs[name] = _decode(hint, value[name], f"{path}.{name}", source)
        elif required:
            _fail(source, f"{path}.{name}", "missing field; re-create the snapshot")
    return tp(**kwargs)


@functools.cache
def _plan(tp: type) -> tuple[tuple[str, Any, bool], ...]:
    """(field, type hint, required) for a models dataclass, resolved once."""
    hints = typing.get_type_hints(tp, localns=vars(models))    # its module, plus the package for cross-module names
    return tuple((f.name, hints[f.name], f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
                 for f in dataclasses.fields(tp))


class _Bad(Exception):
    """Raised by the fast decoders; the slow :func:`_decode` then finds and names the field."""


@functools.cache
def _fast(tp: Any) -> Callable[[Any], Any]:
    """A compiled decoder for ``tp`` without path bookkeeping (the common, valid case)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return lambda v: v
    if origin in (typing.Union, types.UnionType):
        inner = _fast(next(a for a in args if a is not type(None)))
        return lambda v: None if v is None else inner(v)
    if origin is list:
        item = _fast(args[0])
        return lambda v: [item(x) for x in v] if type(v) is list else _raise()
    if origin is dict:
        item, key = _fast(args[1]), (int if args[0] is int else str)
        return lambda v: {key(k): item(x) for k, x in v.items()} if type(v) is dict else _raise()
    if dataclasses.is_dataclass(tp):
        plan = [(name, _fast(hint), required) for name, hint, required in _plan(tp)]

        def build(v: Any) -> Any:
            if type(v) is not dict:
                _raise()
            kwargs = {}
            for name, decode, required in plan:
                if name in v:
                    kwargs[name] = decode(v[name])
                elif required:
                    _raise()
            return tp(**kwargs)
        return build
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp
    if tp is datetime:
        return lambda v: _aware(datetime.fromisoformat(v)) if type(v) is str else _raise()
    if tp is float:
        return lambda v: float(v) if type(v) in (int, float) and 0 <= v <= MAX_NUMBER else _raise()
    if tp is int:
        return lambda v: v if type(v) is int and 0 <= v <= MAX_NUMBER else _raise()
    return lambda v: v if type(v) is tp else _raise()


def _raise() -> typing.NoReturn:
    raise _Bad()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _decode_list(tp: type, value: Any, path: str, source: str) -> list[Any]:
    """Decode a list of ``tp`` quickly; on any problem, redo it slowly to name the field."""
    try:
        return _fast(list[tp])(value)
    except (_Bad, ValueError, TypeError, AttributeError):
        return _decode(list[tp], value, path, source)


def encode_meta(snapshot: Snapshot) -> dict[str, Any]:
    """The ``meta`` JSON document of a snapshot."""
    state = snapshot.state
    return {
        "format": FORMAT, "cluster": state.cluster, "region": state.region,
        "window": {"start": state.window.start.isoformat(), "end": state.window.end.isoformat(),
                   "stepSeconds": state.window.step_seconds},
        "workloads": _encode(state.workloads), "pods": _encode(state.pods), "nodes": _encode(state.nodes),
        "pdbs": _encode(state.pdbs), "volumes": _encode(state.volumes),
        "nodeGroups": _encode(state.node_groups), "nodePools": _encode(state.node_pools),
        "containers": [{"workload": {"kind": k.workload.kind, "namespace": k.workload.namespace,
                                     "name": k.workload.name}, "container": k.container} for k in snapshot.keys],
    }


def decode_meta(meta: Any, source: str) -> tuple[ClusterState, list[ContainerKey]]:
    """Inventory and row keys from a ``meta`` document; errors name the field."""
    if not isinstance(meta, dict):
        _fail(source, "meta", "expected a JSON object")
    if meta.get("format") != FORMAT:
        _fail(source, "meta.format", f"format {meta.get('format')!r} is not supported; this version reads "
              f"{FORMAT!r} (re-create the snapshot with this version)")
    for name in ("cluster", "region", "window", "workloads", "containers"):
        if name not in meta:
            _fail(source, f"meta.{name}", "missing field; re-create the snapshot")
    window = meta["window"]
    if not isinstance(window, dict) or any(k not in window for k in ("start", "end", "stepSeconds")):
        _fail(source, "meta.window", "needs start, end and stepSeconds")
    step = _decode(int, window["stepSeconds"], "meta.window.stepSeconds", source)
    if step <= 0:
        _fail(source, "meta.window.stepSeconds", f"must be > 0, got {step}")
    state = ClusterState(
        _decode(str, meta["cluster"], "meta.cluster", source), _decode(str, meta["region"], "meta.region", source),
        Window(_decode(datetime, window["start"], "meta.window.start", source),
               _decode(datetime, window["end"], "meta.window.end", source), step),
        **{name: _decode_list(tp, meta.get(name, []), f"meta.{name}", source)
           for name, tp in (("workloads", models.Workload), ("pods", models.Pod), ("nodes", models.Node),
                            ("pdbs", models.PDB), ("volumes", models.Volume))},
        node_groups=_decode(list[models.NodeGroup], meta.get("nodeGroups", []), "meta.nodeGroups", source),
        node_pools=_decode(list[models.NodePool], meta.get("nodePools", []), "meta.nodePools", source))
    _check_hints(state, source)
    keys = [ContainerKey(_decode(WorkloadRef, c.get("workload") if isinstance(c, dict) else None,
                                 f"meta.containers[{i}].workload", source),
                         _decode(str, c.get("container"), f"meta.containers[{i}].container", source))
            for i, c in enumerate(_decode(list[dict[str, Any]], meta["containers"], "meta.containers", source))]
    return state, keys


def _check_hints(state: ClusterState, source: str) -> None:
    """A ``finops.dev/source`` hint must name a path inside the repository (no ``..``, not absolute)."""
    key = safeio.SOURCE_HINT_KEY
    places = [(f"meta.workloads[{i}].annotations", w.annotations) for i, w in enumerate(state.workloads)]
    places += [(f"meta.volumes[{i}].tags", v.tags) for i, v in enumerate(state.volumes)]
    for where, mapping in places:
        hint = mapping.get(key)
        problem = safeio.split_source_hint(hint)[2] if hint else None
        if problem:
            _fail(source, f"{where}[{key!r}]", f"source hint {hint[:200]!r}: the path {problem}")


# --------------------------------------------------------------------------- checks


def _check_arrays(snap: Snapshot, source: str) -> None:
    rows, window = len(snap.keys), snap.state.window
    ts = snap.timestamps
    if ts.ndim != 1 or not np.issubdtype(ts.dtype, np.integer) or len(ts) < 1:
        _fail(source, "timestamps", f"expected a 1-D integer array of epoch seconds, got {ts.dtype} {ts.shape}")
    if len(ts) > 1 and not np.all(np.diff(ts) == window.step_seconds):
        bad = int(np.argmax(np.diff(ts) != window.step_seconds))
        _fail(source, "timestamps", f"not evenly spaced at the {window.step_seconds}s step: points {bad} and "
              f"{bad + 1} are {int(ts[bad + 1] - ts[bad])}s apart")
    if int(ts[0]) != int(window.start.timestamp()) or int(ts[-1]) != int(window.end.timestamp()):
        _fail(source, "timestamps", f"run from {int(ts[0])} to {int(ts[-1])} but meta.window is "
              f"{window.start.isoformat()} .. {window.end.isoformat()}")
    for name in ("cpu", "memory"):
        arr = getattr(snap, name)
        if not np.issubdtype(arr.dtype, np.floating) or arr.shape != (rows, len(ts)):
            _fail(source, name, f"shape {arr.shape} ({arr.dtype}) does not match {rows} containers x "
                  f"{len(ts)} timestamps (float)")
        row = _first_bad_row(arr)
        if row is not None:
            value = arr[row][(arr[row] < 0) | np.isinf(arr[row])][0]
            _fail(source, name, f"{'negative' if value < 0 else 'infinite'} usage {float(value)} in row {row} "
                  f"({snap.keys[row]}); usage must be a finite number >= 0 (NaN marks a gap)")
    if snap.throttled.shape != (rows,) or not np.issubdtype(snap.throttled.dtype, np.floating):
        _fail(source, "throttled", f"shape {snap.throttled.shape} does not match {rows} containers")
    if np.any(snap.throttled < 0) or np.any(snap.throttled > 1):
        _fail(source, "throttled", "ratios must be between 0 and 1 (NaN = unknown)")


def _first_bad_row(matrix: np.ndarray) -> int | None:
    """The first row holding a negative or infinite value, block by block (bounded memory)."""
    for start, block in row_blocks(matrix, BLOCK_ROWS):
        bad = np.flatnonzero(((block < 0) | np.isinf(block)).any(axis=1))
        if len(bad):
            return start + int(bad[0])
    return None


def row_blocks(matrix: np.ndarray, block_rows: int = BLOCK_ROWS) -> Iterator[tuple[int, np.ndarray]]:
    """Row blocks of ``matrix``; for a ``numpy.memmap`` each block's pages are released after use."""
    for start in range(0, matrix.shape[0], block_rows):
        stop = min(matrix.shape[0], start + block_rows)
        yield start, matrix[start:stop]
        _release(matrix, start, stop)


def _release(matrix: np.ndarray, start: int, stop: int) -> None:
    """Drop the resident pages of rows [start, stop) of a read-only mapping (re-read on the next access)."""
    mapping = getattr(matrix, "_mmap", None)
    if mapping is None or stop <= start:
        return
    base = int(matrix.offset) % mmap.ALLOCATIONGRANULARITY      # where np.memmap's array starts in the mapping
    begin = base + start * matrix.strides[0]
    page = begin - begin % mmap.PAGESIZE
    mapping.madvise(mmap.MADV_DONTNEED, page, base + stop * matrix.strides[0] - page)


def _check_rows(snap: Snapshot, source: str) -> None:
    listed = {ContainerKey(w.ref, c.name) for w in snap.state.workloads for c in w.containers}
    seen: set[ContainerKey] = set()
    for i, key in enumerate(snap.keys):
        if key in seen:
            _fail(source, f"meta.containers[{i}]", f"{key} has two series rows")
        if key not in listed:
            _fail(source, f"meta.containers[{i}]", f"{key} has a series row but is not a container of any "
                  "workload in meta.workloads")
        seen.add(key)
    for key in sorted(listed - seen):
        _fail(source, "meta.workloads", f"container {key} has no series row in meta.containers")


# --------------------------------------------------------------------------- I/O


def _write_npz(handle: Any, arrays: dict[str, np.ndarray]) -> None:
    """What ``numpy.savez`` writes (``.npy`` members): the :data:`MAPPED` matrices stored (to be mapped), the
    rest deflated at level 1 (several times faster than the default level 6 for a few percent more bytes)."""
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED if name in MAPPED else zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)


def save_snapshot(path: str | os.PathLike, snapshot: Snapshot) -> Path:
    """Validate, then write ``path`` atomically (temp file + rename). Returns the path."""
    path = Path(path)
    snapshot.validate(str(path))
    meta = json.dumps(encode_meta(snapshot), separators=(",", ":")).encode()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            _write_npz(handle, {"meta": np.frombuffer(meta, dtype=np.uint8),
                                "timestamps": np.asarray(snapshot.timestamps, dtype=np.int64),
                                "cpu": snapshot.cpu, "memory": snapshot.memory, "throttled": snapshot.throttled})
        os.replace(tmp, path)
    except OSError as exc:
        raise SnapshotError(f"cannot write the snapshot: {exc.strerror}; check the directory exists "
                            "and is writable", source=str(path)) from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_snapshot(path: str | os.PathLike) -> Snapshot:
    """Read and validate a snapshot; every array is read (decompressed) exactly once, within the limits."""
    source = str(path)
    try:
        info = os.stat(path)
    except OSError:
        raise SnapshotError("no such file; check the path, or create one with `finops simulate --out FILE`",
                            source=source) from None
    if not stat.S_ISREG(info.st_mode):
        raise SnapshotError("is not a regular file (a directory, device or FIFO); pass a .npz written by "
                            "`finops simulate --out FILE`", source=source)
    limit = safeio.MAX_SNAPSHOT_META_BYTES + safeio.MAX_SNAPSHOT_ARRAY_BYTES
    if info.st_size > limit:
        raise SnapshotError(f"is {info.st_size:,} bytes, over the limit of {limit:,} bytes", source=source)
    try:
        with open(path, "rb") as handle, zipfile.ZipFile(handle) as archive:
            arrays = _read_members(archive, source, handle)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:
        raise SnapshotError(f"not a finops snapshot (.npz written by save_snapshot): {exc}", source=source) from None
    try:
        meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SnapshotError(f"meta is not UTF-8 JSON: {exc}", source=source, field="meta") from None
    except RecursionError:
        raise SnapshotError("meta nests too deeply to be a snapshot inventory", source=source, field="meta") from None
    state, keys = decode_meta(meta, source)
    snapshot = Snapshot(state, keys, arrays["timestamps"], arrays["cpu"], arrays["memory"], arrays["throttled"])
    snapshot.validate(source)
    return snapshot


def _read_members(archive: zipfile.ZipFile, source: str, handle: Any) -> dict[str, np.ndarray]:
    """``meta`` and the arrays, each checked against its limit (zip directory, then .npy header) first;
    stored :data:`MAPPED` members are memory-mapped (read-only), the others read."""
    members = {i.filename: i for i in archive.infolist()}
    missing = [name for name in ("meta", *ARRAYS) if f"{name}.npy" not in members]
    if missing:
        raise SnapshotError(f"not a finops snapshot: array {missing[0]!r} is missing "
                            f"(expected meta, {', '.join(ARRAYS)})", source=source, field=missing[0])
    arrays: dict[str, np.ndarray] = {}
    budget = safeio.MAX_SNAPSHOT_ARRAY_BYTES
    for name in ("meta", *ARRAYS):
        member = members[f"{name}.npy"]
        limit = safeio.MAX_SNAPSHOT_META_BYTES if name == "meta" else budget
        if member.file_size > limit:
            what = "meta" if name == "meta" else "the arrays together"
            raise SnapshotError(f"{member.file_size:,} bytes uncompressed; {what} may hold at most "
                                f"{limit:,} bytes", source=source, field=name)
        with archive.open(member) as fp:
            version = np.lib.format.read_magic(fp)
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = header(fp)
            if dtype.hasobject or (dtype.kind not in "iuf"):
                raise SnapshotError(f"array of {dtype} (only numbers are read)", source=source, field=name)
            need = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if need > member.file_size:
                raise SnapshotError(f"header claims {shape} {dtype} ({need:,} bytes) but the member holds "
                                    f"{member.file_size:,} bytes", source=source, field=name)
        if name in MAPPED and member.compress_type == zipfile.ZIP_STORED and not fortran:
            arrays[name] = _map_member(handle, member, shape, dtype)
        else:
            with archive.open(member) as fp:
                arrays[name] = np.lib.format.read_array(fp, allow_pickle=False)
        if name != "meta":
            budget -= member.file_size
    return arrays


def _map_member(handle: Any, member: zipfile.ZipInfo, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A read-only ``numpy.memmap`` of a stored ``.npy`` member (header already checked by the caller)."""
    handle.seek(member.header_offset)
    local = handle.read(30)
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        raise ValueError(f"bad local header for {member.filename}")
    name_len, extra_len = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
    start = member.header_offset + 30 + name_len + extra_len
    handle.seek(start)
    version = np.lib.format.read_magic(handle)
    (np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0)(handle)
    offset = handle.tell()
    if offset + int(np.prod(shape, dtype=object)) * dtype.itemsize > start + member.file_size:
        raise ValueError(f"{member.filename}: array runs past its member")
    if not shape or 0 in shape:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(handle.name, dtype=dtype, mode="r", offset=offset, shape=shape)
