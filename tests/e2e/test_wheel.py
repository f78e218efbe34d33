"""The operator that ships: the wheel, installed into a fresh venv outside the checkout, works.

Everything runs the venv's own ``finops`` console script with cwd in a temp dir and no
PYTHONPATH, so a file the package finds only next to the source tree (defect 17: the
Terraform snapshot template) fails here. Covered: ``finops --help``, ``finops demo``
(all its branches, the orphan-volume Terraform snapshot included), a live
``finops scan --kubeconfig`` and ``finops run`` against the test kube-apiserver.
"""
from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.support.fixtures_git import git, make_bare_remote
from tests.support.fixtures_operator import SHOP, OperatorProcess, get_json, seed_cluster
from tests.support.fixtures_wheel import ROOT, clean_env

pytestmark = pytest.mark.e2e
PACKAGE_DATA = ROOT / "operator" / "finops_operator" / "data"
# Directories kept at the top of the repository (people read them there) and carried in the wheel.
BUNDLED_DIRS = {"terraform_templates": ROOT / "terraform_templates", "gitops": ROOT / "examples" / "gitops"}
DEMO_BRANCHES = {"finops/rightsize-payments", "finops/rightsize-search", "finops/rightsize-analytics",
                 "finops/orphan-volumes", "finops/node-groups"}
OPERATOR_NS = "finops-wheel"
POLICY = "wheel"


def test_the_bundled_directories_are_the_top_level_ones(finops_wheel):
    """One source: the package's data/ links to the top-level dirs, and the wheel holds their exact bytes."""
    with zipfile.ZipFile(finops_wheel) as wheel:
        names = set(wheel.namelist())
        for name, top in BUNDLED_DIRS.items():
            link = PACKAGE_DATA / name
            assert link.is_symlink() and link.resolve() == top.resolve(), f"{link} must link to {top}"
            files = sorted(p for p in top.rglob("*") if p.is_file())
            assert files, top
            for path in files:
                member = f"finops_operator/data/{name}/{path.relative_to(top).as_posix()}"
                assert member in names, f"the wheel lacks {member} (from {path.relative_to(ROOT)})"
                assert wheel.read(member) == path.read_bytes(), member
        assert {"finops_operator/data/demo-policy.yaml", "finops_operator/data/demo-scenario.yaml",
                "finops_operator/data/prometheus-rules.yaml",
                "finops_operator/templates/pr_body.md.j2"} <= names
        outside = [n for n in names if not n.startswith(("finops_operator/", "finops_operator-"))]
        assert outside == [], f"the wheel installs files outside the package: {outside}"


