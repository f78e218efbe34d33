"""The operator's own Prometheus metrics (served on /metrics by ``finops run``).

Besides the run metrics: the process (``process_cpu_seconds_total``,
``process_resident_memory_bytes``, open fds, start time: prometheus_client's
process collector), Python's garbage collector and version, and
``finops_policy_last_success_timestamp_seconds`` per policy, for an alert such as
``time() - finops_policy_last_success_timestamp_seconds > 2 * 86400``.

Ledger, pull requests, schedule and build (issue 12), for the chart's Grafana dashboard and
PrometheusRule: SavingsOpportunities by policy, state and type (count and estimated monthly
savings), realized monthly savings by type, open pull requests and their limit, the schedule's
interval (for a "stale" alert), data source errors and ``finops_operator_build_info``.

Allocation (issue 9), set by :func:`export_allocation` after a run allocates cost: dollars
per hour by namespace, team and workload (bounded: the top N, the rest as "other"), by
kind (allocated, idle, shared, unallocated), node cost by price source, the bill and the
reconciliation residual, all labelled with the policy.
"""
from __future__ import annotations

import platform
import threading
from collections import defaultdict
from typing import TYPE_CHECKING

from prometheus_client import (CollectorRegistry, Counter, Gauge, GCCollector, Histogram, PlatformCollector,
                               ProcessCollector, start_http_server)

from . import __version__
from .costreport import cost_report

if TYPE_CHECKING:
    from .ledger import Ledger
    from .models.costs import Allocation, Bill

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

RUNS = Counter("finops_policy_runs_total", "Policy runs, by policy and result (success|error)",
               ["policy", "result"], registry=REGISTRY)
LAST_SUCCESS = Gauge("finops_policy_last_success_timestamp_seconds",
                     "When the policy's last successful run finished (Unix time)", ["policy"], registry=REGISTRY)
RUN_SECONDS = Histogram("finops_policy_run_duration_seconds", "Wall time of one policy run", ["policy"],
                        buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600), registry=REGISTRY)
FINDINGS = Gauge("finops_findings", "Findings of the last run, by policy, type and verdict",
                 ["policy", "type", "verdict"], registry=REGISTRY)
SAVINGS = Gauge("finops_estimated_monthly_savings_dollars",
                "Estimated monthly savings of the last run's allowed findings", ["policy"], registry=REGISTRY)
ERRORS = Counter("finops_errors_total", "Errors by policy and stage (inventory|usage|scan|publish|ledger)",
                 ["policy", "stage"], registry=REGISTRY)
PULL_REQUESTS = Counter("finops_pull_requests_total", "Pull requests opened or updated", ["policy", "action"],
                        registry=REGISTRY)
QUERIES = Counter("finops_datasource_requests_total", "Requests made to data sources", ["policy", "source"],
                  registry=REGISTRY)


# --------------------------------------------------------------------------- ledger, PRs, schedule (issue 12)

BUILD_INFO = Gauge("finops_operator_build_info", "Always 1; the operator's version and Python version as labels",
                   ["version", "python"], registry=REGISTRY)
BUILD_INFO.labels(version=__version__, python=platform.python_version()).set(1)
DATASOURCE_ERRORS = Counter("finops_datasource_errors_total",
                            "Runs whose data sources failed, by policy and stage (inventory|setup)",
                            ["policy", "stage"], registry=REGISTRY)
OPPORTUNITIES = Gauge("finops_opportunities", "SavingsOpportunities in the ledger, by policy, state and type",
                      ["policy", "state", "type"], registry=REGISTRY)
OPPORTUNITY_SAVINGS = Gauge("finops_opportunities_estimated_monthly_savings_dollars",
                            "Estimated monthly savings of the ledger's opportunities, by policy, state and type",
                            ["policy", "state", "type"], registry=REGISTRY)
REALIZED = Gauge("finops_realized_monthly_savings_dollars",
                 "Realized (verified) monthly savings in the ledger, past cycles included, by policy and type",
                 ["policy", "type"], registry=REGISTRY)
OPEN_PRS = Gauge("finops_policy_open_pull_requests", "Pull requests open for the policy (its ledger's Proposed)",
                 ["policy"], registry=REGISTRY)
OPEN_PR_LIMIT = Gauge("finops_policy_open_pull_requests_limit",
                      "The policy's guardrails.maxOpenPrs (0: it opens none)", ["policy"], registry=REGISTRY)
SCHEDULE_INTERVAL = Gauge("finops_policy_schedule_interval_seconds",
                          "Time between the policy's next two scheduled runs", ["policy"], registry=REGISTRY)
