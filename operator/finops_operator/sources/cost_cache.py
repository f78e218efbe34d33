"""A small TTL cache for Cost Explorer answers (every Cost Explorer request is billed).

Entries are keyed by the request (operation + parameters, canonical JSON,
hashed) and hold the JSON answer and the time it was stored. The cache lives
in memory and, when ``path`` is given, in one JSON file written atomically
(temporary file + rename), so a restarted operator or the next CLI run reuses
answers younger than ``ttl``. A missing, unreadable or corrupt file is
treated as an empty cache and reported in ``problems``: a cache can only save
calls, never fail a run.

Usage::

    cache = CostCache(Path("/var/cache/finops/ce.json"), ttl=timedelta(hours=6))
    source = AwsSource("eu-west-1", cache=cache)
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    """Test seam: the current time, timezone-aware."""
    return datetime.now(timezone.utc)


def request_key(operation: str, params: dict[str, Any]) -> str:
    """A stable key for an API request: sha256 of the canonical JSON of operation and parameters."""
    canonical = json.dumps({"operation": operation, "params": params}, sort_keys=True, default=str,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class CostCache:
    """In-memory (optionally file-backed) cache of JSON answers with a time to live."""

    def __init__(self, path: Path | str | None = None, *, ttl: timedelta = timedelta(hours=6),
                 clock: Callable[[], datetime] = utcnow):
        if ttl.total_seconds() <= 0:
            raise ValueError("ttl must be positive")
        self.path = Path(path) if path else None
        self.ttl = ttl
        self.clock = clock
        self.hits = 0
        self.misses = 0
        self.problems: list[str] = []
        self._entries: dict[str, dict[str, Any]] = self._load()

    def get(self, operation: str, params: dict[str, Any]) -> Any | None:
        """The stored answer for this request if it is younger than the TTL, else None."""
        entry = self._entries.get(request_key(operation, params))
        if entry is not None:
            try:
                stored = datetime.fromisoformat(entry["stored"])
                if self.clock() - stored < self.ttl:
                    self.hits += 1
                    return entry["value"]
            except (KeyError, TypeError, ValueError):
                pass
        self.misses += 1
        return None

    def put(self, operation: str, params: dict[str, Any], value: Any) -> None:
        """Store an answer (JSON-serialisable) and persist the cache if it is file-backed."""
        self._entries[request_key(operation, params)] = {"stored": self.clock().isoformat(), "value": value,
                                                         "operation": operation}
        self._prune()
        self._save()

    def _prune(self) -> None:
        now = self.clock()
        for key in [k for k, e in self._entries.items() if not self._fresh(e, now)]:
            del self._entries[key]

    def _fresh(self, entry: dict[str, Any], now: datetime) -> bool:
        try:
            return now - datetime.fromisoformat(entry["stored"]) < self.ttl
        except (KeyError, TypeError, ValueError):
            return False

    def _load(self) -> dict[str, dict[str, Any]]:
        if not self.path or not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text())
            if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
                raise ValueError("expected an object with 'entries'")
            return data["entries"]
        except (OSError, ValueError) as exc:
            self._problem(f"{self.path}: ignoring unreadable cost cache ({exc}); it will be rewritten")
            return {}

    def _save(self) -> None:
        if not self.path:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
            with os.fdopen(fd, "w") as out:
                json.dump({"version": 1, "entries": self._entries}, out)
            os.replace(tmp, self.path)
        except OSError as exc:
            self._problem(f"{self.path}: cannot write the cost cache ({exc}); answers stay cached in memory only")

    def _problem(self, message: str) -> None:
        log.warning(message)
        self.problems.append(message)
