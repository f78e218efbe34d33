"""The FinOpsReport's one adapter to the report builder (``finops_operator.reports``): gather its data from
the cluster, build and render it.

    data = gather(api_client, spec)                       # ReportData from the objects in spec.namespaces
    rendered = render(spec, data, end=slot)              # Rendered(headline, html, json, markdown)

Read from the cluster: the SavingsOpportunity ledger (:func:`.opportunities.read_ledger`, filtered by
``spec.scope.policies``), each Budget's last evaluation (its status), and each FinOpsPolicy's team health
history (:class:`.healthstore.HealthStore`, the latest score per subject). From the operator's memory, the
latest run of each policy in scope (``runs``, what the policy timer gathered): its cost allocation (cost
by team and namespace) and the insights drawn from it and the ledger. Forecasts and anomalies of the spend
come in when the budget store exposes them as typed data.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from collections.abc import Mapping
from typing import Any

from ..errors import DataSourceError
from ..health import HealthScore
from ..health.bands import grade
from ..permissions import Rule
from . import opportunities as mapping
from .healthstore import HealthOwner, HealthStore
from ..reports import BudgetLine, ReportData, build_report, render_html, render_json, render_markdown
from .report import ReportSpec

log = logging.getLogger(__name__)
GROUP, VERSION = "finops.dev", "v1alpha1"
PERMISSIONS = (   # RBAC for the calls below (see finops_operator.permissions)
    Rule("cluster", "finops.dev", "savingsopportunities", ("list",),
         "api/reportgen.py gather: the ledger a FinOpsReport reports on"),
    Rule("cluster", "finops.dev", "budgets", ("list",), "api/reportgen.py gather: the Budgets' last evaluations"),
    Rule("cluster", "finops.dev", "finopspolicies", ("list",),
         "api/reportgen.py gather: the policies whose health histories (ConfigMaps) are read"),
)


@dataclass(frozen=True, slots=True)
class Rendered:
    headline: dict[str, Any]
    start: datetime
    end: datetime
    html: str
    json: str
    markdown: str


def _list(api_client: Any, namespace: str, plural: str, source: str) -> list[dict[str, Any]]:
    import kubernetes
    api = kubernetes.client.CustomObjectsApi(api_client)
    try:
        return api.list_namespaced_custom_object(GROUP, VERSION, namespace, plural).get("items", [])
    except Exception as exc:
        raise DataSourceError(f"cannot list {plural} in {namespace} ({getattr(exc, 'status', None) or exc})",
                              source=source) from None


def budget_lines(bodies: list[dict[str, Any]]) -> list[BudgetLine]:
    """Budgets from their status (amount from spec); one not evaluated yet or unreadable is left out."""
    out = []
    for body in bodies:
        meta, spec, status = body.get("metadata") or {}, body.get("spec") or {}, body.get("status") or {}
        try:
            forecast = status.get("forecastedSpend")
            out.append(BudgetLine(f"{meta.get('namespace')}/{meta.get('name')}", float(spec["amount"]),
                                  float(status["currentSpend"]), str(status["state"]),
                                  float(forecast) if forecast is not None else None, None,
                                  str(status.get("period") or "")))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def health_scores(store: HealthStore, owners: list[HealthOwner]) -> list[HealthScore]:
    """The latest stored score of each subject (team:x, namespace:y) of the policies' health histories."""
    latest: dict[str, tuple[Any, float]] = {}
    for owner in owners:
        for key, days in store.load(owner).history.scores.items():
            if days:
                day = max(days)
                if key not in latest or latest[key][0] < day:
                    latest[key] = (day, days[day])
    out = []
    for key, (_, score) in sorted(latest.items()):
        by, _, subject = key.partition(":")
        letter, band = grade(score)
        out.append(HealthScore(subject, by, score, letter, band, (), ""))
    return out


def gather(api_client: Any, spec: ReportSpec, runs: Mapping[tuple[str, str], Any] | None = None) -> ReportData:
    """The report's data from the objects in its namespaces (one unreadable object is skipped, not fatal), and
    from ``runs`` ((namespace, policy) -> the latest run's health inputs, ``health.HealthData``) when given."""
    wanted = set(spec.schema.scope.policies)
    opportunities, budgets, owners, notes = [], [], [], []
    for namespace in spec.namespaces:
        objects = [o for o in _list(api_client, namespace, mapping.PLURAL, spec.source)
                   if not wanted or ((o.get("spec") or {}).get("policyRef") or {}).get("name") in wanted]
        read = mapping.read_ledger(objects)
        opportunities += read.ledger.opportunities
        notes += [f"SavingsOpportunity {namespace}/{name} skipped: {err}" for name, err in read.unreadable.items()]
        budgets += budget_lines(_list(api_client, namespace, "budgets", spec.source))
        owners += [HealthOwner(namespace, p["metadata"]["name"], p["metadata"].get("uid", ""))
                   for p in _list(api_client, namespace, "finopspolicies", spec.source)
                   if not wanted or p["metadata"]["name"] in wanted]
    data = ReportData(source=f"{spec.source}: namespaces {', '.join(spec.namespaces)}",
                      opportunities=opportunities, budgets=budgets, notes=notes)
    try:
        data.health = health_scores(HealthStore(api_client), owners)
    except DataSourceError as exc:            # health is one section: the report goes out without it
        data.notes.append(f"health scores unavailable: {exc}")
    add_run_costs(data, spec, [(o.namespace, o.name) for o in owners], runs or {})
    return data


def add_run_costs(data: ReportData, spec: ReportSpec, policies: list[tuple[str, str]],
                  runs: Mapping[tuple[str, str], Any]) -> None:
    """Cost by team and namespace, and insights, from the latest allocation of the first policy in scope that
    has one (several: said in the notes). The operator keeps it in memory: after a restart the sections come
    back with the policy's next run."""
    from ..costreport import cost_report
    from ..insights import InsightData, generate
    from ..models.insights import Persona
    found = [(key, runs[key]) for key in sorted(policies) if key in runs and runs[key].allocation is not None]
    if not found:
        return
    (namespace, policy), inputs = found[0]
    if len(found) > 1:
        data.notes.append(f"costs are those of policy {namespace}/{policy}'s last run; "
                          f"{len(found) - 1} other policies in scope also allocate")
    allocation = inputs.allocation
    data.costs_by_team = cost_report(allocation, by="team")
    data.costs_by_namespace = cost_report(allocation, by="namespace")
    data.insights = generate(InsightData(allocation=allocation, opportunities=data.opportunities),
                             personas=[Persona(spec.schema.persona)])


def render(spec: ReportSpec, data: ReportData, *, end: datetime) -> Rendered:
    report = build_report(data, period=spec.schema.period.lower(), end=end, persona=spec.schema.persona)
    return Rendered(dict(report.headline), report.start, report.end, render_html(report),
                    json.dumps(render_json(report), sort_keys=True, default=str), render_markdown(report))
