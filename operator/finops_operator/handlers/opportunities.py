"""SavingsOpportunity: an index of the approved ones (annotation ``finops.dev/approved: "true"``).

The policy timer reads ``approved_opportunities[(namespace, policy)]`` instead of
listing objects; approved ids go to the guardrails (``LoopDeps.approved``), so
the next run proposes what needed approval.
"""
from __future__ import annotations

from typing import Any

import kopf

from ..api.opportunities import ID_LABEL
from ..guardrails import approves

RESOURCE = ("finops.dev", "v1alpha1", "savingsopportunities")


def _approved(annotations: kopf.Annotations, **_: Any) -> bool:
    return approves(annotations)


@kopf.index(*RESOURCE, when=_approved)
def approved_opportunities(namespace: str, labels: kopf.Labels, spec: kopf.Spec,
                           **_: Any) -> dict[tuple[str, str], str] | None:
    policy = (spec.get("policyRef") or {}).get("name")
    opportunity = labels.get(ID_LABEL)
    return {(namespace, policy): opportunity} if policy and opportunity else None
