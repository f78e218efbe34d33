"""FreezeGrowth: a Budget threshold's pull request that adds or tightens a namespace's ResourceQuota.

The finding type is declared here like every other (:mod:`.base`), but its findings
come from a budget evaluation, not from a scan: a policy run neither runs it nor
supersedes its opportunities (:attr:`FreezeGrowth.enabled` is False for scans).

Public API (for the budget handler)::

    current = namespace_requests(state, "payments")           # {"requests.cpu": "12", "requests.memory": "48Gi"}
    finding = freeze_growth_finding("finance", "payments-q4", "payments", hard=None, current=current,
                                    reason="spend 104% of 5000 USD", period_key="2026-11",
                                    spend=5210.0, amount=5000.0, threshold_percent=100)
    result = pipeline.propose(state, [finding], settings, repo_root=..., prover=...)   # guardrails, plan, edits, proof
    ...publish result.change_sets as any other (reconcile._publish), ledger.proposed(...)

    should_release(pr_period_key, current_period_key, spend, threshold_amount)   # pure: close it now?
    actuation.freeze_release.release_freeze(ledger, provider, ...)               # the side effect: close the PR

* Target: ``TargetKind.NAMESPACE`` named after the namespace; one finding (one quota,
  one opportunity) per namespace. ``Finding.group`` is the budget ``"<ns>/<name>"``: one
  change set per budget, ``freeze-growth-<budget>`` (split by the blast radius as usual).
* Changes: ``spec.hard.<resource>`` -> the limit wanted (``hard``, by default the
  namespace's current requests totals). The editor (:mod:`..actuation.quota`) never
  loosens an existing stricter value (tighten only: the minimum is kept).
* Labels: ``kubernetes.io/metadata.name=<namespace>`` (set by Kubernetes on every
  namespace) plus the namespace's own labels, so ``guardrails.protectedLabels`` protects
  namespaces as it protects workloads.
* Savings 0 (a freeze caps growth; it cuts nothing); confidence 1 (spend is measured);
  risk 0.3 (new pods or a rollout's surge are refused while the namespace is at its quota).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

from ..errors import ConfigError, QuantityError
from ..models import Change, ClusterState, EditKind, EditTarget, Finding, FindingType, Target, TargetKind
from ..pricing.allocation import Rates
from ..settings_base import SettingsModel
from ..units import format_cpu, format_memory, parse_quantity
from .base import Detector, DetectorResult, Grouping, register

if TYPE_CHECKING:
    from ..ledger import Opportunity

NAME = "freeze-growth"
QUOTA_NAME = "finops-freeze-growth"            # the ResourceQuota the pull request adds or tightens
QUOTA_FILE = f"{QUOTA_NAME}.yaml"              # the file added beside the Namespace manifest
FIELD_PREFIX = "spec.hard."
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
RISK = 0.3
TERMINAL_PHASES = ("Succeeded", "Failed")      # pods a ResourceQuota does not count


class FreezeGrowthSettings(SettingsModel):
    """FreezeGrowth pull requests come from Budget thresholds (action FreezeGrowth, spec.freezeGrowth of the Budget); this policy's guardrails and git settings apply to them. Nothing to set here."""  # noqa: E501


@register
class FreezeGrowth(Detector):
    """Not a scan: findings are built by :func:`freeze_growth_finding` from a budget evaluation."""

    name = NAME
    finding_type = FindingType.FREEZE_GROWTH
    target_kind = TargetKind.NAMESPACE
    edit_kinds = (EditKind.RESOURCE_QUOTA,)
    settings_key = "freeze_growth"
    settings_model = FreezeGrowthSettings
    grouping = Grouping(label="growth freeze", change_set="freeze-growth", verb="Freeze growth of",
                        noun="namespace")
    permissions = ("kubernetes:list:pods",)

    @property
    def enabled(self) -> bool:
        """Never part of a scan: a policy run neither runs it nor supersedes its opportunities."""
        return False

    @classmethod
    def realized_savings(cls, opp: "Opportunity", state: ClusterState, rates: Rates) -> float | None:
        """None: a freeze saves nothing measurable by itself (ResourceQuotas are not in the inventory)."""
        return None

    def run(self, state: ClusterState) -> DetectorResult:
        return DetectorResult()


def namespace_requests(state: ClusterState, namespace: str) -> dict[str, str]:
    """The namespace's requests totals as a ResourceQuota counts them (pods not Succeeded/Failed).

    Rounded up (to the millicore, to the Mi), so a quota at these values admits what runs now.
    ``{}`` when no pod of the namespace is known.
    """
    pods = [p for p in state.pods if p.namespace == namespace and p.phase not in TERMINAL_PHASES]
    if not pods:
        return {}
    cores = math.ceil(round(sum(p.cpu_request for p in pods) * 1000, 6)) / 1000
    memory = sum(p.memory_request for p in pods)
    return {"requests.cpu": format_cpu(cores), "requests.memory": format_memory(memory)}


