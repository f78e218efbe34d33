"""FreezeGrowth end to end: a budget's finding through the real pipeline, a branch on a real git remote,
rendered with the pinned kustomize: this cluster's build adds exactly the ResourceQuota, everything else
renders byte-identical. Then the same change set through the GitHub emulator: opened, closed by the
release, and opened afresh by a later freeze (the operator's own close is not a human rejection).

A missing renderer fails these tests (the ``renderers`` fixture), never skips them.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from finops_operator.actuation.freeze_release import release_freeze
from finops_operator.actuation.git import GitRepo
from finops_operator.actuation.github import GitHubProvider
from finops_operator.actuation.proof import Prover
from finops_operator.actuation.rendertools import RenderTools
from finops_operator.detectors.freeze import QUOTA_NAME, freeze_growth_finding, namespace_requests
from finops_operator.guardrails import GuardrailContext
from finops_operator.ledger import Ledger, OpportunityState
from finops_operator.pipeline import ScanResult, propose
from finops_operator.reconcile import export_tree
from finops_operator.settings import load_policy
from tests.support.fixtures_detectors import GIB, StateBuilder
from tests.support.fixtures_git import git, make_bare_remote
from tests.support.github_emulator import GitHubEmulator
from tests.support.renderers import Renderers

NOW = datetime(2026, 11, 20, 10, tzinfo=timezone.utc)
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 2
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api}
    spec:
      containers:
        - name: api
          image: api:1
          resources:
            requests: {cpu: 500m, memory: 1Gi}
"""
TREE = {
    "apps/api/deployment.yaml": DEPLOYMENT,
    "apps/api/kustomization.yaml": "resources:\n  - deployment.yaml\n",
    "clusters/prod/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: payments  # prod\n",
    "clusters/prod/kustomization.yaml": "namespace: payments\nresources:\n  - namespace.yaml\n  - ../../apps/api\n",
    "clusters/staging/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: payments-staging\n",
    "clusters/staging/kustomization.yaml": ("namespace: payments-staging\nresources:\n  - namespace.yaml\n"
                                            "  - ../../apps/api\n"),
}


def export(repo: Path, ref: str, dest: Path) -> Path:
    dest.mkdir(parents=True)
    return export_tree(repo, ref, dest)


def tools(renderers: Renderers) -> RenderTools:
    return RenderTools({"FINOPS_KUSTOMIZE": str(renderers.kustomize), "FINOPS_HELM": str(renderers.helm),
                        "FINOPS_TOFU": str(renderers.tofu), "PATH": ""})


def freeze(state, period: str = "2026-11", spend: float = 5210.0):
    return freeze_growth_finding("finance", "payments", "payments", None, f"spend {spend / 50:.0f}% of 5000 USD",
                                 namespace_requests(state, "payments"), period, spend=spend, amount=5000.0,
                                 threshold_percent=100)


def state():
    return (StateBuilder()
            .pod("api-1", "n1", 0.5, GIB, namespace="payments", owner="api")
            .pod("api-2", "n1", 0.5, GIB, namespace="payments", owner="api")
            .pod("api-1", "n1", 0.5, GIB, namespace="payments-staging", owner="api")
            .build())


def run(renderers: Renderers, root: Path, *, now: datetime = NOW, **guardrails) -> ScanResult:
    settings = load_policy({"guardrails": {"protectedLabels": {}, **guardrails}})
    return propose(state(), [freeze(state())], settings, repo_root=root, prover=Prover(tools=tools(renderers)),
                   context=GuardrailContext(now=now))


def test_the_branch_renders_exactly_one_new_resource_quota_in_this_cluster(renderers, tmp_path):
    bare = make_bare_remote(tmp_path / "remote", files=TREE)
    clone = GitRepo.open_or_clone(str(bare), tmp_path / "clone")
    base = export(clone.path, "origin/main", tmp_path / "base")
    result = run(renderers, base)
    [cs] = result.change_sets
    assert cs.id == "freeze-growth-finance-payments" and not cs.skipped and not result.errors
    assert sorted(e.path for e in cs.edits) == ["clusters/prod/finops-freeze-growth.yaml",
                                               "clusters/prod/kustomization.yaml"]
    assert cs.proof == ["rendered clusters/prod: 1 object added, as intended"]   # staging reads no edited file
    for words in ("finance/payments", "5210.00 USD", "5000.00 USD", "100% of the amount", "back under the threshold"):
        assert words in cs.body, words

    sha = clone.write_branch(cs, "main")
    after = export(clone.path, sha, tmp_path / "after")
    before_prod = renderers.kustomize_build(base / "clusters/prod")
    after_prod = renderers.kustomize_build(after / "clusters/prod")
    old = list(yaml.safe_load_all(before_prod))
    new = list(yaml.safe_load_all(after_prod))
    added = [d for d in new if d not in old]
    assert [d for d in old if d not in new] == [] and len(new) == len(old) + 1
    assert added == [{"apiVersion": "v1", "kind": "ResourceQuota",
                      "metadata": {"name": QUOTA_NAME, "namespace": "payments",
                                   "labels": {"app.kubernetes.io/managed-by": "finops-operator"}},
                      "spec": {"hard": {"requests.cpu": "1", "requests.memory": "2Gi"}}}]
    assert renderers.kustomize_build(after / "clusters/staging") == renderers.kustomize_build(base / "clusters/staging")
    assert renderers.kustomize_build(after / "apps/api") == renderers.kustomize_build(base / "apps/api")


