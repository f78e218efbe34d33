"""`finops scan` when two overlays deploy a workload to the same namespace (one per cluster).

Nothing in the repository says which is this cluster's: the scan refuses once, naming both
overlays and the fix; `spec.git.paths` in --policy or `--entry-point` say it, and only that
overlay's patch is edited and proven.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_cli import ROOT, finops

PRODUCTION = "apps/checkout/overlays/production"
UNLOCKED = "guardrails:\n  protectedLabels: {}\n"     # checkout is tier=production: let it through


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("cli-entry")
    assert finops("simulate", "--out", "snap.npz", cwd=work).returncode == 0
    repo = work / "repo"
    shutil.copytree(ROOT / "examples" / "gitops", repo)
    shutil.copytree(repo / PRODUCTION, repo / "apps/checkout/overlays/demo")      # same namespace: checkout
    for cmd in (["init", "-q", "-b", "main"], ["add", "-A"],
                ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"]):
        subprocess.run(["git", "-C", str(repo), *cmd], check=True)
    (work / "unlocked.yaml").write_text(UNLOCKED)
    (work / "paths.yaml").write_text("apiVersion: finops.dev/v1alpha1\nkind: FinOpsPolicy\nmetadata: {name: p}\n"
                                     "spec:\n  guardrails:\n    protectedLabels: {}\n  git:\n"
                                     f"    repository: acme/gitops\n    paths: [{PRODUCTION}]\n")
    return work


def _checkout(data: dict) -> dict | None:
    return next((c for c in data["changeSets"] if c["branch"] == "finops/rightsize-checkout"), None)


def test_two_overlays_and_nothing_to_choose_is_refused_once_naming_both(work):
    proc = finops("scan", "--snapshot", "snap.npz", "--repo", "repo", "--policy", "unlocked.yaml", cwd=work)
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())                    # rich wraps long lines
    assert text.count("is deployed by 2 entry points") == 1, proc.stdout
    assert "apps/checkout/overlays/demo; apps/checkout/overlays/production" in text
    assert "spec.git.paths: [<one of them>]" in text and "--entry-point <one of them>" in text
    # the table shows the allowed findings that were not written, and the totals count only what was
    assert "allow, not written" in text
    assert "allowed but not written (the table says why)" in text
    data = json.loads(finops("scan", "--snapshot", "snap.npz", "--repo", "repo", "--policy", "unlocked.yaml",
                             "--output", "json", cwd=work).stdout)
    refused = [f for f in data["findings"] if f["notWritten"]]
    assert refused and all("is deployed by 2 entry points" in f["notWritten"] for f in refused
                           if f["namespace"] == "checkout")
    written = sum(cs["monthlySavings"] for cs in data["changeSets"])
    assert data["summary"]["writtenMonthlySavings"] == round(written, 2) < data["summary"]["allowedMonthlySavings"]


@pytest.mark.parametrize("args", [["--policy", "paths.yaml"], ["--policy", "unlocked.yaml", "--entry-point", PRODUCTION]],
                         ids=["policy-paths", "entry-point"])
def test_the_policy_paths_or_the_entry_point_choose_the_overlay(work, args):
    proc = finops("scan", "--snapshot", "snap.npz", "--repo", "repo", "--output", "json", *args, cwd=work)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    checkout = _checkout(data)
    assert checkout is not None, data["errors"]
    assert checkout["proof"] == [f"rendered {PRODUCTION}: 3 fields changed, as intended"]
    assert not any("checkout" in e for e in data["errors"])


def test_an_entry_point_outside_the_repository_or_missing_is_refused(work):
    for value, message in (("../elsewhere", "contains '..'"), ("apps/nowhere", "does not exist")):
        proc = finops("scan", "--snapshot", "snap.npz", "--repo", "repo", "--entry-point", value, cwd=work)
        assert proc.returncode == 2 and message in proc.stdout + proc.stderr, (proc.stdout, proc.stderr)
    proc = finops("scan", "--snapshot", "snap.npz", "--entry-point", PRODUCTION, cwd=work)
    assert proc.returncode == 2 and "--entry-point needs --repo" in proc.stdout + proc.stderr
