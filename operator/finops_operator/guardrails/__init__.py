"""Guardrails: pure rules that decide allow / deny / require approval for each finding.

    from finops_operator.guardrails import GuardrailContext, evaluate
    decisions = evaluate(findings, policy.guardrails, GuardrailContext(now=now), policy.mode)

Blast radius (workloads / namespaces per PR, open PRs at once) is enforced by
:mod:`finops_operator.actuation.plan`, which groups the allowed findings.
"""
from __future__ import annotations

from .engine import daily_order, evaluate
from .rules import APPROVAL_ANNOTATION, RULES, GuardrailContext, approves, cut_percent

__all__ = ["APPROVAL_ANNOTATION", "GuardrailContext", "RULES", "approves", "cut_percent", "daily_order", "evaluate"]
