"""Change-set planning: grouping, blast-radius splits, stable ids, open-PR budget, ordering."""
from __future__ import annotations

import random

from finops_operator.actuation.plan import plan_change_sets, slug
from finops_operator.guardrails import GuardrailContext, evaluate
from finops_operator.models import Decision, Verdict
from finops_operator.settings import load_policy
from tests.support.fixtures_guardrails import NOW, container_finding, node_group_finding, volume_finding


def policy(**guardrails):
    group_by = guardrails.pop("group_by", "namespace")
    return load_policy({"groupBy": group_by, "guardrails": {"approvalAboveDollars": 10000,
                                                            "maxSingleChangeDollars": 10000,
                                                            "maxChangesPerDay": 1000, **guardrails}})


def allow_all(findings):
    return {f.id: Decision(f.id, Verdict.ALLOW) for f in findings}


def ids(plan):
    return [cs.id for cs in plan.change_sets]


def test_groups_by_namespace_keeps_containers_of_a_workload_together_and_infra_apart():
    findings = [
        container_finding("payments", "api", "app", savings=40),
        container_finding("payments", "api", "app", memory=("1Gi", "512Mi"), savings=15),
        container_finding("payments", "api", "envoy", savings=5),
        container_finding("search", "indexer", "app", savings=30),
        node_group_finding("general", savings=140),
        volume_finding("vol-1", savings=8),
        volume_finding("vol-2", savings=4),
    ]
    plan = plan_change_sets(findings, allow_all(findings), policy(), open_prs=0)
    assert ids(plan) == ["node-groups", "rightsize-payments", "rightsize-search", "orphan-volumes"]
    by_id = {cs.id: cs for cs in plan.change_sets}
    assert len(by_id["rightsize-payments"].findings) == 3
    assert by_id["rightsize-payments"].title == "Right-size CPU and memory of 1 workload in payments"
    assert by_id["rightsize-payments"].monthly_savings == 60
    assert by_id["orphan-volumes"].title == "Delete 2 orphan volumes"
    assert by_id["node-groups"].title == "Consolidate 1 node group"
    assert by_id["rightsize-payments"].branch == "finops/rightsize-payments"
    assert plan.deferred == {}


def test_only_allowed_findings_are_planned():
    ok = container_finding(workload="ok")
    waiting = container_finding(workload="waiting")
    denied = container_finding(workload="denied")
    decisions = {ok.id: Decision(ok.id, Verdict.ALLOW), waiting.id: Decision(waiting.id, Verdict.REQUIRE_APPROVAL),
                 denied.id: Decision(denied.id, Verdict.DENY)}
    plan = plan_change_sets([ok, waiting, denied], decisions, policy(), open_prs=0)
    assert [f.id for cs in plan.change_sets for f in cs.findings] == [ok.id]
    assert plan.deferred == {}


def test_split_counts_workloads_not_containers_and_ids_are_stable():
    findings = []
    for i in range(7):
        findings.append(container_finding("payments", f"svc{i}", "app", savings=10 + i))
        findings.append(container_finding("payments", f"svc{i}", "sidecar", savings=1))
    settings = policy(maxWorkloadsPerPr=3)
    plan = plan_change_sets(findings, allow_all(findings), settings, open_prs=0)
    assert sorted(ids(plan)) == ["rightsize-payments", "rightsize-payments-2", "rightsize-payments-3"]
    by_id = {cs.id: cs for cs in plan.change_sets}
    workloads = {cs.id: sorted({f.target.workload.name for f in cs.findings}) for cs in plan.change_sets}
    assert workloads == {"rightsize-payments": ["svc0", "svc1", "svc2"],
                         "rightsize-payments-2": ["svc3", "svc4", "svc5"],
                         "rightsize-payments-3": ["svc6"]}
    assert len(by_id["rightsize-payments"].findings) == 6          # both containers of each workload
    assert by_id["rightsize-payments-2"].title.endswith("(part 2 of 3)")
    reason = by_id["rightsize-payments-2"].decisions[by_id["rightsize-payments-2"].findings[0].id].reasons[-1]
    assert reason.rule == "blast-radius"
    assert reason.message.startswith("PR 2 of 3 for payments: 7 workloads across 1 namespaces; at most 3 workloads")
    # Same findings in a different order -> the same change sets with the same members.
    shuffled = findings[:]
    random.Random(7).shuffle(shuffled)
    again = plan_change_sets(shuffled, allow_all(shuffled), settings, open_prs=0)
    assert [(cs.id, [f.id for f in cs.findings]) for cs in again.change_sets] == \
        [(cs.id, [f.id for f in cs.findings]) for cs in plan.change_sets]