def test_an_existing_looser_quota_is_tightened_and_proven(renderers, tmp_path):
    root = tmp_path / "repo"
    files = dict(TREE)
    files["clusters/prod/quota.yaml"] = (f"apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: {QUOTA_NAME}\n"
                                         "spec:\n  hard:\n    requests.cpu: 800m\n    requests.memory: 10Gi\n")
    files["clusters/prod/kustomization.yaml"] += "  - quota.yaml\n"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    [cs] = run(renderers, root).change_sets
    [edit] = cs.edits
    assert edit.path == "clusters/prod/quota.yaml"
    assert yaml.safe_load(edit.after)["spec"]["hard"] == {"requests.cpu": "800m", "requests.memory": "2Gi"}
    assert any("rendered clusters/prod: 1 field changed, as intended" in line for line in cs.proof), cs.proof


def test_change_windows_defer_nothing_but_deny_outside_the_window(renderers, tmp_path):
    root = tmp_path / "repo"
    for rel, text in TREE.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    sunday = datetime(2026, 11, 22, 10, tzinfo=timezone.utc)
    result = run(renderers, root, now=sunday, changeWindows=[{"days": [0, 1, 2, 3, 4]}])
    assert result.change_sets == []
    [decision] = result.decisions.values()
    assert decision.verdict.value == "deny" and decision.reasons[-1].rule == "change-window"


@pytest.mark.integration
def test_github_opens_then_the_release_closes_and_a_later_freeze_opens_again(renderers, tmp_path,
                                                                          github: GitHubEmulator):
    git("update-ref", "refs/heads/main", _seed(github.bare, tmp_path), cwd=github.bare)
    provider = GitHubProvider("acme/gitops", github.token, api_url=github.api_url, git_url=github.git_url,
                              workdir=tmp_path / "work", retries=1, seconds_between_requests=None,
                              seconds_between_writes=None)
    ledger = Ledger()
    clone = GitRepo.open_or_clone(github.git_url, tmp_path / "checkout")
    result = run(renderers, export(clone.path, "origin/main", tmp_path / "base"))
    [cs] = result.change_sets
    ledger.observe(result.findings, result.decisions, NOW)
    ref = provider.publish(cs, base_branch="main", labels=["finops"], reviewers=[], draft=False)
    assert ref.state == "open" and ref.created
    [f] = cs.findings
    ledger.proposed(f.id, ref.url, ref.number, ref.branch, cs.id, NOW)
    pr = github.pr(ref.number)
    assert pr.state == "open" and "finance/payments" in pr.body

    december = NOW + timedelta(days=12)
    [released] = release_freeze(ledger, provider, budget_namespace="finance", budget_name="payments",
                                pr_period_key="2026-11", current_period_key="2026-12", spend=80.0,
                                threshold_amount=5000, now=december)
    assert released.error is None and released.ref is not None and released.ref.state == "closed"
    pr = github.pr(ref.number)
    assert pr.state == "closed" and "Closed by finops-operator" in pr.body and "back under its threshold" in pr.body
    assert ledger.get(f.id).state == OpportunityState.SUPERSEDED
    assert provider.status(cs.branch).state == "closed"

    # February: the threshold is crossed again; the freeze is a new pull request, not a refused reopen
    february = datetime(2027, 2, 18, 10, tzinfo=timezone.utc)
    again = run(renderers, export(clone.path, "origin/main", tmp_path / "base2"), now=february)
    [cs2] = again.change_sets
    ref2 = provider.publish(cs2, base_branch="main", labels=["finops"], reviewers=[], draft=False)
    assert ref2.state == "open" and ref2.number != ref.number and ref2.created


def _seed(bare: Path, tmp_path: Path) -> str:
    """Replace the emulator's tree on main with this test's GitOps tree; the new commit's sha."""
    work = tmp_path / "seed"
    git("clone", "--quiet", str(bare), str(work))
    for rel in git("ls-files", cwd=work).splitlines():
        git("rm", "--quiet", rel, cwd=work)
    for rel, text in TREE.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)
    git("add", "-A", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "freeze tree", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


@pytest.mark.integration
def test_git_provider_close_deletes_the_branch_and_a_later_publish_pushes_it_again(renderers, tmp_path):
    from finops_operator.actuation.providers import GitProvider
    bare = make_bare_remote(tmp_path / "remote", files=TREE)
    provider = GitProvider(str(bare), tmp_path / "work")
    clone = GitRepo.open_or_clone(str(bare), tmp_path / "clone")
    [cs] = run(renderers, export(clone.path, "origin/main", tmp_path / "base")).change_sets
    assert provider.publish(cs).state == "pushed"
    assert git("rev-parse", "--verify", "--quiet", f"refs/heads/{cs.branch}", cwd=bare, check=False)
    closed = provider.close(cs.branch, "spend back under the threshold")
    assert closed is not None and closed.state == "closed"
    assert not git("rev-parse", "--verify", "--quiet", f"refs/heads/{cs.branch}", cwd=bare, check=False)
    assert provider.close(cs.branch, "again") is None and provider.status(cs.branch) is None
    assert provider.publish(cs).state == "pushed"                    # withdrawn, not rejected: pushed afresh
