"""Hand-built Allocations and Bills for the presentation of cost truth (until the engines feed it)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from finops_operator.models.costs import (Allocation, Bill, BillLine, Charge, ChargeKind, CostCategory,
                                          PriceSource)

START = datetime(2024, 6, 1, tzinfo=UTC)
END = START + timedelta(days=14)


def container(namespace: str, workload: str, cost: float, *, team: str = "", node: str = "node-a",
              labels: dict[str, str] | None = None, source: PriceSource = PriceSource.LIST,
              idle: float = 0.0, shared: float = 0.0) -> Charge:
    return Charge(kind=ChargeKind.CONTAINER, cost=cost, namespace=namespace, workload=workload, container="app",
                  node=node, team=team, labels=labels or {}, cpu_cost=cost * 0.75, memory_cost=cost * 0.25,
                  idle_cost=idle, shared_cost=shared, price_source=source)


def allocation(*, bill_total: float | None = 1000.0, extra: list[Charge] | None = None) -> Allocation:
    """Sums to 990: 3 namespaces, 2 nodes' idle, the control plane shared, one unallocated line."""
    charges = [
        container("payments", "Deployment/api", 300.0, team="pay", labels={"app": "api"}),
        container("payments", "Deployment/worker", 100.0, team="pay", node="node-b", labels={"app": "worker"}),
        container("search", "StatefulSet/es", 250.0, team="find", node="node-b", labels={"app": "es"},
                  source=PriceSource.SPOT),
        container("web", "Deployment/front", 50.0, labels={"app": "front"}),
        Charge(kind=ChargeKind.VOLUME, cost=40.0, namespace="search", workload="StatefulSet/es", team="find",
               category=CostCategory.VOLUME),
        Charge(kind=ChargeKind.IDLE, cost=120.0, node="node-a"),
        Charge(kind=ChargeKind.IDLE, cost=60.0, node="node-b"),
        Charge(kind=ChargeKind.SHARED, cost=50.0, category=CostCategory.CONTROL_PLANE, service="AmazonEKS"),
        Charge(kind=ChargeKind.UNALLOCATED, cost=20.0, category=CostCategory.OTHER, service="AmazonS3"),
        *(extra or []),
    ]
    return Allocation(start=START, end=END, charges=charges, bill_total=bill_total,
                      price_sources={PriceSource.LIST: 630.0, PriceSource.SPOT: 250.0, PriceSource.EFFECTIVE: 0.0})


def bill(total: float = 1000.0, *, problems: list[str] | None = None) -> Bill:
    line = BillLine(start=START, end=END, resource_id="i-0abc", category=CostCategory.NODE, service="AmazonEC2",
                    usage_type="USE1-BoxUsage:m5.xlarge", cost=total, list_cost=total * 1.2,
                    pricing=PriceSource.EFFECTIVE)
    return Bill(source="cur:duckdb", start=START, end=END, lines=[line], problems=problems or [])