def test_group_by_team_respects_namespaces_per_pr():
    findings = [container_finding("checkout", "web", team="shop", savings=10),
                container_finding("cart", "api", team="shop", savings=20),
                container_finding("cart", "worker", team="shop", savings=5)]
    plan = plan_change_sets(findings, allow_all(findings), policy(group_by="team", maxNamespacesPerPr=1), open_prs=0)
    members = {cs.id: sorted(f.target.namespace for f in cs.findings) for cs in plan.change_sets}
    assert members == {"rightsize-shop": ["cart", "cart"], "rightsize-shop-2": ["checkout"]}
    wide = plan_change_sets(findings, allow_all(findings), policy(group_by="team", maxNamespacesPerPr=2), open_prs=0)
    assert ids(wide) == ["rightsize-shop"]
    assert wide.change_sets[0].title == "Right-size CPU of 3 workloads in team shop"


def test_group_by_type_separates_cpu_and_memory():
    findings = [container_finding("a", "x", savings=10), container_finding("b", "y", memory=("1Gi", "512Mi"), savings=30),
                container_finding("c", "z", savings=12)]
    plan = plan_change_sets(findings, allow_all(findings), policy(group_by="type", maxNamespacesPerPr=5), open_prs=0)
    assert ids(plan) == ["rightsize-memory", "rightsize-cpu"]
    assert plan.change_sets[1].title == "Right-size CPU of 2 workloads"


def test_open_pr_budget_defers_the_smallest_and_existing_prs_need_no_slot():
    findings = [container_finding(ns, "api", savings=s) for ns, s in [("a", 10), ("b", 50), ("c", 30), ("d", 20)]]
    plan = plan_change_sets(findings, allow_all(findings), policy(maxOpenPrs=3), open_prs=1)
    assert ids(plan) == ["rightsize-b", "rightsize-c"]
    deferred_ns = sorted(f.target.namespace for f in findings if f.id in plan.deferred)
    assert deferred_ns == ["a", "d"]
    assert plan.deferred[findings[0].id] == ("open PR limit 3 reached (1 open before this run); change set "
                                             "rightsize-a waits for the next run (guardrails.maxOpenPrs)")
    # rightsize-a already has an open PR (one of the 3 counted): it is updated, not deferred.
    plan = plan_change_sets(findings, allow_all(findings), policy(maxOpenPrs=3), open_prs=3,
                            existing={findings[0].id: "rightsize-a"})
    assert ids(plan) == ["rightsize-a"]
    assert len(plan.deferred) == 3


def test_decisions_from_the_real_engine_and_dry_run_flag():
    findings = [container_finding("payments", "api", savings=50), container_finding("payments", "db", confidence=0.1)]
    settings = load_policy({"mode": "DryRun"})
    decisions = evaluate(findings, settings.guardrails, GuardrailContext(now=NOW), settings.mode)
    plan = plan_change_sets(findings, decisions, settings, open_prs=0)
    assert plan.dry_run is True
    [cs] = plan.change_sets
    assert [f.target.workload.name for f in cs.findings] == ["api"]
    assert cs.decisions[findings[0].id].reasons[-1].rule == "mode"


def test_missing_decision_is_reported_not_planned():
    finding = container_finding()
    plan = plan_change_sets([finding], {}, policy(), open_prs=0)
    assert plan.change_sets == []
    assert "no guardrail decision" in plan.deferred[finding.id]


def test_slug_is_branch_safe_and_bounded():
    assert slug("Team Payments/EU") == "team-payments-eu"
    assert slug("") == "none"
    long = slug("x" * 100)
    assert len(long) <= 48 and long == slug("x" * 100) and long != slug("x" * 99)
