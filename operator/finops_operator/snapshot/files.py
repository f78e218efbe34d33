"""Snapshot files: write atomically, read within the size limits, memory-map the stored matrices."""
from __future__ import annotations

import json
import os
import stat
import tokenize
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .. import safeio
from ..errors import SnapshotError
from .codec import decode_meta, encode_meta
from .model import ARRAYS, MAPPED, Snapshot


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
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError, SyntaxError,
            tokenize.TokenError) as exc:     # numpy parses .npy headers with tokenize and literal_eval
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
