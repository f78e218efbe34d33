"""Fixtures and helpers for the GitOps edit tests: real repositories copied into tmp_path."""
from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest

from finops_operator.models import (EditKind, EditTarget, Change, FileEdit, Finding, FindingType, Target, TargetKind,
                                    WorkloadRef)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "gitops"
FIXTURES = ROOT / "tests" / "fixtures" / "edits"
TEMPLATES = ROOT / "terraform_templates"


@pytest.fixture
def gitops_repo(tmp_path: Path) -> Path:
    """A private copy of examples/gitops (tests must never edit the real examples)."""
    dest = tmp_path / "gitops"
    shutil.copytree(EXAMPLES, dest)
    return dest


@pytest.fixture
def fixture_repo(tmp_path: Path):
    """Copy one directory of tests/fixtures/edits into tmp_path."""
    def copy(name: str) -> Path:
        dest = tmp_path / name
        shutil.copytree(FIXTURES / name, dest)
        return dest
    return copy


def make_repo(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (repo-relative path -> text) under ``root``."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def container_finding(kind: str, namespace: str, name: str, container: str,
                      *changes: tuple[str, str | None, str | None], hint: str | None = None) -> Finding:
    return Finding("cpu-rightsizing", FindingType.RIGHTSIZE_CPU,
                   Target(TargetKind.CONTAINER, container, namespace, WorkloadRef(kind, namespace, name)),
                   f"Right-size {name}/{container}", [Change(*c) for c in changes], 12.5, 0.9, 0.1,
                   EditTarget(EditKind.CONTAINER_RESOURCES, source_hint=hint))


def node_group_finding(name: str, *changes: tuple[str, str | None, str | None]) -> Finding:
    return Finding("idle-nodes", FindingType.IDLE_NODE, Target(TargetKind.NODE_GROUP, name),
                   f"Shrink node group {name}", [Change(*c) for c in changes], 140.0, 0.8, 0.2,
                   EditTarget(EditKind.NODE_GROUP))


def volume_finding(volume_id: str, *, name_tag: str | None = None, snapshot: bool = False,
                   source: str = "ebs", hint: str | None = None) -> Finding:
    kind = EditKind.EBS_VOLUME if source == "ebs" else EditKind.PERSISTENT_VOLUME
    return Finding("orphan-volumes", FindingType.ORPHAN_VOLUME, Target(TargetKind.VOLUME, volume_id),
                   f"Delete {volume_id}", [Change("delete", "present", None)], 50.0, 0.9, 0.2,
                   EditTarget(kind, source_hint=hint, snapshot_before_delete=snapshot, size_gib=500),
                   labels={"Name": name_tag} if name_tag else {})


def changed_lines(edit: FileEdit) -> list[str]:
    """The '-'/'+' lines of a unified diff of one FileEdit (headers excluded)."""
    before = (edit.before or "").splitlines(keepends=True)
    after = (edit.after or "").splitlines(keepends=True)
    diff = list(difflib.unified_diff(before, after, n=0))[2:]     # drop the ---/+++ headers
    return [line.rstrip("\n") for line in diff if line[:1] in "+-"]


def edit_for(result, path: str) -> FileEdit:
    matches = [e for e in result.edits if e.path == path]
    assert matches, f"no edit for {path}; edits: {[e.path for e in result.edits]}; skipped: {result.skipped}"
    return matches[0]
