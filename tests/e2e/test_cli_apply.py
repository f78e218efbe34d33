"""`finops scan --apply` writes every branch or none, and never overwrites a branch that is not its own."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
FINOPS = Path(sys.executable).parent / "finops"
LAST = "finops/rightsize-search"      # the last change set the demo snapshot produces


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          check=True, capture_output=True, text=True).stdout


def refs(repo: Path) -> dict[str, str]:
    out = _git(repo, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads/")
    return dict(line.split() for line in out.splitlines())


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("snap")
    subprocess.run([str(FINOPS), "simulate", "--out", "s.npz"], cwd=where, check=True, capture_output=True)
    return where / "s.npz"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "examples" / "gitops", repo)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "init")
    return repo


def apply(repo: Path, snapshot: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(FINOPS), "scan", "--snapshot", str(snapshot), "--repo", str(repo), "--apply", *extra],
                          capture_output=True, text=True, timeout=300)


def test_a_failing_later_branch_leaves_no_branch_at_all(repo, snapshot):
    lock = repo / ".git" / "refs" / "heads" / f"{LAST}.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text("held by another git process\n")
    proc = apply(repo, snapshot)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and LAST in proc.stderr
    assert list(refs(repo)) == ["main"]             # the earlier branches were not left behind
    lock.unlink()
    ok = apply(repo, snapshot)                      # and once the lock is gone, all of them appear
    assert ok.returncode == 0, ok.stderr
    assert len([b for b in refs(repo) if b.startswith("finops/")]) == 5


def test_a_foreign_branch_of_the_same_name_is_named_and_nothing_is_written(repo, snapshot):
    _git(repo, "branch", LAST)                      # someone's branch, pointing at main
    before = refs(repo)
    proc = apply(repo, snapshot)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert LAST in proc.stderr and "finops did not write" in proc.stderr
    assert refs(repo) == before


def test_own_branches_are_updated_and_said_so_but_not_after_a_human_commit(repo, snapshot, tmp_path):
    assert apply(repo, snapshot).returncode == 0
    first = refs(repo)
    again = apply(repo, snapshot)
    assert again.returncode == 0 and "unchanged branch finops/rightsize-payments" in again.stdout
    assert refs(repo) == first                      # no churn
    policy = tmp_path / "policy.yaml"
    policy.write_text("detectors:\n  cpu: {headroomPercent: 60}\n  memory: {headroomPercent: 60}\n")
    changed = apply(repo, snapshot, "--policy", str(policy))
    assert changed.returncode == 0, changed.stderr
    assert "updated branch finops/rightsize-payments" in changed.stdout
    assert refs(repo)["finops/rightsize-payments"] != first["finops/rightsize-payments"]
    # a person adds a commit on top of a finops branch: finops must not throw it away
    _git(repo, "checkout", "-q", "finops/rightsize-payments")
    (repo / "NOTES.md").write_text("reviewed\n")
    _git(repo, "add", "NOTES.md")
    _git(repo, "commit", "-qm", "review notes")
    _git(repo, "checkout", "-q", "main")
    before = refs(repo)
    refused = apply(repo, snapshot)
    assert refused.returncode == 2 and "finops/rightsize-payments" in refused.stderr
    assert refs(repo) == before
