"""`finops demo` end to end: real files, real git, the real CLI entry point."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from finops_operator.cli.main import main

VALUE_LINE = re.compile(r"^[+-]\s*(cpu|memory|requests|resources|desired_size|min_size|limits)\b|"
                        r"^[+-]\s*requests: \{cpu: \S+, memory: \S+\}$")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def changed_lines(repo: Path, branch: str, path: str) -> list[str]:
    diff = git(repo, "diff", "-U0", f"main..{branch}", "--", path)
    return [line for line in diff.splitlines()
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("demo") / "run"
    assert main(["demo", "--workdir", str(workdir)]) == 0
    return workdir


def test_demo_writes_a_branch_per_change_set(demo):
    repo = demo / "gitops"
    branches = set(git(repo, "branch", "--list", "finops/*", "--format=%(refname:short)").split())
    assert {"finops/rightsize-payments", "finops/rightsize-search", "finops/rightsize-analytics",
            "finops/orphan-volumes", "finops/node-groups"} <= branches
    scan = json.loads((demo / "scan.json").read_text())
    assert {cs["branch"] for cs in scan["changeSets"]} == branches
    for cs in scan["changeSets"]:
        body = (demo / "pull-requests" / f"{cs['id']}.md").read_text()
        assert f"finops-operator:changeset={cs['id']}" in body and "| **Total** |" in body
        assert sorted(git(repo, "diff", "--name-only", f"main..{cs['branch']}").split()) == sorted(cs["files"])
    assert git(repo, "status", "--porcelain") == ""          # main's work tree untouched


def test_rightsizing_diffs_touch_only_resource_values(demo):
    repo = demo / "gitops"
    for branch in ("finops/rightsize-payments", "finops/rightsize-search", "finops/rightsize-analytics"):
        for path in git(repo, "diff", "--name-only", f"main..{branch}").split():
            lines = changed_lines(repo, branch, path)
            assert lines, (branch, path)
            assert all(VALUE_LINE.search(line) for line in lines), (branch, path, lines)


def test_formatting_comments_and_units_are_kept(demo):
    repo = demo / "gitops"
    payments = changed_lines(repo, "finops/rightsize-payments", "apps/payments/deployments.yaml")
    # the quoted CPU of payments-api stays quoted and keeps its comment
    assert any(re.fullmatch(r'\+\s+cpu: "\d+m"\s+# sized for Black Friday 2023', line) for line in payments), payments
    # payments-worker's flow mapping stays a flow mapping, memory stays decimal (G/M)
    assert any(re.fullmatch(r"\+\s+requests: \{cpu: \d+m, memory: \d+M\}", line) for line in payments), payments
    redis = changed_lines(repo, "finops/rightsize-analytics", "apps/analytics/redis.yaml")
    assert any(re.fullmatch(r"\+\s+memory: \d+\s+# 4 GiB in bytes, as the old Helm chart rendered it", l) for l in redis)
    # the Helm values file is edited, never the chart's templates
    search = git(repo, "diff", "--name-only", "main..finops/rightsize-search").split()
    assert search == ["apps/search/chart/values-production.yaml"]


def test_safety_raises_and_additions(demo):
    repo = demo / "gitops"
    batch = changed_lines(repo, "finops/rightsize-analytics", "apps/analytics/batch.yaml")
    before = {l.split(":")[0].strip("+- ") + l[0]: l for l in batch}
    old, new = [int(re.search(r"(\d+)Mi", l).group(1)) for l in batch if "memory" in l][:2]
    assert new > old, batch                                  # OOM-killed: memory raised, never cut
    ui = changed_lines(repo, "finops/rightsize-analytics", "apps/analytics/report-ui.yaml")
    assert [l.strip("+ ").split(":")[0] for l in ui] == ["resources", "requests", "cpu", "memory"]
    assert before


def test_protected_and_unsafe_findings_stay_out_of_branches(demo):
    scan = json.loads((demo / "scan.json").read_text())
    in_branches = {f for cs in scan["changeSets"] for f in cs["findings"]}
    by_id = {f["id"]: f for f in scan["findings"]}
    checkout = [f for f in scan["findings"] if f["namespace"] == "checkout"]
    assert checkout and all(f["decision"]["verdict"] == "require-approval" for f in checkout)
    assert all("tier=production" in " ".join(r["message"] for r in f["decision"]["reasons"]) for f in checkout)
    assert all(by_id[i]["decision"]["verdict"] == "allow" for i in in_branches)


def test_node_group_edit_keeps_min_size_valid(demo):
    repo = demo / "gitops"
    text = git(repo, "show", "finops/node-groups:infra/terraform/eks/nodegroups.tf")
    desired = int(re.search(r"desired_size\s*=\s*(\d+)", text).group(1))
    minimum = int(re.search(r"min_size\s*=\s*(\d+)", text).group(1))
    assert minimum <= desired


def test_demo_is_deterministic(demo, tmp_path):
    again = tmp_path / "again"
    assert main(["demo", "--workdir", str(again)]) == 0
    for branch in git(demo / "gitops", "branch", "--list", "finops/*", "--format=%(refname:short)").split():
        assert git(demo / "gitops", "rev-parse", f"{branch}^{{tree}}") == git(again / "gitops", "rev-parse", f"{branch}^{{tree}}")


def test_every_change_set_is_proven_by_rendering(demo):
    """Plain manifests, the Helm values file and the Terraform edits of the demo all pass their proof."""
    scan = json.loads((demo / "scan.json").read_text())
    assert not [e for e in scan["errors"] if "proof" in e or "not proven" in e], scan["errors"]
    for cs in scan["changeSets"]:
        assert cs["proof"] and not [line for line in cs["proof"] if "FAILED" in line or "refused" in line], cs
        assert not [r for r in cs["skipped"].values() if "proof" in r], cs["skipped"]
        body = (demo / "pull-requests" / f"{cs['id']}.md").read_text()
        assert "### Proof" in body and all(f"- {line}" in body for line in cs["proof"])
    proofs = {cs["id"]: cs["proof"] for cs in scan["changeSets"]}
    assert proofs["rightsize-search"] == [
        "rendered apps/search/chart (release search, values.yaml, values-production.yaml): 6 fields changed, as intended"]
    assert all(line.startswith("checked infra/terraform/eks/") for line in proofs["node-groups"])


def test_demo_ends_with_the_top_insight_per_persona(tmp_path, capsys):
    assert main(["demo", "--workdir", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    tail = out[out.index("Cost by namespace"):]                       # after the cost table
    assert "Top insight per persona" in tail
    rows = re.findall(r"^│ (?:low|medium|high|critical) +│ (\w+) +│", tail[tail.index("Top insight"):], re.MULTILINE)
    assert sorted(rows) == ["business", "cfo", "engineer", "finance"]
