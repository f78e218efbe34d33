"""Right-sizing priced with the bill's effective rates when given, list prices otherwise."""
from __future__ import annotations

import pytest

from finops_operator.detectors import run_all
from finops_operator.detectors.cpu import CpuRightsizing
from finops_operator.pricing.allocation import Rates
from finops_operator.pricing.catalog import PriceBook
from tests.support.fixtures_detectors import app, policy, stats

from .alloc_cluster import simulated

CORE_HOUR = 0.192 * 0.031611 / (4 * 0.031611 + 16 * 0.004237)     # m5.xlarge list price, as test_detector_cpu


def _one_cut(builder):   # default CPU sizing p90 + 5%: 0.18 x 1.05 = 0.189 -> 190m
    builder.workload("web", app("api", cpu="1000m"), replicas=2).usage("web", "api", cpu=stats(0.2))
    return builder.build()


def test_sizing_uses_list_rates_without_a_bill(builder):
    finding = CpuRightsizing(policy(), PriceBook.load()).run(_one_cut(builder)).findings[0]
    assert finding.monthly_savings == pytest.approx((1.0 - 0.19) * CORE_HOUR * 730 * 2, abs=0.01)


def test_sizing_and_run_all_use_the_effective_rates_when_given(builder):
    from finops_operator.allocation import effective_rates
    c = simulated(3)
    rates = effective_rates(c.usage, c.prices, c.book, c.bill)
    assert isinstance(rates, Rates) and rates.basis == "bill"
    state = _one_cut(builder)
    finding = next(f for f in run_all(state, policy(), PriceBook.load(), rates=rates).findings
                   if f.target.name == "api" and f.type.value.endswith("cpu"))
    assert finding.monthly_savings == pytest.approx((1.0 - 0.19) * rates.cpu_core_hour * 730 * 2, abs=0.01)
    assert rates.cpu_core_hour != pytest.approx(CORE_HOUR, rel=0.01)


def test_allocate_and_rate_gives_what_allocate_and_effective_rates_give_apart():
    from finops_operator.allocation import allocate, allocate_and_rate, effective_rates
    c = simulated(21)
    allocation, rates = allocate_and_rate(c.usage, c.prices, c.book, bill=c.bill)
    assert rates == effective_rates(c.usage, c.prices, c.book, c.bill)
    alone = allocate(c.usage, c.prices, c.book, bill=c.bill)
    assert allocation.charges == alone.charges and allocation.notes == alone.notes
