"""Insight generators on hand-built data: each persona's insight with the right numbers, none without data."""
from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pytest

from finops_operator.insights import InsightData, filter_insights, generate, top_per_persona
from finops_operator.insights import business, cfo, engineer, finance
from finops_operator.insights.common import DAYS_PER_MONTH, by_budget_state, by_impact, insight_id
from finops_operator.models.insights import Category, Persona, Priority
from finops_operator.models.spend import SpendSeries
from tests.support.fixtures_insights import (NOW, START, budget, cluster, flat_forecast, node_bill, opportunity,
                                             series, spike)


def only(insights, generator):
    found = [i for i in insights if i.generator == generator]
    assert len(found) == 1, [i.title for i in insights]
    return found[0]


def test_no_data_gives_no_insight():
    assert generate(InsightData()) == []
    assert generate(InsightData(now=NOW, business={"orders": series(100, 100)})) == []   # no spend to divide


# --------------------------------------------------------------------------- CFO


def test_cfo_spend_trend_compares_the_last_week_with_the_one_before():
    i = only(cfo.spend_trend(InsightData(spend=series(100, 130), now=NOW)), "cfo.spend-trend")
    assert i.persona is Persona.CFO and i.priority is Priority.HIGH                # +30% >= 25%
    assert "$130.00 over the last 7 days against $100.00" in i.description and "+30.0%" in i.description
    assert i.impact == pytest.approx(30 * DAYS_PER_MONTH)
    assert cfo.spend_trend(InsightData(spend=series(100, 104))) [0].priority is Priority.LOW
    assert cfo.spend_trend(InsightData(spend=series(100))) == []                   # one week: no trend


def test_cfo_budget_variance_sums_the_budgets_and_takes_the_worst_state():
    data = InsightData(budgets=[budget("a/shop", 1000, 600, 1250, "ForecastExceeded"),
                                budget("a/search", 500, 100, 400, "OK")])
    i = only(cfo.budget_variance(data), "cfo.budget-variance")
    assert i.priority is Priority.HIGH
    assert "1 of 2 budgets" in i.description and "$1,650.00 against $1,500.00" in i.description
    assert "a/shop (+$250.00)" in i.description and i.impact == pytest.approx(150.0)
    assert [e.name for e in i.evidence] == ["a/shop"]


def test_cfo_unit_economics_divides_spend_by_units():
    data = InsightData(spend=series(10, 10), business={"orders": series(100, 100)})
    i = only(cfo.unit_economics(data), "cfo.unit-economics")
    assert i.title == "Cost per order: $0.1000"
    assert "$140.00 of spend over 14 days served 1,400 orders" in i.description
    assert i.metadata["cost_per_unit"] == pytest.approx(0.1)


def test_cfo_savings_roi_realized_against_estimated():
    opps = [opportunity("a", "Verified", 100.0, realized=60.0, baseline=400.0),
            opportunity("b", "Merged", 50.0), opportunity("c", "Proposed", 999.0, pr=7)]
    i = only(cfo.savings_roi(InsightData(opportunities=opps)), "cfo.savings-roi")
    assert "2 merged changes were estimated to save $150.00/month" in i.description
    assert "realize $60.00/month ($720.00/year), 60% of their estimate, 15.0% of what those workloads cost" \
        in i.description
    assert i.priority is Priority.MEDIUM                   # $60 is low, stepped up: under 70% of the estimate
    assert cfo.savings_roi(InsightData(opportunities=[opps[2]])) == []


def test_cfo_commitment_coverage_from_the_bill():
    i = only(cfo.commitment_coverage(InsightData(bill=node_bill())), "cfo.commitments")
    # on-demand priced nodes: list $200 (spot is not coverable), $100 of it covered at 28% off
    assert i.metadata["coverage_percent"] == pytest.approx(50.0)
    assert i.metadata["discount"] == pytest.approx(0.28)
    uncovered = 100.0 / 10 * DAYS_PER_MONTH
    assert i.impact == pytest.approx(uncovered * 0.28 * 0.8)
    assert "cover 50.0%" in i.description and "at 28.0% off" in i.description


