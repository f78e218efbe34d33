"""Budgets evaluated (pure): periods in a time zone, spend to date, forecast to the period's end, state,
thresholds that fire once per period, bounded budget events, the stored daily history.

    rules = BudgetRules(amount=5000.0, period="Monthly", thresholds=(ThresholdRule(80, "Notify"),))
    result = evaluate(rules, history.series, now=now, memory=memory, forecaster=forecaster_for("auto"))

I/O lives at the edges: ``api.spendstore`` (the history's ConfigMap), ``api.budgetrun`` (cost reading,
status, Events), ``handlers.budgets`` (the timer).
"""
from __future__ import annotations

from functools import partial

from ..forecast import forecast
from .daily import ClusterScope, daily_costs, scoped_cost
from .evaluate import (MAX_EVENTS, BudgetEvent, BudgetRules, Crossing, Evaluation, EventKind, Forecaster, Freeze,
                       Memory,
                       State, ThresholdRule, evaluate, percent_of, record_actions)
from .periods import Period, day_bounds, local_day, period_of, utc_bounds

METHODS = {"Auto": "auto", "Linear": "linear", "MovingAverage": "moving-average", "HoltWinters": "holt-winters"}


def forecaster_for(method: str = "Auto") -> Forecaster:
    """The forecaster for a spec method (``spec.forecast.method``): :func:`finops_operator.forecast.forecast`."""
    return partial(_forecast, METHODS.get(method, "auto"))


def _forecast(method: str, series, horizon_days: int):
    return forecast(series, horizon_days, method=method)


def moving_average(series, horizon_days: int):
    """The 28-day moving average (tests and callers wanting a simple, explainable forecast)."""
    return forecast(series, horizon_days, method="moving-average")


__all__ = ["BudgetEvent", "BudgetRules", "ClusterScope", "Crossing", "Evaluation", "EventKind", "Forecaster", "Freeze",
           "MAX_EVENTS", "METHODS", "Memory", "Period", "State", "ThresholdRule", "daily_costs", "day_bounds",
           "evaluate", "forecaster_for", "local_day", "moving_average", "percent_of", "period_of",
           "record_actions", "scoped_cost", "utc_bounds"]
