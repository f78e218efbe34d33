"""costrun: one window's allocation from usage hours, the nodes' prices and the bill; Bill.clip."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from finops_operator.cli.common import DEMO_SCENARIO
from finops_operator.costrun import allocate_window, allocate_window_and_rates
from finops_operator.models.costs import Bill, BillLine, CostCategory, PriceSource
from finops_operator.pricing import PriceBook
from finops_operator.simulator import load_scenario, simulate, simulate_bill, usage_hours

T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo():
    sim = simulate(load_scenario(DEMO_SCENARIO))
    book = PriceBook.for_region(sim.state.region)
    return sim, book, simulate_bill(sim, book)


def line(start: datetime, hours: int, cost: float) -> BillLine:
    return BillLine(start, start + timedelta(hours=hours), "i-0abc", CostCategory.NODE, "AmazonEC2", "BoxUsage",
                    cost, cost, PriceSource.EFFECTIVE)


def test_clip_keeps_lines_inside_and_prorates_lines_crossing_an_edge():
    bill = Bill("test", T0, T0 + timedelta(days=2), [line(T0, 24, 24.0), line(T0 + timedelta(days=1), 24, 48.0)])
    clipped = bill.clip(T0 + timedelta(hours=12), T0 + timedelta(hours=36))
    assert [round(x.cost, 6) for x in clipped.lines] == [12.0, 24.0]
    assert clipped.lines[0].start == T0 + timedelta(hours=12) and clipped.lines[1].end == T0 + timedelta(hours=36)
    assert clipped.start == T0 + timedelta(hours=12) and bill.total() == 72.0     # the original is untouched


def test_a_sub_window_reconciles_with_the_bill_of_that_window(demo):
    sim, book, bill = demo
    start = sim.state.window.start + timedelta(days=3)
    usage = usage_hours(sim, start, start + timedelta(days=2))
    allocation = allocate_window(usage, sim.state.nodes, book, bill)
    assert allocation.bill_total == pytest.approx(bill.clip(allocation.start, allocation.end).total())
    assert abs(allocation.residual) <= 0.01 * allocation.bill_total
    assert allocation.bill_total < 0.3 * bill.total()                      # two days of fourteen, not the whole bill


def test_without_a_bill_the_price_book_and_the_control_plane_fee_price_it(demo):
    sim, book, _ = demo
    allocation = allocate_window(usage_hours(sim), sim.state.nodes, book, None)
    assert allocation.bill_total is None and allocation.total > 0
    assert set(allocation.price_sources) <= {PriceSource.LIST, PriceSource.SPOT}
    shared = sum(c.cost for c in allocation.charges if c.category is CostCategory.CONTROL_PLANE)
    assert shared == pytest.approx(book.control_plane_hourly * len(usage_hours(sim).hours))


def test_rates_from_the_bill_are_below_list_rates_with_savings_plans_and_spot(demo):
    sim, book, bill = demo
    usage = usage_hours(sim)
    billed, listed = (allocate_window_and_rates(usage, sim.state.nodes, book, b)[1] for b in (bill, None))
    assert billed.cpu_core_hour < listed.cpu_core_hour
    assert (billed.basis, listed.basis) == ("bill", "prices")
