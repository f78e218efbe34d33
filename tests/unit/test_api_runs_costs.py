"""A run's cost allocation as the operator reports it: the Ready message, the allocation gauges, and a failed
cost source that is named (condition message, a Warning Event) without failing the run."""
from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from finops_operator import metrics
from finops_operator.api import runs
from finops_operator.api.wiring import ScopedReader, Wiring
from finops_operator.errors import DataSourceError
from finops_operator.pricing.catalog import PriceBook
from finops_operator.reconcile import LoopDeps
from finops_operator.simulator import load_scenario, simulate, simulate_bill, usage_hours
from finops_operator.cli.demo import DEMO_SCENARIO
from finops_operator.usage import state_with_usage

from tests.unit.test_api_runs import NOW, policy_spec, store  # noqa: F401  (store is a fixture)

POLICY = "finops-system/p"


@pytest.fixture(scope="module")
def demo():
    sim = simulate(load_scenario(DEMO_SCENARIO))
    book = PriceBook.for_region(sim.state.region)
    return state_with_usage(sim.snapshot()), usage_hours(sim), simulate_bill(sim, book)


def wiring(state, read_costs):
    def build(policy, api_client, *, workdir, approved):
        scoped = ScopedReader(lambda window: copy.deepcopy(state), None)
        return Wiring(deps=LoopDeps(read_state=scoped, approved=approved, read_costs=read_costs), reader=scoped,
                      namespaces=None)
    return build


def conditions(outcome) -> dict[str, dict]:
    status = runs.run_status(outcome, {}, now=NOW, next_at=NOW + timedelta(hours=6))
    return {c["type"]: c for c in status["conditions"]}


def test_the_allocation_is_in_the_ready_message_and_the_gauges(store, tmp_path, demo):  # noqa: F811
    state, usage, bill = demo
    outcome = runs.execute_run(policy_spec(), None, now=NOW, workdir=tmp_path, build=wiring(state, lambda w: (usage, bill)))
    allocation = outcome.report.allocation
    assert outcome.ok and allocation is not None
    ready = conditions(outcome)["Ready"]
    assert ready["status"] == "True" and "allocated over 14 days" in ready["message"] and "residual" in ready["message"]
    try:
        runs.record_metrics(outcome, finished=NOW)
        hours = (allocation.end - allocation.start).total_seconds() / 3600
        exported = metrics.REGISTRY.get_sample_value("finops_allocation_bill_dollars_per_hour",
                                                     {"policy": POLICY, "bill_source": bill.source})
        assert exported == pytest.approx(allocation.bill_total / hours, rel=1e-6)
        assert metrics.REGISTRY.get_sample_value("finops_estimated_monthly_savings_dollars", {"policy": POLICY})
    finally:
        runs.forget_metrics("finops-system", "p")
    assert metrics.REGISTRY.get_sample_value("finops_allocation_bill_dollars_per_hour",
                                             {"policy": POLICY, "bill_source": bill.source}) is None
    assert metrics.REGISTRY.get_sample_value("finops_estimated_monthly_savings_dollars", {"policy": POLICY}) is None
    runs.forget_metrics("finops-system", "p")                    # twice (a replayed delete) is harmless


def test_a_failed_cost_source_is_named_but_the_run_succeeds(store, tmp_path, demo):  # noqa: F811
    state, _, _ = demo

    def throttled(window):
        raise DataSourceError("Cost Explorer throttled the request", source="aws:ce")

    outcome = runs.execute_run(policy_spec(), None, now=NOW, workdir=tmp_path, build=wiring(state, throttled))
    assert outcome.ok and outcome.errors == {} and outcome.report.result.findings
    found = conditions(outcome)
    assert found["Ready"]["status"] == "True" and "savings at list prices" in found["Ready"]["message"]
    assert found["DataSourcesReady"]["status"] == "True"
    assert "costs (optional, skipped this run): aws:ce: Cost Explorer throttled" in found["DataSourcesReady"]["message"]
    events = runs.run_events(outcome)
    assert [e[:2] for e in events] == [("Normal", "RunSucceeded"), ("Warning", "CostsSkipped")]
    runs.record_metrics(outcome, finished=NOW)                    # no allocation: no allocation series
    assert metrics.REGISTRY.get_sample_value("finops_allocation_window_end_timestamp_seconds",
                                             {"policy": POLICY}) is None
    runs.forget_metrics("finops-system", "p")
