"""reconcile's costs stage: the window's allocation, and right-sizing priced with what the bill says is paid.

The demo scenario through the simulator (usage hours and its bill, with Savings Plans and spot), no servers;
the live version of the reader is api/wiring.py (Prometheus + the policy's cost source).
"""
from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
from finops_operator.cli.demo import DEMO_POLICY, DEMO_SCENARIO
from finops_operator.cli.scan import load_policy_file
from finops_operator.errors import DataSourceError
from finops_operator.ledger import Ledger
from finops_operator.models import FindingType
from finops_operator.pricing.allocation import cluster_rates
from finops_operator.pricing.catalog import PriceBook
from finops_operator.reconcile import LoopDeps, run_policy
from finops_operator.simulator import load_scenario, simulate, simulate_bill, usage_hours
from finops_operator.usage import state_with_usage

NOW = datetime(2026, 11, 16, 1, tzinfo=UTC)
RIGHTSIZING = {FindingType.RIGHTSIZE_CPU, FindingType.RIGHTSIZE_MEMORY}


@pytest.fixture(scope="module")
def demo():
    sim = simulate(load_scenario(DEMO_SCENARIO))
    book = PriceBook.for_region(sim.state.region)
    return state_with_usage(sim.snapshot()), usage_hours(sim), simulate_bill(sim, book)


@pytest.fixture(scope="module")
def settings():
    return load_policy_file(DEMO_POLICY)


def run(settings, state, read_costs=None):
    deps = LoopDeps(read_state=lambda window: copy.deepcopy(state), read_costs=read_costs)
    return run_policy("demo", settings, Ledger(), deps, now=NOW, history=timedelta(days=14), step_seconds=300)


def savings(report) -> dict[str, float]:
    return {f.id: f.monthly_savings for f in report.result.findings if f.type in RIGHTSIZING}


def test_the_run_allocates_the_window_and_reconciles_with_the_bill(settings, demo) -> None:
    state, usage, bill = demo
    windows = []
    report = run(settings, state, lambda window: windows.append(window) or (usage, bill))
    assert report.ok and not report.warnings
    assert windows and windows[0].end == NOW and windows[0].start == NOW - timedelta(days=7)    # the last week of the 14 days (cost_window)
    allocation = report.allocation
    assert allocation is not None and report.bill is bill
    assert allocation.bill_total == pytest.approx(bill.clip(allocation.start, allocation.end).total())
    assert abs(allocation.residual) <= 0.01 * allocation.bill_total


def test_right_sizing_is_priced_with_the_effective_rates(settings, demo) -> None:
    state, usage, bill = demo
    listed = run(settings, state)
    paid = run(settings, state, lambda window: (usage, bill))
    assert listed.allocation is None and listed.rates is None
    list_rates = cluster_rates(state, PriceBook.for_region(state.region))
    assert paid.rates is not None and paid.rates.cpu_core_hour < list_rates.cpu_core_hour
    at_list, at_paid = savings(listed), savings(paid)
    assert at_paid and set(at_paid) <= set(at_list)     # cheaper cores: a marginal one may fall under the minimum
    assert all(abs(at_paid[i]) < abs(at_list[i]) for i in at_paid)   # a scale-up costs less too
    assert sum(at_paid.values()) < sum(at_list.values())
    biggest = max(at_paid, key=at_paid.get)
    assert at_paid[biggest] == pytest.approx(at_list[biggest] * paid.rates.cpu_core_hour / list_rates.cpu_core_hour,
                                             rel=0.02)                    # priced at the bill's rate per core


def test_a_failing_cost_reader_is_a_warning_and_the_scan_goes_on_at_list_rates(settings, demo) -> None:
    state, _, _ = demo

    def broken(window):
        raise DataSourceError("Cost Explorer is throttling", source="aws:ce")

    listed, failed = run(settings, state), run(settings, state, broken)
    assert failed.ok and failed.errors == {}                          # cost data is an addition, not a precondition
    assert "Cost Explorer is throttling" in failed.warnings["costs"]
    assert failed.allocation is None and failed.rates is None
    assert {f.id: f.monthly_savings for f in failed.result.findings} == \
        {f.id: f.monthly_savings for f in listed.result.findings}


def test_a_bug_in_the_cost_reader_does_not_stop_the_run(settings, demo) -> None:
    state, _, _ = demo
    report = run(settings, state, lambda window: 1 / 0)
    assert report.ok and report.result is not None and report.result.findings
    assert report.warnings["costs"].startswith("ZeroDivisionError")


def test_the_costs_stage_allocates_the_last_week_of_a_long_window_only():
    from datetime import UTC, datetime, timedelta

    from finops_operator.models import Window
    from finops_operator.reconcile import COST_WINDOW, cost_window
    end = datetime(2026, 11, 30, 6, tzinfo=UTC)
    long = cost_window(Window(end - timedelta(days=90), end, 300))
    assert (long.start, long.end, long.step_seconds) == (end - COST_WINDOW, end, 300)
    short = Window(end - timedelta(days=2), end, 300)
    assert cost_window(short) == short