# --------------------------------------------------------------------------- engineer


def test_engineer_fixes_name_the_pull_request():
    opps = [opportunity("a", "Proposed", 1200.0, pr=42), opportunity("b", "Detected", 80.0),
            opportunity("c", "Rejected", 500.0, pr=9)]
    found = engineer.fixes(InsightData(opportunities=opps))
    assert [i.impact for i in found] == [1200.0, 80.0]                          # rejected ones are not pushed
    pr = found[0]
    assert pr.priority is Priority.HIGH and "https://github.com/acme/gitops/pull/42" in pr.recommendation
    assert ("PullRequest", "https://github.com/acme/gitops/pull/42") in [(e.kind, e.url) for e in pr.evidence]
    assert found[1].priority is Priority.LOW and "next run" in found[1].recommendation


def test_engineer_spike_names_its_driver():
    i = only(engineer.spikes(InsightData(anomalies=[spike()])), "engineer.spikes")
    assert i.priority is Priority.HIGH and i.category is Category.ANOMALY
    assert "$180.00 a day against $100.00 expected (+$80.00, +80%)" in i.description
    assert "namespace search moved +$75.00" in i.description
    assert i.evidence[0].kind == "Namespace" and i.evidence[0].name == "search"
    assert i.created.date() == date(2026, 11, 12)


def test_engineer_under_requested_oom_and_throttling():
    oom = only(engineer.under_requested(InsightData(state=cluster(oom=3))), "engineer.under-requested")
    assert oom.priority is Priority.HIGH and "OOM-killed 3 time(s)" in oom.description and "1Gi" in oom.description
    hot = engineer.under_requested(InsightData(state=cluster(throttled=0.3)))[0]
    assert hot.priority is Priority.MEDIUM and "30% of its CFS periods" in hot.description
    assert engineer.under_requested(InsightData(state=cluster(throttled=0.05))) == []


# --------------------------------------------------------------------------- finance


def test_finance_budget_forecast_with_interval_and_variance():
    i = only(finance.budget_forecasts(InsightData(budgets=[budget("a/shop", 1000, 600, 1250, "ForecastExceeded")])),
             "finance.budget-forecast")
    assert i.priority is Priority.HIGH and i.team == "payments"
    assert "forecast $1,250.00 by 2026-11-30 (95% interval $1,187.50 .. $1,312.50), +$250.00 (+25.0%)" \
        in i.description


def test_finance_projections_add_the_forecast_to_the_actual_days():
    spend = series(10, 10)                                      # 2026-11-02 .. 2026-11-15
    data = InsightData(spend=spend, forecast=flat_forecast(spend.end, 46, 20.0))
    found = {i.metadata["period"]: i for i in finance.projections(data)}
    assert found["month"].metadata["projected"] == pytest.approx(140 + 15 * 20)
    assert found["quarter"].metadata["projected"] == pytest.approx(140 + 46 * 20)
    assert "14 of them measured" in found["month"].description                 # Nov 1 had no data
    short = InsightData(spend=spend, forecast=flat_forecast(spend.end, 20, 20.0))
    assert [i.metadata["period"] for i in finance.projections(short)] == ["month"]   # does not reach Dec 31


def test_finance_breakdown_shares_and_the_biggest_mover():
    data = InsightData(spend_by={"namespace": {"shop": series(30, 40), "search": series(10, 10)}})
    i = only(finance.breakdown(data), "finance.breakdown")
    assert "shop $490.00 (78%), search $140.00 (22%) of $630.00" in i.description
    assert "Biggest weekly mover: shop +$70.00" in i.description


# --------------------------------------------------------------------------- business