_LEDGER_GAUGES = (OPPORTUNITIES, OPPORTUNITY_SAVINGS, REALIZED)
_ledger_series: dict[str, set[tuple[Gauge, tuple[str, ...]]]] = {}


def export_ledger(policy_key: str, ledger: Ledger) -> None:
    """Set the ledger gauges of one policy after a run; a state or type it no longer has goes to 0.

    Zero rather than removed: a count that drops to nothing should read 0 on the dashboard, not a gap.
    """
    series: dict[tuple[Gauge, tuple[str, ...]], float] = defaultdict(float)
    for opp in ledger.opportunities:
        labels = (policy_key, opp.state.value, opp.type)
        series[(OPPORTUNITIES, labels)] += 1
        series[(OPPORTUNITY_SAVINGS, labels)] += opp.estimated_monthly_savings
    for type_, summary in ledger.totals(by="type").get("groups", {}).items():
        series[(REALIZED, (policy_key, type_))] = summary["realized"]
    with _allocation_lock:
        for key in _ledger_series.get(policy_key, set()) - set(series):
            series[key] = 0.0
        for (gauge, labels), value in series.items():
            gauge.labels(*labels).set(value)
        _ledger_series[policy_key] = set(series)
    OPEN_PRS.labels(policy=policy_key).set(ledger.open_prs())


def forget_ledger(policy_key: str) -> None:
    """Remove a deleted policy's ledger, pull request and schedule series."""
    with _allocation_lock:
        for gauge, labels in _ledger_series.pop(policy_key, set()):
            gauge.remove(*labels)
    for gauge in (OPEN_PRS, OPEN_PR_LIMIT, SCHEDULE_INTERVAL):
        try:
            gauge.remove(policy_key)
        except KeyError:
            pass


# --------------------------------------------------------------------------- budgets (issue 10)

BUDGET_SPEND = Gauge("finops_budget_spend_dollars", "Spend so far in the budget's current period",
                     ["budget"], registry=REGISTRY)
BUDGET_AMOUNT = Gauge("finops_budget_amount_dollars", "The budget's amount per period", ["budget"], registry=REGISTRY)
BUDGET_FORECAST = Gauge("finops_budget_forecast_dollars",
                        "Forecast spend by the end of the period (bound: expected, lower, upper of the 95% interval)",
                        ["budget", "bound"], registry=REGISTRY)
BUDGET_STATE = Gauge("finops_budget_state", "1 for the budget's state (OK, Warning, ForecastExceeded, Exceeded), "
                     "0 for the others", ["budget", "state"], registry=REGISTRY)
BUDGET_CROSSINGS = Counter("finops_budget_threshold_crossings_total",
                           "Thresholds crossed (each fires once per period), by budget, threshold and action",
                           ["budget", "threshold", "action"], registry=REGISTRY)
BUDGET_STATES = ("OK", "Warning", "ForecastExceeded", "Exceeded")


def export_budget(key: str, *, amount: float, spend: float, forecast: float, lower: float, upper: float,
                  state: str) -> None:
    """Set one budget's gauges after an evaluation."""
    BUDGET_AMOUNT.labels(budget=key).set(amount)
    BUDGET_SPEND.labels(budget=key).set(spend)
    for bound, value in (("expected", forecast), ("lower", lower), ("upper", upper)):
        BUDGET_FORECAST.labels(budget=key, bound=bound).set(value)
    for name in BUDGET_STATES:
        BUDGET_STATE.labels(budget=key, state=name).set(1 if name == state else 0)


def forget_budget(key: str) -> None:
    """Remove a deleted budget's gauges."""
    for gauge, labels in ((BUDGET_AMOUNT, [()]), (BUDGET_SPEND, [()]),
                          (BUDGET_FORECAST, [("expected",), ("lower",), ("upper",)]),
                          (BUDGET_STATE, [(s,) for s in BUDGET_STATES])):
        for extra in labels:
            try:
                gauge.remove(key, *extra)
            except KeyError:
                pass


def serve(port: int, addr: str = "0.0.0.0") -> None:
    """Start the /metrics HTTP server in a background thread."""
    start_http_server(port, addr=addr, registry=REGISTRY)


# --------------------------------------------------------------------------- allocation (issue 9)
# Dollars per hour over the allocated window, so Grafana can chart spend over time. Label
# cardinality is bounded: the top namespaces / teams / workloads by cost, the rest as "other".

