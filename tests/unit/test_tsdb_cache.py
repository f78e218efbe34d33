"""The fixtures' TSDB cache: one build per content, a private copy per server, stale entries pruned."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.support import tsdb_cache


def fake_build(calls: list[Path]):
    def build(out: Path) -> None:
        calls.append(out)
        (out / "01BLOCK").mkdir()
        (out / "01BLOCK" / "meta.json").write_text(f"made from {len(calls)}")
    return build


def test_the_same_content_is_built_once_and_each_server_gets_its_own_copy(tmp_path):
    om, cache, calls = tmp_path / "a.om", tmp_path / "cache", []
    om.write_text("# EOF\n")
    first, second = tmp_path / "one", tmp_path / "two"
    assert tsdb_cache.restore_or_build(om, first, fake_build(calls), "24h", cache=cache) is False
    assert tsdb_cache.restore_or_build(om, second, fake_build(calls), "24h", cache=cache) is True
    assert len(calls) == 1
    (first / "01BLOCK" / "meta.json").write_text("compacted by server one")
    assert (second / "01BLOCK" / "meta.json").read_text() == "made from 1"


def test_other_bytes_or_block_duration_build_again(tmp_path):
    om, cache, calls = tmp_path / "a.om", tmp_path / "cache", []
    om.write_text("# EOF\n")
    tsdb_cache.restore_or_build(om, tmp_path / "1", fake_build(calls), "24h", cache=cache)
    tsdb_cache.restore_or_build(om, tmp_path / "2", fake_build(calls), "2h", cache=cache)
    om.write_text("x 1\n# EOF\n")
    tsdb_cache.restore_or_build(om, tmp_path / "3", fake_build(calls), "24h", cache=cache)
    assert len(calls) == 3


def test_a_failed_build_leaves_no_entry(tmp_path):
    om, cache = tmp_path / "a.om", tmp_path / "cache"
    om.write_text("# EOF\n")

    def broken(out: Path) -> None:
        (out / "half").mkdir()
        raise RuntimeError("promtool backfill failed")

    with pytest.raises(RuntimeError, match="promtool"):
        tsdb_cache.restore_or_build(om, tmp_path / "1", broken, cache=cache)
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []
    calls: list[Path] = []
    tsdb_cache.restore_or_build(om, tmp_path / "2", fake_build(calls), cache=cache)
    assert len(calls) == 1


def test_entries_unused_for_a_day_are_pruned(tmp_path):
    om, cache, calls = tmp_path / "a.om", tmp_path / "cache", []
    om.write_text("old\n")
    tsdb_cache.restore_or_build(om, tmp_path / "1", fake_build(calls), cache=cache)
    (old,) = [p for p in cache.iterdir() if p.is_dir()]
    day_ago = time.time() - 25 * 3600
    os.utime(old, (day_ago, day_ago))
    om.write_text("new\n")
    tsdb_cache.restore_or_build(om, tmp_path / "2", fake_build(calls), cache=cache)
    assert not old.exists() and len([p for p in cache.iterdir() if p.is_dir()]) == 1