def test_business_elasticity_sub_linear():
    data = InsightData(spend=series(100, 110), business={"orders": series(1000, 1210)})
    i = only(business.elasticity(data), "business.elasticity")
    assert i.metadata["elasticity"] == pytest.approx(math.log(1.1) / math.log(1.21))
    assert i.metadata["sub_linear"] is True and "sub-linear" in i.description and i.priority is Priority.LOW
    worse = InsightData(spend=series(100, 130), business={"orders": series(1000, 1100)})
    assert business.elasticity(worse)[0].priority is Priority.MEDIUM and "super-linear" in \
        business.elasticity(worse)[0].description


def test_business_unit_cost_over_time():
    data = InsightData(spend=series(100, 110), business={"orders": series(1000, 1210)})
    i = only(business.unit_cost_trend(data), "business.unit-cost")
    assert i.metadata["weekly_cost_per_unit"] == pytest.approx([0.1, 110 / 1210])
    assert "$0.1000 -> $0.0909" in i.description


def test_business_headroom_from_allocatable_and_requests():
    i = only(business.headroom(InsightData(state=cluster(requested_cpu=9.0))), "business.headroom")
    assert i.metadata["cpu_free_percent"] == pytest.approx(10.0) and i.priority is Priority.MEDIUM
    assert "9.0 of 10.0 CPU cores requested (10% free)" in i.description
    assert business.headroom(InsightData(state=cluster(requested_cpu=9.8)))[0].priority is Priority.HIGH
    assert business.headroom(InsightData(state=cluster(requested_cpu=6.0)))[0].priority is Priority.LOW


# --------------------------------------------------------------------------- priorities, ids, filters


def test_priority_rules():
    assert [by_impact(v) for v in (None, 99.99, 100, 999, 1000, 5000)] == \
        [Priority.LOW, Priority.LOW, Priority.MEDIUM, Priority.MEDIUM, Priority.HIGH, Priority.CRITICAL]
    assert by_budget_state("Exceeded") is Priority.CRITICAL and by_budget_state("OK") is Priority.LOW


def full_data() -> InsightData:
    spend = series(100, 130)
    return InsightData(state=cluster(oom=1), spend=spend, forecast=flat_forecast(spend.end, 46, 130.0),
                       budgets=[budget("a/shop", 1000, 1100, 2000, "Exceeded")], anomalies=[spike()],
                       opportunities=[opportunity("a", "Proposed", 300.0, pr=1)], bill=node_bill(),
                       business={"orders": series(1000, 1100)}, now=NOW)


def test_generate_sorts_and_ids_are_stable():
    first, again = generate(full_data()), generate(full_data())
    assert [i.id for i in first] == [i.id for i in again]
    assert len({i.id for i in first}) == len(first)
    assert first[0].priority is Priority.CRITICAL                                # the exceeded budget
    ranks = [i.priority.rank for i in first]
    assert ranks == sorted(ranks, reverse=True)
    assert insight_id("engineer.fixes", "a") != insight_id("engineer.fixes", "b")
    assert {p for p in Persona} == set(top_per_persona(first))


def test_filters():
    everything = generate(full_data())
    cfo_only = generate(full_data(), personas=[Persona.CFO])
    assert cfo_only and {i.persona for i in cfo_only} == {Persona.CFO}
    high = generate(full_data(), min_priority=Priority.HIGH)
    assert high and all(i.priority.at_least(Priority.HIGH) for i in high)
    assert len(high) < len(everything)
    anomalies = generate(full_data(), categories=[Category.ANOMALY])
    assert [i.generator for i in anomalies] == ["engineer.spikes"]
    later = filter_insights(everything, since=NOW - timedelta(days=1))
    assert "engineer.spikes" not in {i.generator for i in later}                 # the spike was on 11-12
    assert len(later) == len(everything) - 1


def test_team_flows_into_insights():
    data = InsightData(spend=series(100, 130), team="payments")
    assert {i.team for i in generate(data)} == {"payments"}


def test_nan_days_are_skipped():
    values = np.repeat([100.0, 130.0], 7)
    values[3] = np.nan
    i = only(cfo.spend_trend(InsightData(spend=SpendSeries(START, values))), "cfo.spend-trend")
    assert i.metadata["previous_week_daily"] == pytest.approx(100.0)
