"""FreezeGrowth: the finding from a budget, the ResourceQuota edit, guardrails, planning and the release."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from textwrap import dedent

import pytest
import yaml

from finops_operator.actuation.edits import plan_edits
from finops_operator.actuation.freeze_release import release_freeze
from finops_operator.actuation.plan import plan_change_sets
from finops_operator.actuation.providers import PullRequestRef
from finops_operator.detectors import REGISTRY, run_all
from finops_operator.detectors.freeze import (QUOTA_NAME, freeze_growth_finding, namespace_requests,
                                              should_release)
from finops_operator.errors import ConfigError, ProviderError
from finops_operator.guardrails import GuardrailContext, evaluate
from finops_operator.ledger import Ledger, OpportunityState
from finops_operator.models import Verdict
from finops_operator.pricing.catalog import PriceBook
from finops_operator.settings import load_policy
from tests.support.fixtures_detectors import GIB, MIB, StateBuilder

NOW = datetime(2026, 11, 20, 10, tzinfo=timezone.utc)
CURRENT = {"requests.cpu": "12", "requests.memory": "48Gi"}
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: payments\n"


def finding(namespace: str = "payments", hard: dict[str, str] | None = None, budget: str = "payments-q4", **kw):
    return freeze_growth_finding("finance", budget, namespace, hard, "spend reached 104% of 5000 USD",
                                 kw.pop("current", CURRENT), "2026-11", spend=5210.0, amount=5000.0,
                                 threshold_percent=100, **kw)


def repo(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(dedent(text))
    return tmp_path


def edited(tmp_path: Path, files: dict[str, str], *findings):
    result = plan_edits(repo(tmp_path, files), list(findings) or [finding()])
    return result, {e.path: e for e in result.edits}


# ---------------------------------------------------------------------------- the finding


def test_namespace_requests_sum_live_pods_and_round_up():
    state = (StateBuilder()
             .pod("a", "n1", 0.2505, 300 * MIB, namespace="payments")
             .pod("b", "n1", 1.5, 2 * GIB, namespace="payments")
             .pod("done", "n1", 8.0, 8 * GIB, namespace="payments", phase="Succeeded")
             .pod("other", "n1", 3.0, GIB, namespace="search")
             .build())
    assert namespace_requests(state, "payments") == {"requests.cpu": "1751m", "requests.memory": "2348Mi"}
    assert namespace_requests(state, "search") == {"requests.cpu": "3", "requests.memory": "1Gi"}
    assert namespace_requests(state, "empty") == {}


def test_finding_defaults_to_current_requests_and_says_why():
    f = finding()
    assert [(c.field, c.before, c.after) for c in f.changes] == [
        ("spec.hard.requests.cpu", None, "12"), ("spec.hard.requests.memory", None, "48Gi")]
    assert f.type.value == "freeze-growth" and f.target.namespace == "payments" and f.group == "finance/payments-q4"
    assert f.monthly_savings == 0.0 and f.labels["kubernetes.io/metadata.name"] == "payments"
    assert f.evidence["budget"] == "finance/payments-q4" and f.evidence["spend"] == "5210.00 USD"
    assert f.evidence["amount"] == "5000.00 USD" and f.evidence["period"] == "2026-11"
    assert f.evidence["threshold"] == "100% of the amount (spend so far)"
    assert "back under the threshold" in f.evidence["closes"]
    explicit = finding(hard={"requests.cpu": "20", "pods": "50"})
    assert {c.field: c.after for c in explicit.changes} == {"spec.hard.pods": "50", "spec.hard.requests.cpu": "20"}
    assert explicit.fingerprint != f.fingerprint and explicit.id == f.id     # one opportunity per namespace


def test_finding_refuses_nothing_to_freeze_and_bad_quantities():
    with pytest.raises(ConfigError, match="nothing to freeze") as err:
        finding(current={})
    assert err.value.field == "spec.freezeGrowth.hard"
    with pytest.raises(ConfigError, match="not a Kubernetes quantity") as err:
        finding(hard={"requests.cpu": "lots"})
    assert err.value.field == "spec.freezeGrowth.hard.requests.cpu"


def test_the_type_is_registered_but_never_scanned():
    spec = REGISTRY["freeze-growth"]
    assert spec.target_kind.value == "namespace" and [k.value for k in spec.edit_kinds] == ["resource-quota"]
    settings = load_policy({})
    assert not spec(settings, PriceBook.for_region("us-east-1")).enabled
    assert run_all(StateBuilder().build(), settings, PriceBook.for_region("us-east-1"), only=["freeze-growth"]).findings == []


# ---------------------------------------------------------------------------- the edit


def test_new_quota_file_beside_the_namespace_listed_in_its_kustomizations(tmp_path):
    result, edits = edited(tmp_path, {
        "base/payments/namespace.yaml": NAMESPACE,
        "base/payments/kustomization.yaml": "resources:\n  - namespace.yaml  # keep\n",
        "clusters/prod/kustomization.yaml": "resources:\n  - ../../base/payments/namespace.yaml\n  - other.yaml\n",
        "clusters/prod/other.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
    })
    assert sorted(edits) == ["base/payments/finops-freeze-growth.yaml", "base/payments/kustomization.yaml",
                             "clusters/prod/kustomization.yaml"]
    new = edits["base/payments/finops-freeze-growth.yaml"]
    assert new.before is None
    doc = yaml.safe_load(new.after)
    assert doc["kind"] == "ResourceQuota" and doc["metadata"]["name"] == QUOTA_NAME
    assert doc["metadata"]["namespace"] == "payments" and doc["spec"]["hard"] == CURRENT
    assert edits["base/payments/kustomization.yaml"].after == (
        "resources:\n  - namespace.yaml  # keep\n  - finops-freeze-growth.yaml\n")
    assert edits["clusters/prod/kustomization.yaml"].after == (
        "resources:\n  - ../../base/payments/namespace.yaml\n  - other.yaml\n"
        "  - ../../base/payments/finops-freeze-growth.yaml\n")
    assert not result.skipped and result.locations[finding().id] == "base/payments/finops-freeze-growth.yaml:1"


def test_plain_directory_gets_only_the_new_file(tmp_path):
    _, edits = edited(tmp_path, {"namespaces.yaml": NAMESPACE + "---\n" + NAMESPACE.replace("payments", "search")})
    assert list(edits) == ["finops-freeze-growth.yaml"]


def test_existing_quota_is_tightened_never_loosened(tmp_path):
    quota = """\
        apiVersion: v1
        kind: ResourceQuota
        metadata:
          name: finops-freeze-growth
          namespace: payments
        spec:
          hard:
            requests.cpu: "10"     # set by the platform team
            requests.memory: 64Gi
        """
    result, edits = edited(tmp_path, {"ns/namespace.yaml": NAMESPACE, "ns/quota.yaml": quota},
                           finding(hard={"requests.cpu": "12", "requests.memory": "48Gi", "pods": "40"}))
    assert list(edits) == ["ns/quota.yaml"]
    after = edits["ns/quota.yaml"].after
    hard = {k: str(v) for k, v in yaml.safe_load(after)["spec"]["hard"].items()}     # quantities: int or string
    assert hard == {"requests.cpu": "10", "requests.memory": "48Gi", "pods": "40"}
    assert 'requests.cpu: "10"     # set by the platform team' in after          # the stricter value stays
    [notes] = result.notes.values()
    assert any("kept requests.cpu: 10" in n for n in notes) and any("64Gi -> 48Gi" in n for n in notes)


def test_existing_quota_already_stricter_is_refused(tmp_path):
    quota = ("apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: finops-freeze-growth\n  namespace: payments\n"
             "spec:\n  hard:\n    requests.cpu: 8\n    requests.memory: 32Gi\n")
    result, edits = edited(tmp_path, {"ns/namespace.yaml": NAMESPACE, "ns/quota.yaml": quota})
    assert edits == {}
    assert "nothing to tighten" in result.skipped[finding().id]


def test_namespace_not_found_is_refused_naming_what_was_looked_for(tmp_path):
    result, edits = edited(tmp_path, {"apps/deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n"
                                                          "  name: api\n  namespace: payments\n"})
    assert edits == {}
    reason = result.skipped[finding().id]
    assert "Namespace payments not found" in reason and "`kind: Namespace` document named payments" in reason
    assert "1 YAML files" in reason and "by hand" in reason


# ---------------------------------------------------------------------------- guardrails and planning


def test_guardrails_deny_a_protected_namespace():
    settings = load_policy({"guardrails": {"protectedLabels": {"kubernetes.io/metadata.name": "kube-system",
                                                               "tier": "critical"},
                                           "protectedAction": "Deny"}})
    system, critical, plain = (finding("kube-system"), finding("ledger", labels={"tier": "critical"}),
                               finding("payments"))
    decisions = evaluate([system, critical, plain], settings.guardrails, GuardrailContext(now=NOW), settings.mode)
    assert decisions[system.id].verdict == Verdict.DENY and decisions[critical.id].verdict == Verdict.DENY
    assert "protected label kubernetes.io/metadata.name=kube-system" in decisions[system.id].reasons[0].message
    assert decisions[plain.id].verdict == Verdict.ALLOW


def test_one_change_set_per_budget_split_by_namespaces_per_pr():
    findings = [finding("payments"), finding("ledger"), finding("search", budget="search")]
    settings = load_policy({"guardrails": {"maxNamespacesPerPr": 1}})
    decisions = evaluate(findings, settings.guardrails, GuardrailContext(now=NOW), settings.mode)
    plan = plan_change_sets(findings, decisions, settings, open_prs=0)
    assert sorted(cs.id for cs in plan.change_sets) == ["freeze-growth-finance-payments-q4",
                                                        "freeze-growth-finance-payments-q4-2",
                                                        "freeze-growth-finance-search"]
    titles = {cs.id: cs.title for cs in plan.change_sets}
    assert titles["freeze-growth-finance-search"] == "Freeze growth of 1 namespace (budget finance/search)"
    assert titles["freeze-growth-finance-payments-q4"].endswith("(budget finance/payments-q4) (part 1 of 2)")


# ---------------------------------------------------------------------------- release


@pytest.mark.parametrize(("pr_period", "period", "spend", "threshold", "release"), [
    ("2026-11", "2026-12", 120.0, 5000, True),       # next period, back under
    ("2026-11", "2026-12", 5000.0, 5000, False),     # next period, at the threshold again
    ("2026-11", "2026-11", 10.0, 5000, False),       # same period: never
    ("2026-11", "2026-10", 10.0, 5000, False),       # an older period (clock skew): never
    ("2026-Q3", "2026-Q4", 4999.99, "5000", True),
])
def test_should_release(pr_period, period, spend, threshold, release):
    assert should_release(pr_period, period, spend, threshold) is release


class Closer:
    """A provider that records closes (the GitHub one is exercised against the emulator)."""

    def __init__(self, state: str = "closed", fail: bool = False):
        self.closed: list[tuple[str, str]] = []
        self.state, self.fail = state, fail

    def close(self, branch: str, reason: str) -> PullRequestRef | None:
        if self.fail:
            raise ProviderError("GitHub is down", source="github:acme/gitops")
        self.closed.append((branch, reason))
        return PullRequestRef(7, "https://github.test/pr/7", branch, self.state)

    def status(self, branch: str) -> PullRequestRef | None:
        return None


def proposed_ledger(*findings) -> Ledger:
    ledger = Ledger()
    settings = load_policy({"guardrails": {"maxNamespacesPerPr": 5}})
    decisions = evaluate(list(findings), settings.guardrails, GuardrailContext(now=NOW), settings.mode)
    ledger.observe(list(findings), decisions, NOW)
    for cs in plan_change_sets(list(findings), decisions, settings, open_prs=0).change_sets:
        for f in cs.findings:
            ledger.proposed(f.id, "https://github.test/pr/7", 7, cs.branch, cs.id, NOW)
    return ledger


def test_release_closes_the_budgets_prs_and_supersedes_them():
    mine, other = finding("payments"), finding("search", budget="search")
    ledger, provider = proposed_ledger(mine, other), Closer()
    later = NOW + timedelta(days=12)
    args = dict(budget_namespace="finance", budget_name="payments-q4", pr_period_key="2026-11", now=later)
    assert release_freeze(ledger, provider, current_period_key="2026-11", spend=1, threshold_amount=5000,
                          **args) == []
    assert release_freeze(ledger, provider, current_period_key="2026-12", spend=6000, threshold_amount=5000,
                          **args) == []
    [done] = release_freeze(ledger, provider, current_period_key="2026-12", spend=120, threshold_amount=5000, **args)
    assert done.branch == "finops/freeze-growth-finance-payments-q4" and done.opportunities == [mine.id]
    [(branch, reason)] = provider.closed
    assert "spend 120.00 USD is back under its threshold 5000.00 USD in period 2026-12" in reason
    opp = ledger.get(mine.id)
    assert opp.state == OpportunityState.SUPERSEDED and "closed by the operator" in opp.history[-1].reason
    assert ledger.get(other.id).state == OpportunityState.PROPOSED
    # the next policy-independent observation of the same freeze starts a new cycle (not a rejection)
    ledger.observe([mine], {}, later + timedelta(days=30))
    assert ledger.get(mine.id).state == OpportunityState.DETECTED


def test_release_failure_keeps_the_opportunity_for_a_retry():
    mine = finding()
    ledger = proposed_ledger(mine)
    [failed] = release_freeze(ledger, Closer(fail=True), budget_namespace="finance", budget_name="payments-q4",
                              pr_period_key="2026-11", current_period_key="2026-12", spend=1,
                              threshold_amount=5000, now=NOW)
    assert "GitHub is down" in failed.error and ledger.get(mine.id).state == OpportunityState.PROPOSED


# ---------------------------------------------------------------------------- what the budget's Event says


def test_the_action_says_in_one_line_why_no_pull_request_was_opened(tmp_path):
    """``budgetactions.describe`` on real pipeline results: a guardrail's denial, a missing Namespace manifest."""
    from finops_operator.api.budgetactions import describe
    from finops_operator.api.policy import read_policy
    from finops_operator.pipeline import propose
    from finops_operator.reconcile import Published, RunReport
    policy = read_policy({"metadata": {"name": "p", "namespace": "finance"},
                          "spec": {"dataSources": {"prometheus": {"url": "http://prometheus:9090"}},
                                   "git": {"provider": "GitHub", "repository": "acme/gitops",
                                           "tokenSecretRef": {"name": "gh"}}}},
                         operator_ns="finops")
    state = StateBuilder().pod("api-1", "n1", 0.5, GIB, namespace="payments", owner="api").build()
    guarded = load_policy({"guardrails": {"protectedLabels": {"tier": "production"}, "protectedAction": "Deny"}})
    denied = propose(state, [finding(labels={"tier": "production"})], guarded, repo_root=repo(tmp_path / "a", {}),
                     context=GuardrailContext(now=NOW))
    line = describe(RunReport(NOW, result=denied), {}, ["payments"], policy)
    assert line.startswith("no ResourceQuota pull request opened: deny by guardrail protected-labels"), line
    missing = propose(state, [finding()], load_policy({"guardrails": {"protectedLabels": {}}}),
                      repo_root=repo(tmp_path / "b", {"apps/x.yaml": "kind: ConfigMap\n"}),
                      context=GuardrailContext(now=NOW))
    line = describe(RunReport(NOW, result=missing), {}, ["payments"], policy)
    assert line.startswith("no ResourceQuota pull request opened: ") and "Namespace payments not found" in line, line
    assert describe(None, {"inventory": "Prometheus down"}, ["payments"], policy) == \
        "no ResourceQuota pull request opened: inventory: Prometheus down"
    ref = PullRequestRef(12, "https://github.example/acme/gitops/pull/12", "finops/freeze-growth-finance-b", "open",
                         created=True)
    assert describe(RunReport(NOW, published=[Published("cs", ref)]), {}, ["payments"], policy) == \
        "opened PR #12 (ResourceQuota for payments) https://github.example/acme/gitops/pull/12"
