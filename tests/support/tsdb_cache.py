"""Backfilled TSDB blocks kept by the content hash of the OpenMetrics file they were made from.

promtool's backfill is the slow part of starting a Prometheus with history (the demo scenario's
14 days: about 25 s on two cores), and the fixtures backfill the same bytes again and again: each
e2e module its own e2e Prometheus, each pytest-xdist worker its own demo Prometheus. Blocks depend
only on the OpenMetrics bytes, the block duration and promtool, so they are made once per content
and COPIED into each server's own TSDB directory: Prometheus writes its WAL and compacts blocks
there, so two servers never share one.

Entries live in ``~/.cache/finops-operator/tsdb/<sha256>/`` (``FINOPS_TSDB_CACHE`` overrides).
Test histories end about 3 hours before now, aligned to the hour, so keys change every hour; entries
and locks unused for a day are pruned.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

CACHE = Path(os.environ.get("FINOPS_TSDB_CACHE") or Path.home() / ".cache" / "finops-operator" / "tsdb")
FORMAT = "tsdb-cache-1"          # change to drop every entry made by an older layout
KEEP_SECONDS = 24 * 3600


def content_key(openmetrics: Path, *extra: str) -> str:
    """sha256 over the cache format, ``extra`` (block duration, promtool identity) and the file's bytes."""
    digest = hashlib.sha256(FORMAT.encode())
    for part in extra:
        digest.update(b"\0" + part.encode())
    digest.update(b"\0")
    with openmetrics.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tool_identity(path: str) -> str:
    """A cheap identity for a binary (size and mtime): an upgraded promtool makes new entries."""
    st = os.stat(path)
    return f"{path}:{st.st_size}:{int(st.st_mtime)}"


@contextmanager
def _locked(lock: Path, *, wait: bool = True) -> Iterator[bool]:
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def restore_or_build(openmetrics: Path, tsdb: Path, build: Callable[[Path], None], *extra: str,
                     cache: Path | None = None) -> bool:
    """Fill ``tsdb`` with the blocks made from ``openmetrics``: copied from the cache, or made by
    ``build(directory)`` first (once per content, under a lock, so parallel workers wait for the one
    that builds). Returns True when the blocks came from the cache."""
    cache = cache or CACHE
    key = content_key(openmetrics, *extra)
    entry = cache / key
    hit = True
    with _locked(cache / f"{key}.lock"):
        if not entry.is_dir():
            hit = False
            scratch = cache / f"{key}.tmp-{os.getpid()}"
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir(parents=True)
            try:
                build(scratch)
            except BaseException:
                shutil.rmtree(scratch, ignore_errors=True)
                raise
            scratch.rename(entry)
        os.utime(entry)
        shutil.copytree(entry, tsdb, dirs_exist_ok=True)
    prune(cache)
    return hit


def prune(cache: Path, keep_seconds: float = KEEP_SECONDS) -> None:
    """Remove entries, scratch directories and locks not used for ``keep_seconds`` (never one in use)."""
    cutoff = time.time() - keep_seconds
    for path in cache.glob("*"):
        try:
            if path.stat().st_mtime >= cutoff or path.suffix == ".lock":
                continue
        except FileNotFoundError:
            continue
        key = path.name.split(".tmp-")[0]
        with _locked(cache / f"{key}.lock", wait=False) as mine:
            if mine:
                shutil.rmtree(path, ignore_errors=True)
    for lock in cache.glob("*.lock"):
        try:
            stale = lock.stat().st_mtime < cutoff and not (cache / lock.stem).exists()
        except FileNotFoundError:
            continue
        if stale:
            lock.unlink(missing_ok=True)
