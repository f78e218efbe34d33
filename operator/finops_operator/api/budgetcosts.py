"""Where a budget's daily costs come from (the I/O edge of :mod:`..budgets`).

    policy = budget_policy(api_client, budget, operator_ns=...)          # the FinOpsPolicy it is evaluated with
    read = cost_reader(policy, budget, api_client, cluster=..., workdir=..., region=..., now=now)
    read([date(2026, 3, 1), date(2026, 3, 2)])                          # {day: USD or NaN}
    read.notes                                                           # what the last read fell back on

* The cluster part (``scope`` namespaces / labels / teams, or no scope at all): hourly usage from the
  policy's Prometheus (:func:`..sources.promalloc.read_usage_hours`, one batched read per run of at most
  :data:`BATCH_DAYS` consecutive days), allocated day by day with the policy's prices and allocation
  settings (:func:`..costrun.allocate_window`). With ``dataSources.aws`` each run's bill is read once by the
  policy's own bill reader (:func:`.costsource.bill_reader`: the CUR through DuckDB or Athena, or Cost
  Explorer) and every day is reconciled with its part of it (``allocate_window`` clips the bill to the day).
  Without it, or when the bill cannot be read, the price book prices the days, and ``notes`` says why.
* The AWS part (``scope.aws``): Cost Explorer's daily AmortizedCost filtered by the scope's tags,
  services and accounts (its days are UTC days, Cost Explorer has no other).

A Budget lives in a namespace and is evaluated with the FinOpsPolicy of that namespace (``spec.policyRef``
when there are several); that policy's data sources, prices and allocation settings apply.
"""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..budgets import ClusterScope, daily_costs, day_bounds
from ..errors import ConfigError, DataSourceError, FinOpsError
from ..models.costs import Bill, UsageHours
from .budget import BudgetAwsScope, BudgetSpec
from .costsource import BillReader
from .policy import PolicySpec, read_policy

if TYPE_CHECKING:
    from ..sources.aws import AwsSource

log = logging.getLogger(__name__)
BATCH_DAYS = 31                 # days per Prometheus read (6 requests a day: 187 requests at most)
DayReader = Callable[[list[date]], dict[date, float]]


def budget_policy(api_client: Any, budget: BudgetSpec, *, operator_ns: str, allow_local_git: bool = False
                  ) -> PolicySpec:
    """The FinOpsPolicy the budget is evaluated with; ConfigError (field spec.policyRef) when it is ambiguous."""
    import kubernetes
    try:
        answer = kubernetes.client.CustomObjectsApi(api_client).list_namespaced_custom_object(
            "finops.dev", "v1alpha1", budget.namespace, "finopspolicies", _preload_content=False)
    except Exception as exc:
        raise DataSourceError(f"cannot list the FinOpsPolicies of namespace {budget.namespace} "
                              f"({getattr(exc, 'status', None) or type(exc).__name__})", source=budget.source) from None
    items = {i["metadata"]["name"]: i for i in json.loads(answer.data).get("items", [])}
    ref = budget.schema.policy_ref.name if budget.schema and budget.schema.policy_ref else None
    if ref is not None and ref not in items:
        raise ConfigError(f"FinOpsPolicy {budget.namespace}/{ref} does not exist (policies here: "
                          f"{', '.join(sorted(items)) or 'none'})", source=budget.source, field="spec.policyRef")
    if ref is None and len(items) != 1:
        what = "no FinOpsPolicy" if not items else f"{len(items)} FinOpsPolicies ({', '.join(sorted(items))})"
        raise ConfigError(f"namespace {budget.namespace} has {what}; a Budget is evaluated with the data sources of "
                          "its namespace's policy: create one, or name it in spec.policyRef",
                          source=budget.source, field="spec.policyRef")
    body = items[ref] if ref else next(iter(items.values()))
    return read_policy(body, operator_ns=operator_ns, allow_local_git=allow_local_git)


def ce_filter(aws: BudgetAwsScope) -> dict[str, Any] | None:
    """A Cost Explorer filter expression: every given tag, the services, the accounts (all must match)."""
    parts: list[dict[str, Any]] = []
    for key, values in sorted((aws.tags or {}).items()):
        parts.append({"Tags": {"Key": key, "Values": list(values), "MatchOptions": ["EQUALS"]}})
    if aws.services:
        parts.append({"Dimensions": {"Key": "SERVICE", "Values": list(aws.services), "MatchOptions": ["EQUALS"]}})
    if aws.accounts:
        parts.append({"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": list(aws.accounts),
                                     "MatchOptions": ["EQUALS"]}})
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"And": parts}


