"""Hand-built InsightData pieces for the insight tests (numbers chosen so the expected text is exact)."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np

from finops_operator.insights import BudgetView
from finops_operator.ledger import Opportunity, OpportunityState
from finops_operator.models import Container, Node, Pod, Resources, Workload, WorkloadRef
from finops_operator.models.costs import Bill, BillLine, CostCategory, PriceSource
from finops_operator.models.spend import Anomaly, AnomalyKind, Forecast, ForecastPoint, Severity, SpendSeries
from finops_operator.models.usage import ClusterState, ContainerKey, ContainerUsage, UsageStats, Window

START = date(2026, 11, 2)                      # a Monday; 14 days to 2026-11-15
NOW = datetime(2026, 11, 16, tzinfo=UTC)


def series(*weeks: float, start: date = START) -> SpendSeries:
    """7 days at each value."""
    return SpendSeries(start, np.repeat(np.array(weeks, dtype=float), 7))


def opportunity(oid: str, state: str, estimated: float, *, realized: float | None = None, pr: int | None = None,
                baseline: float | None = None, kind: str = "rightsize-cpu", team: str | None = "payments"
                ) -> Opportunity:
    return Opportunity(oid, kind, kind, f"Deployment/payments/{oid}/api", "payments", team, "demo-eks",
                       OpportunityState(state), estimated, 0.9, 0.2, "fp", NOW, NOW,
                       realized_monthly_savings=realized, baseline_monthly_cost=baseline,
                       pr_url=f"https://github.com/acme/gitops/pull/{pr}" if pr else None, pr_number=pr)


def budget(name: str, amount: float, spend: float, forecast: float, state: str) -> BudgetView:
    return BudgetView(name, amount, "2026-11", date(2026, 11, 1), date(2026, 12, 1), spend, forecast,
                      forecast * 0.95, forecast * 1.05, state, team="payments")


def node_bill() -> Bill:
    """Two node-hours: one covered by a Savings Plan (list $100, paid $72), one on demand (list $100)."""
    t0 = datetime(2026, 11, 2, tzinfo=UTC)
    t1 = t0 + timedelta(days=10)
    covered = BillLine(t0, t1, "i-1", CostCategory.NODE, "AmazonEC2", "BoxUsage", 72.0, 100.0,
                       PriceSource.EFFECTIVE, line_item_type="SavingsPlanCoveredUsage")
    ondemand = BillLine(t0, t1, "i-2", CostCategory.NODE, "AmazonEC2", "BoxUsage", 100.0, 100.0,
                        PriceSource.EFFECTIVE)
    spot = BillLine(t0, t1, "i-3", CostCategory.NODE, "AmazonEC2", "SpotUsage", 30.0, 100.0, PriceSource.SPOT)
    return Bill("simulated", t0, t1, [covered, ondemand, spot])


def spike(driver: str | None = "namespace search") -> Anomaly:
    return Anomaly(date(2026, 11, 12), date(2026, 11, 12), Severity.HIGH, AnomalyKind.SPIKE, 100.0, 180.0,
                   driver=driver, driver_delta=75.0 if driver else None)


def stats(peak: float) -> UsageStats:
    return UsageStats(100, 100, {50: peak / 2, 90: peak * 0.9, 95: peak * 0.95, 99: peak * 0.99}, peak, peak / 2, 0.1)


def cluster(*, oom: int = 0, throttled: float | None = None, requested_cpu: float = 9.5) -> ClusterState:
    ref = WorkloadRef("Deployment", "payments", "api")
    container = Container("api", resources=Resources(cpu_request=0.5, cpu_limit=1.0, memory_request=2**30,
                                                     memory_limit=2**30), oom_kills=oom)
    state = ClusterState("demo-eks", "us-east-1", Window(NOW - timedelta(days=14), NOW, 300),
                         workloads=[Workload(ref, 1, [container], labels={"team": "payments"})],
                         nodes=[Node("n1", "m5.xlarge", "general", 4.0, 16 * 2**30),
                                Node("n2", "m5.xlarge", "general", 6.0, 16 * 2**30)],
                         pods=[Pod("payments", "api-1", "n1", ref, cpu_request=requested_cpu,
                                   memory_request=8 * 2**30),
                               Pod("payments", "gone", None, ref, cpu_request=100.0)])   # unscheduled: not counted
    state.usage[ContainerKey(ref, "api")] = ContainerUsage(ContainerKey(ref, "api"), stats(0.4),
                                                           stats(float(2**30)), throttled)
    return state


def flat_forecast(after: date, days: int, value: float) -> Forecast:
    return Forecast("linear", 0.05, [ForecastPoint(after + timedelta(days=i), value, value - 1, value + 1)
                                     for i in range(days)])
