"""CostCache: TTL, request keys, a file shared between runs, and damaged files (real files on disk)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from finops_operator.sources.cost_cache import CostCache, request_key

T0 = datetime(2024, 5, 2, 6, tzinfo=timezone.utc)


def test_key_ignores_parameter_order_and_separates_operations():
    assert request_key("GetCostAndUsage", {"a": 1, "b": [1, 2]}) == request_key("GetCostAndUsage", {"b": [1, 2], "a": 1})
    assert request_key("GetCostAndUsage", {"a": 1}) != request_key("GetCostForecast", {"a": 1})
    assert request_key("GetCostAndUsage", {"a": 1}) != request_key("GetCostAndUsage", {"a": 2})


def test_ttl_and_counters():
    now = [T0]
    cache = CostCache(ttl=timedelta(hours=1), clock=lambda: now[0])
    assert cache.get("op", {"x": 1}) is None
    cache.put("op", {"x": 1}, {"rows": [1]})
    assert cache.get("op", {"x": 1}) == {"rows": [1]}
    now[0] += timedelta(minutes=59)
    assert cache.get("op", {"x": 1}) == {"rows": [1]}
    now[0] += timedelta(minutes=2)
    assert cache.get("op", {"x": 1}) is None
    assert (cache.hits, cache.misses) == (2, 2)


def test_file_is_shared_between_runs_and_written_atomically(tmp_path):
    path = tmp_path / "cache" / "ce.json"
    CostCache(path, clock=lambda: T0).put("op", {"x": 1}, [{"a": "1.5"}])
    assert json.loads(path.read_text())["version"] == 1
    assert CostCache(path, clock=lambda: T0).get("op", {"x": 1}) == [{"a": "1.5"}]
    assert [p.name for p in path.parent.iterdir()] == ["ce.json"]     # no temporary file left behind


def test_a_corrupt_file_is_ignored_reported_and_rewritten(tmp_path):
    path = tmp_path / "ce.json"
    path.write_text("{not json")
    cache = CostCache(path, clock=lambda: T0)
    assert cache.get("op", {}) is None
    assert "ignoring unreadable cost cache" in cache.problems[0] and str(path) in cache.problems[0]
    cache.put("op", {}, [1])
    assert CostCache(path, clock=lambda: T0).get("op", {}) == [1]


def test_an_unwritable_location_keeps_answers_in_memory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cache = CostCache(blocker / "ce.json", clock=lambda: T0)       # parent is a file: cannot write
    cache.put("op", {}, [1])
    assert cache.get("op", {}) == [1]
    assert "cannot write the cost cache" in cache.problems[0]