def quantity(resource: str, text: str) -> float:
    """A quota value as a number in base units (cores, bytes, counts) to compare two limits."""
    return parse_quantity(text, what=f"{FIELD_PREFIX}{resource}")


def group_of(budget_namespace: str, budget_name: str) -> str:
    """The ``Finding.group`` of a budget's freeze findings (its change set key)."""
    return f"{budget_namespace}/{budget_name}"


def freeze_growth_finding(budget_namespace: str, budget_name: str, namespace: str,
                          hard: Mapping[str, str] | None, reason: str, current: Mapping[str, str],
                          period_key: str, *, spend: float | Decimal | None = None,
                          amount: float | Decimal | None = None, threshold_percent: int | None = None,
                          forecasted: bool = False, currency: str = "USD",
                          labels: Mapping[str, str] | None = None, cluster: str | None = None,
                          team: str | None = None) -> Finding:
    """The FreezeGrowth finding for one namespace of a budget (module docstring).

    ``hard``: the Budget's ``spec.freezeGrowth.hard``; None or empty freezes at ``current`` (from
    :func:`namespace_requests`). ``reason`` says in words why (threshold crossed); ``spend``,
    ``amount`` and ``threshold_percent`` are shown in the pull request. ``labels``: the
    Namespace object's labels (for protected-label guardrails). ConfigError when there is
    nothing to freeze or a value is not a quantity.
    """
    wanted = dict(hard or {}) or dict(current)
    source = f"Budget {budget_namespace}/{budget_name}"
    if not wanted:
        raise ConfigError(f"namespace {namespace} has no running pods with requests and spec.freezeGrowth.hard is "
                          "empty: there is nothing to freeze; set spec.freezeGrowth.hard", source=source,
                          field="spec.freezeGrowth.hard")
    for resource, value in wanted.items():
        try:
            quantity(resource, value)
        except QuantityError as exc:
            raise ConfigError(exc.message, source=source, field=f"spec.freezeGrowth.hard.{resource}") from None
    changes = [Change(f"{FIELD_PREFIX}{resource}", None, str(wanted[resource])) for resource in sorted(wanted)]
    budget = group_of(budget_namespace, budget_name)
    return Finding(
        detector=NAME, type=FindingType.FREEZE_GROWTH,
        target=Target(TargetKind.NAMESPACE, namespace, namespace=namespace),
        title=f"Freeze growth of namespace {namespace}: {reason}",
        changes=changes, monthly_savings=0.0, confidence=1.0, risk=RISK,
        edit=EditTarget(EditKind.RESOURCE_QUOTA),
        evidence=_evidence(budget, reason, period_key, current, wanted, spend=spend, amount=amount,
                           threshold_percent=threshold_percent, forecasted=forecasted, currency=currency),
        labels={NAMESPACE_NAME_LABEL: namespace, **dict(labels or {})},
        team=team, cluster=cluster, group=budget,
        notes=[f"ResourceQuota {QUOTA_NAME} caps {', '.join(sorted(wanted))}; pods that do not set those requests "
               "are refused in the namespace unless a LimitRange gives defaults"])


def _evidence(budget: str, reason: str, period_key: str, current: Mapping[str, str], wanted: Mapping[str, str], *,
              spend: float | Decimal | None, amount: float | Decimal | None, threshold_percent: int | None,
              forecasted: bool, currency: str) -> dict[str, object]:
    basis = "forecast to the end of the period" if forecasted else "spend so far"
    evidence: dict[str, object] = {
        "budget": budget, "reason": reason, "period": period_key,
        "threshold": f"{threshold_percent}% of the amount ({basis})" if threshold_percent is not None else basis,
        "current_requests": dict(current) or "no pods with requests",
        "quota": f"ResourceQuota {QUOTA_NAME}: " + ", ".join(f"{k}={wanted[k]}" for k in sorted(wanted)),
        "closes": (f"automatically, by the operator, when the budget's spend is back under the threshold in a "
                   f"period after {period_key}; merge it to keep the quota"),
        "rollouts": "while the namespace is at its quota, new pods and a rollout's surge pods are refused",
    }
    if spend is not None:
        evidence["spend"] = f"{Decimal(str(spend)):.2f} {currency}"
    if amount is not None:
        evidence["amount"] = f"{Decimal(str(amount)):.2f} {currency}"
    return evidence


def should_release(period_key_of_pr: str, current_period_key: str, spend: float | Decimal,
                   threshold_amount: float | Decimal) -> bool:
    """Close a freeze PR now? Only in a later period than the one that fired it, with spend under the threshold.

    Period keys sort in time (``2026-11``, ``2026-Q4``, ``2026``: one budget uses one kind).
    """
    if current_period_key <= period_key_of_pr:
        return False
    return Decimal(str(spend)) < Decimal(str(threshold_amount))