TOP_NAMESPACES = 50
TOP_TEAMS = 50
TOP_WORKLOADS = 20
OTHER = "other"

ALLOC_NAMESPACE = Gauge("finops_allocation_namespace_cost_dollars_per_hour",
                        "Allocated cost per namespace (top namespaces, the rest as namespace=\"other\")",
                        ["policy", "namespace"], registry=REGISTRY)
ALLOC_TEAM = Gauge("finops_allocation_team_cost_dollars_per_hour",
                   "Allocated cost per team (top teams, the rest as team=\"other\")", ["policy", "team"],
                   registry=REGISTRY)
ALLOC_WORKLOAD = Gauge("finops_allocation_workload_cost_dollars_per_hour",
                       "Allocated cost per workload (top workloads, the rest as workload=\"other\", namespace=\"\")",
                       ["policy", "namespace", "workload"], registry=REGISTRY)
ALLOC_KIND = Gauge("finops_allocation_cost_dollars_per_hour",
                   "Cost by kind: allocated (containers and claims), idle, shared (cluster-wide costs not shared "
                   "out), unallocated (billed, tied to nothing in the cluster)", ["policy", "kind"], registry=REGISTRY)
ALLOC_NODE_SOURCE = Gauge("finops_allocation_node_cost_dollars_per_hour",
                          "Node cost by where its price came from (list|live|spot|effective|user)",
                          ["policy", "price_source"], registry=REGISTRY)
ALLOC_BILL = Gauge("finops_allocation_bill_dollars_per_hour", "The bill's total for the allocated window",
                   ["policy", "bill_source"], registry=REGISTRY)
ALLOC_RESIDUAL = Gauge("finops_allocation_residual_dollars_per_hour",
                       "Reconciliation residual: bill total - allocated total (absent without a bill)", ["policy"],
                       registry=REGISTRY)
ALLOC_RESIDUAL_RATIO = Gauge("finops_allocation_residual_ratio", "The residual as a fraction of the bill",
                             ["policy"], registry=REGISTRY)
ALLOC_WINDOW_END = Gauge("finops_allocation_window_end_timestamp_seconds",
                         "End of the window the allocation gauges describe (Unix time)", ["policy"], registry=REGISTRY)

_ALLOCATION_GAUGES = (ALLOC_NAMESPACE, ALLOC_TEAM, ALLOC_WORKLOAD, ALLOC_KIND, ALLOC_NODE_SOURCE, ALLOC_BILL,
                      ALLOC_RESIDUAL, ALLOC_RESIDUAL_RATIO, ALLOC_WINDOW_END)
_allocation_series: dict[str, dict[Gauge, set[tuple[str, ...]]]] = {}
_allocation_lock = threading.Lock()


def export_allocation(policy_key: str, allocation: Allocation, *, bill: Bill | None = None) -> None:
    """Set the allocation gauges of one policy's latest run, replacing its previous run's series.

    Series of the previous run that this run does not have (a namespace gone, a workload out
    of the top) are removed, not left at their old value.
    """
    series = _allocation_values(policy_key, allocation, bill)
    with _allocation_lock:
        previous = _allocation_series.get(policy_key, {})
        for gauge in _ALLOCATION_GAUGES:
            for labels in previous.get(gauge, set()) - set(series.get(gauge, {})):
                gauge.remove(*labels)
            for labels, value in series.get(gauge, {}).items():
                gauge.labels(*labels).set(value)
        _allocation_series[policy_key] = {gauge: set(values) for gauge, values in series.items()}


def forget_allocation(policy_key: str) -> None:
    """Remove every allocation series of a policy (it was deleted)."""
    with _allocation_lock:
        for gauge, labels in _allocation_series.pop(policy_key, {}).items():
            for label_values in labels:
                gauge.remove(*label_values)