def runs(days: list[date], longest: int = BATCH_DAYS) -> list[list[date]]:
    """Consecutive days in runs of at most ``longest``."""
    out: list[list[date]] = []
    for day in sorted(set(days)):
        if out and day - out[-1][-1] == timedelta(days=1) and len(out[-1]) < longest:
            out[-1].append(day)
        else:
            out.append([day])
    return out


class BudgetCosts:
    """``days -> {day: USD}`` summed over the scope's parts; ``notes``: what the last read fell back on."""

    def __init__(self) -> None:
        self.parts: list[DayReader] = []
        self.notes: list[str] = []

    def __call__(self, days: list[date]) -> dict[date, float]:
        self.notes.clear()                  # the parts hold this list
        total: dict[date, float] = defaultdict(float)
        for part in self.parts:
            for day, cost in part(days).items():
                total[day] += cost          # NaN (no data) stays NaN
        return dict(total)


def cost_reader(policy: PolicySpec, budget: BudgetSpec, api_client: Any, *, cluster: str, workdir: Path,
                region: str, now: datetime, connect: Callable[..., AwsSource] | None = None) -> BudgetCosts:
    """The budget's day reader (see the module's docstring). ``cluster``: this cluster's name (its tag in the
    bill); ``connect(region, **kw)`` makes the AwsSource (tests point it at moto), else a real one."""
    assert budget.schema is not None
    scope = budget.schema.scope
    cluster_scope = scope.cluster()
    if connect is None:
        from ..sources.aws import AwsSource as connect
    reader = BudgetCosts()
    if cluster_scope is not None:
        reader.parts.append(_cluster_reader(policy, budget, cluster_scope, api_client, reader.notes, cluster=cluster,
                                            workdir=workdir, region=region, now=now, connect=connect))
    if scope.aws is not None:
        reader.parts.append(_aws_reader(connect(policy.aws.region if policy.aws else region), scope.aws))
    return reader


def _cluster_reader(policy: PolicySpec, budget: BudgetSpec, scope: ClusterScope, api_client: Any,
                    notes: list[str], *, cluster: str, workdir: Path, region: str, now: datetime,
                    connect: Callable[..., AwsSource]) -> DayReader:
    import re

    from ..costrun import allocate_window
    from ..sources.promalloc import read_usage_hours
    from ..sources.promql import Scope
    from .costsource import bill_reader
    from .wiring import _pricing, prometheus_source, read_config_map, read_secret

    def secret(ref, where: str) -> str:
        return read_secret(api_client, policy.namespace, ref, where=where, source=policy.source)

    source = prometheus_source(policy, secret)
    book = _pricing(policy, policy.aws.region if policy.aws else region, api_client, workdir, read_config_map).book
    read_bill = bill_reader(policy.aws, cluster=cluster, workdir=workdir, connect=connect) if policy.aws else None
    zone = budget.rules().zone
    promql = Scope(namespaces="|".join(re.escape(n) for n in sorted(scope.namespaces)) if scope.namespaces else ".+",
                   matchers=policy.prometheus.matchers)

    def read(days: list[date]) -> dict[date, float]:
        out: dict[date, float] = {}
        for run in runs(days):
            start, end = day_bounds(run[0], zone)[0], min(day_bounds(run[-1], zone)[1], now)
            if end <= start:
                continue
            usage = read_usage_hours(source, promql, start, end, allow_empty=True)
            bill = _bill(read_bill, usage, start, end, notes) if usage.node_present.any() else None
            out.update(daily_costs(usage, run, zone, scope=scope, allocate=lambda u, bill=bill: allocate_window(
                u, [], book, bill, policy.settings.allocation)))
        return out

    return read


def _bill(read_bill: BillReader | None, usage: UsageHours, start: datetime, end: datetime,
          notes: list[str]) -> Bill | None:
    """The bill of ``[start, end)`` (UTC), or None (price book) with a note when it cannot be read: the budget
    is still evaluated (as a policy run is: a failed cost source is a warning, never a failed run)."""
    if read_bill is None:
        return None
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    try:
        return read_bill(usage, start, end)
    except FinOpsError as exc:
        problem = str(exc)
    except Exception as exc:  # a bug or an unexpected answer must not stop the evaluation either
        log.exception("budget bill %s .. %s", start, end)
        problem = f"{type(exc).__name__}: {exc}"
    notes.append(f"the bill of {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC could not be read, the price "
                 f"book priced those days ({problem})")
    return None


def _aws_reader(source: Any, aws: BudgetAwsScope) -> DayReader:
    where = ce_filter(aws)

    def read(days: list[date]) -> dict[date, float]:
        if not days:
            return {}
        rows = source.cost_by("SERVICE", min(days), max(days) + timedelta(days=1), metric="AmortizedCost",
                              cost_filter=where)
        by_day: dict[date, float] = {d: 0.0 for d in days}
        for row in rows:
            if row.start in by_day:
                by_day[row.start] += row.amount
        return by_day

    return read
