"""The gauges the Grafana dashboard and the PrometheusRule read, set by a real (simulated) run: the ledger by
state and type, realized savings, open pull requests and their limit, the schedule's interval, build info,
data source errors; and gone when the policy is deleted."""
from __future__ import annotations

import platform
from datetime import timedelta

from finops_operator import __version__, metrics
from finops_operator.api import runs
from finops_operator.errors import DataSourceError
from finops_operator.ledger import Ledger

from tests.unit.test_api_runs import NOW, policy_spec, store  # noqa: F401  (store is a fixture)
from tests.unit.test_api_runs_costs import POLICY, demo, wiring  # noqa: F401  (demo is a fixture)

value = metrics.REGISTRY.get_sample_value


def test_a_run_exports_the_ledger_by_state_and_type(store, tmp_path, demo):  # noqa: F811
    state, usage, bill = demo
    outcome = runs.execute_run(policy_spec(schedule="0 */6 * * *"), None, now=NOW, workdir=tmp_path,
                               build=wiring(state, lambda w: (usage, bill)))
    assert outcome.ok and outcome.ledger is not None and len(outcome.ledger)
    try:
        runs.record_metrics(outcome, finished=NOW)
        opps = outcome.ledger.opportunities
        kinds = {(o.state.value, o.type) for o in opps}
        for state_, type_ in kinds:
            labels = {"policy": POLICY, "state": state_, "type": type_}
            assert value("finops_opportunities", labels) == sum(1 for o in opps if (o.state.value, o.type) ==
                                                                (state_, type_))
            assert value("finops_opportunities_estimated_monthly_savings_dollars", labels) == sum(
                o.estimated_monthly_savings for o in opps if (o.state.value, o.type) == (state_, type_))
        assert value("finops_realized_monthly_savings_dollars", {"policy": POLICY, "type": opps[0].type}) == 0.0
        assert value("finops_policy_open_pull_requests", {"policy": POLICY}) == 0
        assert value("finops_policy_open_pull_requests_limit", {"policy": POLICY}) == 5
        assert value("finops_policy_schedule_interval_seconds", {"policy": POLICY}) == 6 * 3600
        # The next run finds an empty ledger: the old series read 0, not their old value and not a gap.
        runs.record_metrics(runs.RunOutcome(policy=outcome.policy, started=NOW, ledger=Ledger()), finished=NOW)
        state_, type_ = next(iter(kinds))
        assert value("finops_opportunities", {"policy": POLICY, "state": state_, "type": type_}) == 0
    finally:
        runs.forget_metrics("finops-system", "p")
    for name in ("finops_policy_open_pull_requests", "finops_policy_open_pull_requests_limit",
                 "finops_policy_schedule_interval_seconds"):
        assert value(name, {"policy": POLICY}) is None
    state_, type_ = next(iter(kinds))
    assert value("finops_opportunities", {"policy": POLICY, "state": state_, "type": type_}) is None


def test_realized_savings_come_from_verified_opportunities(store, tmp_path, demo):  # noqa: F811
    state, usage, bill = demo
    outcome = runs.execute_run(policy_spec(), None, now=NOW, workdir=tmp_path,
                               build=wiring(state, lambda w: (usage, bill)))
    ledger = outcome.ledger
    opp = next(o for o in ledger.opportunities if o.state.value == "Detected")
    ledger.proposed(opp.id, "https://github.example/o/r/pull/1", 1, "finops/x", "cs-1", NOW)
    ledger.merged(opp.id, NOW + timedelta(days=1))
    assert ledger.verify(opp.id, 42.5, NOW + timedelta(days=8), settle=timedelta(days=7))
    try:
        runs.record_metrics(outcome, finished=NOW)
        assert value("finops_realized_monthly_savings_dollars", {"policy": POLICY, "type": opp.type}) == 42.5
        assert value("finops_opportunities", {"policy": POLICY, "state": "Verified", "type": opp.type}) == 1
    finally:
        runs.forget_metrics("finops-system", "p")


def test_build_info_and_data_source_errors(store, tmp_path):  # noqa: F811
    assert value("finops_operator_build_info", {"version": __version__, "python": platform.python_version()}) == 1

    def unreachable(policy, api_client, *, workdir, approved):
        raise DataSourceError("connection refused", source="prometheus")

    outcome = runs.execute_run(policy_spec(), None, now=NOW, workdir=tmp_path, build=unreachable)
    before = value("finops_datasource_errors_total", {"policy": POLICY, "stage": "setup"}) or 0
    try:
        runs.record_metrics(outcome)
        assert value("finops_datasource_errors_total", {"policy": POLICY, "stage": "setup"}) == before + 1
        assert value("finops_policy_open_pull_requests_limit", {"policy": POLICY}) == 5
    finally:
        runs.forget_metrics("finops-system", "p")