def _allocation_values(policy: str, allocation: Allocation,
                       bill: Bill | None) -> dict[Gauge, dict[tuple[str, ...], float]]:
    out: dict[Gauge, dict[tuple[str, ...], float]] = {gauge: {} for gauge in _ALLOCATION_GAUGES}
    for gauge, by, top in ((ALLOC_NAMESPACE, "namespace", TOP_NAMESPACES), (ALLOC_TEAM, "team", TOP_TEAMS),
                           (ALLOC_WORKLOAD, "workload", TOP_WORKLOADS)):
        grouped = cost_report(allocation, by=by, top=top, bill=bill)
        for row in grouped.rows:
            if row.kind in ("allocated", OTHER):
                key = OTHER if row.kind == OTHER else row.key
                if gauge is ALLOC_WORKLOAD:
                    namespace, _, workload = key.partition("/") if row.kind != OTHER else ("", "", OTHER)
                    labels: tuple[str, ...] = (policy, namespace, workload)
                else:
                    labels = (policy, key)
                out[gauge][labels] = out[gauge].get(labels, 0.0) + grouped.per_hour(row.cost)
    report = cost_report(allocation, bill=bill)          # totals, sources and the bill: the same for any grouping
    for kind, cost in report.totals.items():
        if kind != "total":
            out[ALLOC_KIND][(policy, kind)] = report.per_hour(cost)
    for share in report.price_sources:
        out[ALLOC_NODE_SOURCE][(policy, share.source.value)] = report.per_hour(share.cost)
    if report.bill_total is not None and report.residual is not None:
        out[ALLOC_BILL][(policy, report.bill_source or "unknown")] = report.per_hour(report.bill_total)
        out[ALLOC_RESIDUAL][(policy,)] = report.per_hour(report.residual)
        if report.residual_percent is not None:
            out[ALLOC_RESIDUAL_RATIO][(policy,)] = report.residual_percent / 100.0
    out[ALLOC_WINDOW_END][(policy,)] = allocation.end.timestamp()
    return out


# --------------------------------------------------------------------------- notifications (issue 11)

NOTIFICATIONS = Counter("finops_notifications_total",
                        "Insights and alerts by delivery outcome (Sent, Failed, Batched, Suppressed, RateLimited, "
                        "InDoubt, Dropped), channel (namespace/name), subscription and persona",
                        ["channel", "subscription", "persona", "outcome"], registry=REGISTRY)


def count_delivery(channel: str, attempt, outcome) -> None:
    """Count one delivery attempt's items (``attempt``: a delivery.model.Attempt, ``outcome`` an Outcome)."""
    for item in attempt.items:
        NOTIFICATIONS.labels(channel=channel, subscription=attempt.subscription, persona=item.persona or "none",
                             outcome=outcome.value).inc()


# --------------------------------------------------------------------------- team health (issue 11)

HEALTH_SCORE = Gauge("finops_health_score", "FinOps health score 0-100 (absent: no category had data)",
                     ["policy", "by", "subject"], registry=REGISTRY)
HEALTH_CATEGORY = Gauge("finops_health_category_score", "Health category score 0-100 (absent: no data, left out)",
                        ["policy", "by", "subject", "category"], registry=REGISTRY)
HEALTH_RUNS = Counter("finops_health_job_runs_total", "Daily team jobs, by team and outcome (ok|error)",
                      ["team", "outcome"], registry=REGISTRY)
HEALTH_RUN_SECONDS = Histogram("finops_health_job_duration_seconds", "Wall time of one team's daily job", ["team"],
                               buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300), registry=REGISTRY)
HEALTH_INSIGHTS = Counter("finops_health_job_insights_total", "Insights made by the daily team jobs", ["team"],
                          registry=REGISTRY)
HEALTH_ALERTS = Counter("finops_health_job_alerts_total", "Insights the daily team jobs handed to delivery (queued to "
                        "channels: critical sent at once, the rest batched into a digest)", ["team"],
                        registry=REGISTRY)
_health_series: dict[str, set[tuple[Gauge, tuple[str, ...]]]] = {}


def export_health(policy_key: str, scores) -> None:
    """Set the health gauges of one policy's scores (HealthScore list), removing its series no longer present."""
    series: dict[tuple[Gauge, tuple[str, ...]], float] = {}
    for s in scores:
        if s.score is not None:
            series[(HEALTH_SCORE, (policy_key, s.by, s.subject))] = s.score
        for c in s.categories:
            if c.score is not None:
                series[(HEALTH_CATEGORY, (policy_key, s.by, s.subject, c.category))] = c.score
    with _allocation_lock:
        for gauge, labels in _health_series.get(policy_key, set()) - set(series):
            gauge.remove(*labels)
        for (gauge, labels), value in series.items():
            gauge.labels(*labels).set(value)
        _health_series[policy_key] = set(series)


def record_health_run(team: str, *, outcome: str, seconds: float, insights: int, alerts: int) -> None:
    HEALTH_RUNS.labels(team=team, outcome=outcome).inc()
    HEALTH_RUN_SECONDS.labels(team=team).observe(seconds)
    HEALTH_INSIGHTS.labels(team=team).inc(insights)
    HEALTH_ALERTS.labels(team=team).inc(alerts)
