"""The end of `finops demo`: the month's cost by namespace (reconciled) next to its savings."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rich.console import Console

from finops_operator.actuation.plan import Plan
from finops_operator.cli import demo
from finops_operator.costreport import cost_report
from finops_operator.models import Decision, Verdict
from finops_operator.pipeline import ScanResult
from tests.support.fixtures_costs import allocation, bill
from tests.support.fixtures_guardrails import container_finding, node_group_finding, volume_finding


def scan_result() -> ScanResult:
    findings = [container_finding("payments", "api", savings=73.0),
                container_finding("payments", "worker", savings=36.5),
                container_finding("search", "es", savings=999.0),            # denied: not counted
                container_finding("billing", "cron", savings=5.0),           # a namespace with no cost row
                node_group_finding(savings=140.0), volume_finding(savings=8.0)]
    verdicts = [Verdict.ALLOW, Verdict.ALLOW, Verdict.DENY, Verdict.ALLOW, Verdict.ALLOW, Verdict.ALLOW]
    return ScanResult(state=None, findings=findings, skipped=[],                       # type: ignore[arg-type]
                      decisions={f.id: Decision(f.id, v) for f, v in zip(findings, verdicts)}, plan=Plan())


def rendered(table) -> list[str]:
    console = Console(record=True, width=140)
    console.print(table)
    return console.export_text().splitlines()


def line(lines: list[str], label: str) -> str:
    return next(entry for entry in lines if f"│ {label} " in entry)


def test_savings_by_namespace_counts_allowed_findings_and_puts_cluster_wide_apart():
    assert demo.savings_by_namespace(scan_result()) == {"payments": 109.5, "billing": 5.0, demo.CLUSTER_WIDE: 148.0}


def test_cost_and_savings_table():
    report = cost_report(allocation(), by="namespace", bill=bill())                 # 14 days: 336 hours
    lines = rendered(demo.cost_and_savings_table(report, scan_result()))
    assert "Cost by namespace (14 days, 2024-06-01 .. 2024-06-15) and savings" in " ".join(lines)
    payments = line(lines, "payments")
    assert "$400.00" in payments and "$869.05" in payments and "$109.50" in payments and "12.6%" in payments
    search = line(lines, "search")
    assert "$290.00" in search and "$999" not in search                             # denied savings are not shown
    assert "$391.07" in line(lines, "idle") and "$50.00" in line(lines, "shared")
    assert "—" in line(lines, "billing") and "$5.00" in line(lines, "billing")
    cluster = line(lines, "cluster-wide findings (nodes, volumes)")
    assert "$148.00" in cluster
    total = line(lines, "total")
    assert "$990.00" in total and "$2,150.89" in total and "$262.50" in total and "12.2%" in total
    labels = [entry.split("│")[1].strip() for entry in lines if entry.startswith("│")]
    assert labels == ["payments", "search", "web", "idle", "shared", "unallocated", "billing",
                      "cluster-wide findings (nodes, volumes)", "total"]


@pytest.fixture(scope="module")
def demo_simulation():
    from finops_operator.cli.common import DEMO_SCENARIO
    from finops_operator.simulator import load_scenario, simulate
    return simulate(load_scenario(DEMO_SCENARIO))


def test_the_demo_cost_table_reconciles_with_the_simulated_bill(demo_simulation):
    """The real pipeline: the demo cluster's usage hours, its region's prices and its simulated bill."""
    from finops_operator.settings import PolicySettings
    report = demo.demo_cost_report(demo_simulation, PolicySettings())
    assert report.bill_source == "simulated" and report.bill_total > 0
    assert abs(report.residual) <= 0.01 * report.bill_total
    namespaces = {r.key for r in report.rows if r.kind == "allocated"}
    assert {"payments", "search", "checkout"} <= namespaces
    assert {"idle", "shared"} <= {r.kind for r in report.rows}
    console = Console(record=True, width=140)
    demo.show_cost_and_savings(console, demo_simulation, PolicySettings(), scan_result())
    text = console.export_text()
    assert "payments" in text and "residual" in text