def test_help_runs_from_the_installed_package(wheel_venv, tmp_path):
    where = subprocess.run([str(wheel_venv.bin("python")), "-c", "import finops_operator; print(finops_operator.__file__)"],
                           cwd=tmp_path, env=clean_env(), capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(wheel_venv.root), f"imported {where}, not the installed wheel"
    proc = wheel_venv.run("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert all(cmd in proc.stdout for cmd in ("demo", "scan", "simulate", "run")), proc.stdout


def test_demo_writes_every_branch_with_the_terraform_snapshot(wheel_venv, tmp_path):
    proc = wheel_venv.run("demo", "--workdir", str(tmp_path / "demo"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    repo = tmp_path / "demo" / "gitops"
    branches = set(git("branch", "--list", "finops/*", "--format=%(refname:short)", cwd=repo).split())
    assert DEMO_BRANCHES <= branches, branches
    files = git("diff", "--name-only", "main..finops/orphan-volumes", cwd=repo).split()
    assert "infra/terraform/eks/finops_snapshots.tf" in files, files
    snapshots = git("show", "finops/orphan-volumes:infra/terraform/eks/finops_snapshots.tf", cwd=repo)
    assert 'resource "aws_ebs_snapshot"' in snapshots and "volume_id" in snapshots, snapshots


@pytest.fixture(scope="module")
def live_world(kube, e2e_prometheus, tmp_path_factory):
    """CRDs, the e2e workloads and a GitOps remote holding their manifests; yields (kube, remote, tmp)."""
    files = seed_cluster(kube, e2e_prometheus.end, SHOP, OPERATOR_NS)
    tmp = tmp_path_factory.mktemp("wheel-live")
    return kube, make_bare_remote(tmp / "remote", files={**files, "README.md": "# gitops\n"}), tmp


def test_live_scan_from_the_wheel(wheel_venv, live_world, e2e_prometheus):
    kube, _, tmp = live_world
    proc = wheel_venv.run("scan", "--kubeconfig", str(kube.kubeconfig), "--prometheus", e2e_prometheus.url,
                          "--history", "2d", "--output", "json", cwd=tmp)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = {(f["type"], f["target"].split("/")[2]) for f in json.loads(proc.stdout)["findings"]}
    assert {("rightsize-cpu", "web"), ("rightsize-memory", "db")} <= found, found


def test_operator_from_the_wheel_runs_a_policy(wheel_venv, live_world, e2e_prometheus):
    kube, remote, tmp = live_world
    env = clean_env(KUBECONFIG=str(kube.kubeconfig), FINOPS_OPERATOR_NAMESPACE=OPERATOR_NS, FINOPS_ALLOW_LOCAL_GIT="true",
                    FINOPS_TIMER_INTERVAL_SECONDS="1", FINOPS_WORKDIR=str(tmp / "work"),
                    GIT_AUTHOR_NAME="finops", GIT_AUTHOR_EMAIL="finops@example.test",
                    GIT_COMMITTER_NAME="finops", GIT_COMMITTER_EMAIL="finops@example.test")
    op = OperatorProcess(env=env, log=tmp / "operator.log", namespace=OPERATOR_NS,
                         program=(str(wheel_venv.bin("finops")),), cwd=tmp).start()
    try:
        kube.kubectl("apply", "-f", "-", input=yaml.safe_dump(policy(e2e_prometheus.url, remote)))
        kube.kubectl("annotate", "--overwrite", "fpol", POLICY, "-n", OPERATOR_NS, "finops.dev/run-now=1")
        body = op.wait_for("the run-now run", lambda: _handled(kube), timeout=180)
    finally:
        op.stop()
    ready = {c["type"]: c for c in body["status"]["conditions"]}["Ready"]
    assert ready["status"] == "True", ready
    branches = git("for-each-ref", "--format=%(refname:short)", "refs/heads/finops/", cwd=remote).split()
    assert len(branches) == 1, (branches, ready["message"], op.text()[-3000:])
    assert len(get_json(kube, "fsav", "-n", OPERATOR_NS, "-l", f"finops.dev/policy={POLICY}")["items"]) == 2
    assert os.fspath(ROOT) not in op.text(), "the operator ran code from the checkout"


def _handled(kube) -> dict | None:
    body = get_json(kube, "fpol", POLICY, "-n", OPERATOR_NS)
    return body if body["metadata"].get("annotations", {}).get("finops.dev/run-now-handled") == "1" else None


def policy(prometheus_url: str, remote: Path) -> dict:
    return {"apiVersion": "finops.dev/v1alpha1", "kind": "FinOpsPolicy",
            "metadata": {"name": POLICY, "namespace": OPERATOR_NS},
            "spec": {"schedule": "0 6 * * 1-5", "mode": "PullRequest", "scope": {"namespaces": [SHOP]},
                     "dataSources": {"prometheus": {"url": prometheus_url, "historyWindow": "7d", "stepSeconds": 300}},
                     "guardrails": {"maxSingleChangePercent": 95},
                     "git": {"provider": "Git", "repository": f"file://{remote}", "baseBranch": "main",
                             "paths": ["apps"], "labels": ["finops"]}}}


def test_live_costs_from_the_wheel(wheel_venv, live_world, e2e_prometheus):
    """finops costs on a live cluster: inventory from the apiserver, hourly usage from the real Prometheus."""
    kube, _, tmp = live_world
    proc = wheel_venv.run("costs", "--kubeconfig", str(kube.kubeconfig), "--prometheus", e2e_prometheus.url,
                          "--window", "2d", "--output", "json", cwd=tmp)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "finops.costs/v1"
    assert doc["bill"]["source"] is None and doc["bill"]["total"] is None      # the command line reads no bill
    assert [s["source"] for s in doc["priceSources"]] == ["list"]
    rows = {(r["kind"], r["key"]): float(r["cost"]) for r in doc["rows"]}
    assert rows.get(("allocated", SHOP), 0) > 0, rows
    assert any("no bill read" in note for note in doc["notes"]), doc["notes"]
