"""What a crossed threshold does (called once per threshold and period by :mod:`.budgetrun`).

* every action: a Kubernetes Event (posted by :mod:`.budgetrun`), the crossing counted in
  ``finops_budget_threshold_crossings_total`` and a budget event in status;
* ``Notify`` / ``Alert``: :func:`deliver` queues the message for the NotificationChannels named by
  ``spec.notifications`` (the delivery engine, :mod:`..delivery`, sends it from the channel's timer);
  ``Alert`` is also the Warning Event and the Budget's Exceeded condition;
* ``FreezeGrowth``: :func:`freeze_growth`, a ResourceQuota pull request per budget (one quota per scope
  namespace, ``detectors.freeze.freeze_growth_finding``) through the budget's FinOpsPolicy: its
  inventory, ledger (SavingsOpportunity objects), guardrails, git checkout, proof and provider - the
  policy run's own path (:func:`.runs.execute_run` with :func:`..reconcile.propose_findings`);
  :func:`release` closes it in a later period once the threshold's value is back under the line.

    access = PolicyAccess(api_client, operator_ns="finops", workdir=Path("/tmp/finops/ns/budget"), now=now)
    run_action(budget, crossing, result, access)       # "opened PR #12 (ResourceQuota for shop); ..."
    release(budget, freeze, result, access)            # "closed PR #12 ..." or None (nothing was open)
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..budgets import Crossing, Evaluation, Freeze
from ..config import DEFAULT_CLUSTER_NAME
from ..errors import ConfigError, DataSourceError, FinOpsError, ProviderError
from ..ledger import Ledger
from ..models import ClusterState, Finding
from ..reconcile import LoopDeps, RunReport
from ..scrub import scrub
from .budget import BudgetSpec
from .policy import PolicySpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicyAccess:
    """How actions reach the Budget's FinOpsPolicy. ``workdir`` is the budget's own (never a policy run's)."""

    api_client: Any
    operator_ns: str
    workdir: Path
    now: datetime
    allow_local_git: bool = False
    cluster: str = DEFAULT_CLUSTER_NAME
    region: str = "us-east-1"


def run_action(budget: BudgetSpec, crossing: Crossing, result: Evaluation, access: PolicyAccess | None = None,
               *, api_client: Any = None) -> str:
    """Do what the threshold's action asks; returns what was done (for the ActionTaken event)."""
    from .. import metrics
    action = crossing.threshold.action
    metrics.BUDGET_CROSSINGS.labels(budget=budget.key, threshold=crossing.threshold.id, action=action).inc()
    said = deliver(budget, crossing, result, api_client=api_client or (access.api_client if access else None))
    if action == "FreezeGrowth":
        return f"{freeze_growth(budget, crossing, result, access)}; {said}"
    return said


def deliver(budget: BudgetSpec, crossing: Crossing, result: Evaluation, *, api_client: Any = None,
            now: datetime | None = None) -> str:
    """Queue the crossing for the budget's notification channels (NotificationChannels of its namespace named
    by spec.notifications); each channel's timer delivers it (Notify: high, Alert/FreezeGrowth: critical, so
    an Alert bypasses quiet hours and batching). Queued once per period and threshold (the item id)."""
    from .notifycluster import budget_items, enqueue_items
    items = budget_items(budget, crossing, result, now or crossing.at)
    if not items:
        return "Event and metric recorded"
    names = ", ".join(sorted({i.channel for i in items}))
    if api_client is None:
        return f"Event and metric recorded; not queued for {names} (no Kubernetes client)"
    try:
        enqueue_items(api_client, budget.namespace, items, now or crossing.at)
    except Exception as exc:  # a missing channel must not lose the Event: say so in the ActionTaken event
        return f"Event and metric recorded; not queued for {names}: {scrub(str(exc))}"
    return f"Event and metric recorded; queued for delivery to {names}"


def freeze_growth(budget: BudgetSpec, crossing: Crossing, result: Evaluation, access: PolicyAccess | None) -> str:
    """Propose the ResourceQuota pull request for the scope's namespaces; one line saying what became of it."""
    if access is None:
        return "no ResourceQuota pull request opened (no cluster access given to this evaluation)"
    try:
        policy = _git_policy(budget, access)
    except FinOpsError as exc:
        return f"no ResourceQuota pull request opened: {exc}"
    from ..reconcile import propose_findings
    from .runs import execute_run
    namespaces = sorted(budget.schema.scope.namespaces or ()) if budget.schema else []

    def run(p: PolicySpec, ledger: Ledger, deps: LoopDeps) -> RunReport:
        return propose_findings(p.settings, ledger, deps, lambda state: findings_for(budget, crossing, result,
                                                                                     state, access),
                                now=access.now, history=p.prometheus.history,        # the state a scan sees
                                step_seconds=p.prometheus.step_seconds,
                                git=p.git.target() if p.git else None)

    outcome = execute_run(policy, access.api_client, now=access.now, workdir=access.workdir / "freeze",
                          cluster=access.cluster, region=access.region, run=run)
    return describe(outcome.report, outcome.errors, namespaces, policy)


def findings_for(budget: BudgetSpec, crossing: Crossing, result: Evaluation, state: ClusterState,
                 access: PolicyAccess) -> list[Finding]:
    """One FreezeGrowth finding per scope namespace: ``spec.freezeGrowth.hard``, else its current requests."""
    from ..detectors.freeze import freeze_growth_finding, namespace_requests
    assert budget.schema is not None
    threshold = crossing.threshold
    hard = budget.schema.freeze_growth.hard if budget.schema.freeze_growth else None
    labels = namespace_labels(access.api_client)
    basis = "forecast" if threshold.forecasted else "spend"
    reason = (f"{basis} {crossing.value:.2f} USD reached {threshold.percent}% of the {budget.amount} USD budget "
              f"{budget.key} in period {result.period.key}")
    return [freeze_growth_finding(budget.namespace, budget.name, ns, hard, reason, namespace_requests(state, ns),
                                  result.period.key, spend=crossing.value, amount=budget.amount,
                                  threshold_percent=threshold.percent, forecasted=threshold.forecasted,
                                  labels=labels.get(ns, {}), cluster=state.cluster)
            for ns in sorted(budget.schema.scope.namespaces or ())]


def namespace_labels(api_client: Any) -> dict[str, dict[str, str]]:
    """Namespace name -> its labels (the protected-label guardrails read them); one LIST."""
    import json

    import kubernetes
    try:
        answer = kubernetes.client.CoreV1Api(api_client).list_namespace(_preload_content=False)
    except Exception as exc:
        raise DataSourceError(f"cannot list namespaces for their labels ({getattr(exc, 'status', None) or exc})",
                              source="kubernetes") from None
    return {i["metadata"]["name"]: dict(i["metadata"].get("labels") or {})
            for i in json.loads(answer.data).get("items", [])}


def describe(report: RunReport | None, errors: dict[str, str], namespaces: list[str], policy: PolicySpec) -> str:
    """One line: the pull request opened or updated, or why none was."""
    which = ", ".join(namespaces)
    opened = [p for p in (report.published if report else []) if p.ref is not None and p.error is None]
    if opened:
        return "; ".join(_published(p.ref, which) for p in opened)
    if errors:
        return "no ResourceQuota pull request opened: " + "; ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
    result = report.result if report else None
    if result is None:
        return f"no ResourceQuota pull request opened (nothing to freeze in {which})"
    denied = [r for d in result.decisions.values() if d.verdict.value != "allow" for r in d.reasons
              if r.verdict.value != "allow"]
    if denied:
        return "no ResourceQuota pull request opened: " + "; ".join(
            f"{r.verdict.value} by guardrail {r.rule}: {r.message}" for r in denied)
    if policy.settings.mode.value == "DryRun":
        return f"no ResourceQuota pull request opened: FinOpsPolicy {policy.namespace}/{policy.name} is in DryRun mode"
    why = "; ".join(dict.fromkeys([*result.unwritten.values(), *result.errors])) or "nothing to change"
    return f"no ResourceQuota pull request opened: {why}"


def _published(ref, which: str) -> str:
    if ref.state == "deferred":
        return f"ResourceQuota pull request for {which} deferred: {ref.reason}"
    if ref.number is not None:
        verb = "opened" if ref.created else "updated" if ref.state == "open" else ref.state
        return f"{verb} PR #{ref.number} (ResourceQuota for {which}) {ref.url}"
    return f"pushed branch {ref.branch} (ResourceQuota for {which})"


def release(budget: BudgetSpec, freeze: Freeze, result: Evaluation, access: PolicyAccess | None) -> str | None:
    """Close the freeze's open pull requests (``actuation.freeze_release``); what was closed, or None when
    nothing was open. Raises a FinOpsError when it could not (the freeze stays remembered: retried)."""
    if access is None:
        return None
    from ..actuation.freeze_release import release_freeze
    from .runs import execute_run
    policy = _git_policy(budget, access)
    limit = float(budget.amount) * freeze.percent / 100
    value = result.forecast if freeze.forecasted else result.spend
    closed: list[str] = []

    def run(p: PolicySpec, ledger: Ledger, deps: LoopDeps) -> RunReport:
        report = RunReport(started=access.now)
        if deps.provider is None:
            return report
        for done in release_freeze(ledger, deps.provider, budget_namespace=budget.namespace,
                                   budget_name=budget.name, pr_period_key=freeze.period,
                                   current_period_key=result.period.key, spend=value, threshold_amount=limit,
                                   now=access.now):
            if done.error is not None:
                report.fail(f"release/{done.branch}", ProviderError(done.error, source=p.source))
                continue
            report.changed.extend(ledger.get(i) for i in done.opportunities)
            closed.append(f"PR #{done.ref.number}" if done.ref and done.ref.number else done.branch)
        return report

    outcome = execute_run(policy, access.api_client, now=access.now, workdir=access.workdir / "freeze",
                          cluster=access.cluster, region=access.region, run=run)
    if outcome.errors:
        raise DataSourceError("; ".join(f"{k}: {v}" for k, v in sorted(outcome.errors.items())),
                              source=budget.source)
    if not closed:
        return None
    return (f"closed {', '.join(closed)}: {_value_name(freeze)} {value:.2f} USD is back under {limit:.2f} USD "
            f"({freeze.percent}% of the amount) in period {result.period.key}; the freeze of {freeze.period} is "
            "released")


def _value_name(freeze: Freeze) -> str:
    return "the forecast" if freeze.forecasted else "spend"


def _git_policy(budget: BudgetSpec, access: PolicyAccess) -> PolicySpec:
    from .budgetcosts import budget_policy
    policy = budget_policy(access.api_client, budget, operator_ns=access.operator_ns,
                           allow_local_git=access.allow_local_git)
    if policy.git is None:
        raise ConfigError(f"FinOpsPolicy {policy.namespace}/{policy.name} has no spec.git: set it to the GitOps "
                          "repository so the ResourceQuota pull request can be opened", source=budget.source,
                          field="spec.policyRef")
    return policy
