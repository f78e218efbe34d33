"""The `finops` command line as a user runs it: simulate, scan (table, JSON, --apply), bad input."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def finops(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "finops_operator.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("cli")
    assert finops("simulate", "--out", "snap.npz", cwd=work).returncode == 0
    repo = work / "repo"
    shutil.copytree(ROOT / "examples" / "gitops", repo)
    for cmd in (["init", "-q", "-b", "main"], ["add", "-A"],
                ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"]):
        subprocess.run(["git", "-C", str(repo), *cmd], check=True)
    return work


def test_scan_json_is_machine_readable(workspace):
    proc = finops("scan", "--snapshot", "snap.npz", "--output", "json", cwd=workspace)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["summary"]["findings"] == len(data["findings"]) > 0
    assert {f["decision"]["verdict"] for f in data["findings"]} <= {"allow", "deny", "require-approval"}
    assert all(f["changes"] and f["evidence"] for f in data["findings"])


def test_scan_apply_writes_branches_and_leaves_main_alone(workspace):
    proc = finops("scan", "--snapshot", "snap.npz", "--repo", "repo", "--apply", cwd=workspace)
    assert proc.returncode == 0, proc.stderr
    assert "Findings" in proc.stdout and "wrote branch finops/" in proc.stdout
    repo = workspace / "repo"
    branches = subprocess.run(["git", "-C", str(repo), "branch", "--list", "finops/*"], capture_output=True,
                              text=True, check=True).stdout.split()
    assert "finops/rightsize-payments" in branches
    assert subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True,
                          check=True).stdout == ""


@pytest.mark.parametrize("args,message", [
    (["scan", "--snapshot", "missing.npz"], "missing.npz: no such file"),
    (["scan", "--snapshot", "snap.npz", "--apply"], "--apply needs --repo"),
    (["scan", "--snapshot", "snap.npz", "--policy", "bad-policy.yaml"], "guardrails.maxRiskPercent"),
    (["scan", "--snapshot", "not-a-snapshot.npz"], "not-a-snapshot.npz"),
])
def test_bad_input_exits_2_naming_the_problem(workspace, args, message):
    (workspace / "bad-policy.yaml").write_text("guardrails: {maxRiskPercent: 500}\n")
    (workspace / "not-a-snapshot.npz").write_text("hello")
    proc = finops(*args, cwd=workspace)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert message in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
