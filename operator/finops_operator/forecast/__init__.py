"""Daily spend forecasts (pure numpy): a method per budget or the one with the best rolling back-test.

    from finops_operator.forecast import forecast, METHODS
    result = forecast(series, horizon_days=30)              # method="auto"
    result.method, result.backtest_mape, result.points[0]   # "holt-winters", 0.043, ForecastPoint(...)

Methods (:data:`METHODS`): ``holt-winters`` (additive, damped trend, 7-day season, robust; see
:mod:`.holtwinters`), ``seasonal-naive`` (same weekday last week), ``moving-average`` (last 28 days),
``moving-average-7`` (last 7 days) and ``linear`` (least squares over the last 56 days). ``auto`` back-tests
each of :data:`AUTO_CANDIDATES` from several past origins over the requested horizon (see :mod:`.backtest`)
and keeps the one whose horizon *total* was closest (budgets are judged on totals), Holt-Winters unless another
is clearly better (:data:`SWITCH_MARGIN`). ``backtest_mape`` is the chosen method's daily
MAPE on those back-tests; the 95% interval comes from the same back-test errors, step by step.

Short histories (fewer than :data:`MIN_DAYS` days) get the moving average whatever was asked, and
``method`` says so; so do histories too short for a single back-test, whose interval then assumes
independent normal days around the mean (``mean +- 1.96 sd``).
"""
from __future__ import annotations

from datetime import timedelta

import numpy as np

from ..errors import ConfigError
from ..models.spend import Forecast, ForecastPoint, SpendSeries
from .backtest import MIN_TRAIN, Backtest, interval, origins, run_backtest
from .holtwinters import MIN_DAYS as HW_MIN_DAYS
from .holtwinters import holt_winters
from .prepare import History, check_costs, fill_gaps, prepare
from .simple import linear, mean_of_last, seasonal_naive

METHODS = {
    "holt-winters": holt_winters,
    "seasonal-naive": seasonal_naive,
    "moving-average": mean_of_last(28),
    "moving-average-7": mean_of_last(7),
    "linear": linear,
}
AUTO = "auto"
#: What ``auto`` back-tests. ``linear`` is left out: after a launch or a level shift it extrapolates the jump
#: and its back-tests, taken before the jump, do not show it (41% 30-day error on the viral family).
AUTO_CANDIDATES = ("holt-winters", "seasonal-naive", "moving-average", "moving-average-7")
#: ``auto`` keeps Holt-Winters unless another method's back-tested total error is below this share of its own:
#: eight origins cannot tell a few percent apart, and chasing noise cost a point of 30-day error on average.
SWITCH_MARGIN = 0.8
MIN_DAYS = HW_MIN_DAYS            # 14: fewer days get the moving average
MAX_HORIZON_DAYS = 732

__all__ = ["AUTO", "AUTO_CANDIDATES", "MAX_HORIZON_DAYS", "METHODS", "MIN_DAYS", "Backtest", "History", "check_costs", "fill_gaps",
           "forecast", "prepare"]


def forecast(series: SpendSeries, horizon_days: int, method: str = AUTO, *, source: str = "series") -> Forecast:
    """Forecast the ``horizon_days`` days after ``series.end`` (see the module's docstring)."""
    if method != AUTO and method not in METHODS:
        raise ConfigError(f"unknown forecast method {method!r}; use auto or one of {', '.join(METHODS)}",
                          source=source, field="method")
    if not 1 <= horizon_days <= MAX_HORIZON_DAYS:
        raise ConfigError(f"horizon of {horizon_days} days is out of range; forecast 1 to {MAX_HORIZON_DAYS} days",
                          source=source, field="horizon")
    history = prepare(series, source)
    days = len(history.values)
    if days < MIN_DAYS:
        return _normal_mean(history, series, horizon_days,
                            f"moving-average (history of {days} days, fewer than {MIN_DAYS})")
    min_train = MIN_TRAIN if days >= MIN_TRAIN + 7 else MIN_DAYS
    starts, steps = origins(days, horizon_days, min_train)
    if not starts:
        return _normal_mean(history, series, horizon_days, f"moving-average (history of {days} days, too short "
                                                             f"for a back-test)")
    names = list(AUTO_CANDIDATES) if method == AUTO else [method]
    observed = history.observed()
    tests = {name: run_backtest(METHODS[name], history.values, observed, starts, steps) for name in names}
    chosen = _choose(tests) if method == AUTO else method
    values = np.clip(METHODS[chosen](history.values, horizon_days), 0.0, None)
    low, high = interval(tests[chosen], horizon_days)
    return _result(series, chosen, tests[chosen].daily_mape, values, values + low, values + high)


def _choose(tests: dict[str, Backtest]) -> str:
    """Holt-Winters, unless another candidate's back-tested total error is clearly lower (:data:`SWITCH_MARGIN`)."""
    best = min(tests, key=lambda name: tests[name].total_error)        # ties: the first listed
    default = tests[AUTO_CANDIDATES[0]].total_error
    return best if tests[best].total_error < SWITCH_MARGIN * default else AUTO_CANDIDATES[0]


def _normal_mean(history: History, series: SpendSeries, horizon: int, method: str) -> Forecast:
    """The mean of the (last 28) known days, +- 1.96 standard deviations of them (independent normal days)."""
    known = history.values[history.known][-28:]
    mean = float(np.mean(known))
    spread = 1.96 * float(np.std(known, ddof=1)) * np.sqrt(1 + 1 / len(known)) if len(known) > 1 else mean
    values = np.full(horizon, mean)
    return _result(series, method, None, values, values - spread, values + spread)


def _result(series: SpendSeries, method: str, mape: float | None, values: np.ndarray, lower: np.ndarray,
            upper: np.ndarray) -> Forecast:
    lower = np.clip(np.minimum(lower, values), 0.0, None)
    upper = np.maximum(upper, values)
    points = [ForecastPoint(series.end + timedelta(days=i), float(values[i]), float(lower[i]), float(upper[i]))
              for i in range(len(values))]
    return Forecast(method=method, backtest_mape=mape, points=points)
