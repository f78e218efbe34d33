"""The Kubernetes RBAC the operator's code needs, declared next to the code that makes each call.

Each I/O module has a ``PERMISSIONS`` table of :class:`Rule`; :func:`required`
collects them. The chart's ClusterRole/Role must grant exactly these (no more:
least privilege; no less: the operator works), which
``tests/integration/test_rbac_rules.py`` checks against ``helm template``.

Scopes: ``cluster`` (ClusterRole: every namespace or cluster-scoped kinds),
``operator-namespace`` (Role in the release namespace), ``named-secret``
(``get`` on Secrets by name only, from the chart's values), ``named-configmap`` (``get`` on
ConfigMaps by name only: custom price tables, ``rbac.configMapRefs``).
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

DECLARING_MODULES = ("finops_operator.sources.kubernetes", "finops_operator.api.store", "finops_operator.api.wiring",
                     "finops_operator.api.events", "finops_operator.api.coordination", "finops_operator.api.spendstore",
                     "finops_operator.api.notifystore", "finops_operator.api.notifycluster", "finops_operator.api.healthstore",
                     "finops_operator.api.reportgen", "finops_operator.api.reportstore",
                     "finops_operator.api.reportserve", "finops_operator.handlers")


@dataclass(frozen=True)
class Rule:
    scope: str                 # cluster | operator-namespace | named-secret | named-configmap
    group: str                 # "" for the core API group
    resource: str              # plural, with /subresource
    verbs: tuple[str, ...]
    used_by: str               # the code that makes the call
    when: str = ""             # a chart value that turns the need on (e.g. peering.enabled)


def required(*, when: frozenset[str] = frozenset()) -> list[Rule]:
    """Every declared rule whose condition is in ``when`` (or unconditional)."""
    out: list[Rule] = []
    for name in DECLARING_MODULES:
        for rule in getattr(import_module(name), "PERMISSIONS"):
            if not rule.when or rule.when in when:
                out.append(rule)
    return out


def grants(rules: list[Rule]) -> set[tuple[str, str, str, str]]:
    """(scope, group, resource, verb) for each verb of each rule."""
    return {(r.scope, r.group, r.resource, verb) for r in rules for verb in r.verbs}
