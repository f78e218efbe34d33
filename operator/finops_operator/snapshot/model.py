"""The in-memory snapshot: inventory plus raw series, and the checks that arrays and inventory agree."""
from __future__ import annotations

import mmap
import typing
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..errors import SnapshotError
from ..models import ClusterState, ContainerKey

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




def _fail(source: str, path: str, message: str) -> typing.NoReturn:
    raise SnapshotError(message, source=source, field=path)



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
    if mapping is None or stop <= start or not matrix.flags.c_contiguous:
        return
    origin = np.frombuffer(mapping, dtype=np.uint8).ctypes.data       # the mapping's first byte
    begin = matrix.ctypes.data - origin + start * matrix.strides[0]
    end = begin + (stop - start) * matrix.strides[0]
    page = begin - begin % mmap.PAGESIZE
    if 0 <= page and end <= len(mapping):
        mapping.madvise(mmap.MADV_DONTNEED, page, end - page)


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

