"""Evaluate one budget: spend to date, forecast to the period's end, state, and which thresholds fire now.

    result = evaluate(rules, history, now=now, memory=Memory.from_status(...), forecaster=forecaster_for("auto"),
                      anomalies=[])
    result.state, result.spend, result.forecast, result.crossings      # crossings: fire their actions now
    result.memory                                                      # write back to status (hysteresis)

Pure. ``history`` holds cost per calendar day in the budget's time zone (today's value is the partial
day so far). The forecast is made from the complete days before today, for today through the period's
last day; today counts with the larger of its spend so far and its forecast. The interval of the total
is the sum of the daily bounds (errors of consecutive days move together, so this is the honest width,
not a sqrt-of-sum narrowing).

Hysteresis: a threshold fires when its value (spend, or the forecast when ``forecasted``) reaches its
share of the amount and it has not fired in this period (:class:`Memory`, kept in the Budget's status).
A dip under the line and a second crossing fire nothing; a new period starts with nothing fired.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import Enum
from zoneinfo import ZoneInfo

import numpy as np

from ..models.spend import Anomaly, Forecast, SpendSeries
from .periods import Period, local_day, period_of

Forecaster = Callable[[SpendSeries, int], Forecast]
MAX_EVENTS = 20                 # budget events kept in status, newest last
MAX_FREEZES = 10                # the status schema's bound (one per threshold)
MAX_ANOMALIES = 64              # anomaly episodes remembered per period (reported once each)
MIN_FORECAST_DAYS = 7           # forecasted thresholds wait for a week of history
MAX_PERCENT = 100000            # the status schema's bound


class State(str, Enum):
    OK = "OK"
    WARNING = "Warning"                       # a threshold is crossed, the amount is not
    FORECAST_EXCEEDED = "ForecastExceeded"    # the forecast to the period's end passes the amount
    EXCEEDED = "Exceeded"                     # spend so far passes the amount


class EventKind(str, Enum):
    THRESHOLD_CROSSED = "ThresholdCrossed"
    ACTION_TAKEN = "ActionTaken"
    ANOMALY_FOUND = "AnomalyFound"


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    percent: int
    action: str                               # Notify | Alert | FreezeGrowth
    forecasted: bool = False

    @property
    def id(self) -> str:
        """The threshold's name in status (``80`` or ``100-forecast``)."""
        return f"{self.percent}{'-forecast' if self.forecasted else ''}"

    def describe(self) -> str:
        return f"{self.percent}% of the amount ({'forecast to the period end' if self.forecasted else 'spend so far'})"


@dataclass(frozen=True, slots=True)
class BudgetRules:
    """What :func:`evaluate` needs of a Budget's spec (USD)."""

    amount: float
    period: str                               # Monthly | Quarterly | Yearly
    thresholds: tuple[ThresholdRule, ...]
    time_zone: str = "UTC"
    anchor: date | None = None                # spec.startDate

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def period_at(self, now: datetime) -> Period:
        return period_of(local_day(now, self.zone), self.period, self.anchor)


@dataclass(frozen=True, slots=True)
class BudgetEvent:
    at: datetime
    kind: EventKind
    message: str
    threshold: str | None = None              # ThresholdRule.id
    period: str | None = None                 # Period.key


@dataclass(frozen=True, slots=True)
class Freeze:
    """A FreezeGrowth that fired and is not released yet: its threshold and the period it fired in.

    Kept across periods (unlike what fired): the release closes its pull request in a later period once
    the threshold's value is back under the line (``detectors.freeze.should_release``).
    """

    threshold: str                            # ThresholdRule.id ("100", "90-forecast")
    period: str                               # Period.key it fired in
    at: datetime

    @property
    def percent(self) -> int:
        return int(self.threshold.split("-", 1)[0])

    @property
    def forecasted(self) -> bool:
        return self.threshold.endswith("-forecast")


@dataclass(frozen=True, slots=True)
class Memory:
    """What the budget remembers between evaluations (its status): the period, what fired in it, events."""

    period: str | None = None                 # Period.key the fired thresholds belong to
    fired: dict[str, datetime] = field(default_factory=dict)    # ThresholdRule.id -> when it fired
    anomalies: tuple[str, ...] = ()           # anomaly episodes reported in this period (start day ISO)
    events: tuple[BudgetEvent, ...] = ()
    freezes: tuple[Freeze, ...] = ()          # FreezeGrowth actions not released yet (kept across periods)

    def for_period(self, period: Period) -> "Memory":
        """This memory in ``period``: a new period forgets what fired (events and freezes stay)."""
        if self.period == period.key:
            return self
        return Memory(period.key, {}, (), self.events, self.freezes)

    def with_freeze(self, freeze: Freeze) -> "Memory":
        """Remember ``freeze`` (replacing an older one of its threshold)."""
        kept = tuple(f for f in self.freezes if f.threshold != freeze.threshold)
        return replace(self, freezes=(*kept, freeze)[-MAX_FREEZES:])

    def released(self, threshold: str) -> "Memory":
        return replace(self, freezes=tuple(f for f in self.freezes if f.threshold != threshold))

    def with_events(self, new: Iterable[BudgetEvent]) -> "Memory":
        return replace(self, events=(*self.events, *new)[-MAX_EVENTS:])


@dataclass(frozen=True, slots=True)
class Crossing:
    """A threshold that fires now (once in its period)."""

    threshold: ThresholdRule
    value: float                              # the spend or forecast that crossed
    limit: float                              # amount x percent
    at: datetime


@dataclass(frozen=True, slots=True)
class Evaluation:
    period: Period
    spend: float                              # spend so far in the period (today's partial day included)
    forecast: float                           # expected spend by the period's end
    lower: float                              # its 95% interval
    upper: float
    method: str                               # the forecast method, "none" without history
    mape: float | None                        # the method's back-tested error (0.05 = 5%)
    history_days: int                         # complete days of history the forecast had
    state: State
    crossings: list[Crossing]
    memory: Memory
    anomalies_found: tuple[Anomaly, ...] = ()  # episodes reported for the first time now (AnomalyFound events)


def percent_of(value: float, amount: float) -> int:
    """Whole percent of ``amount`` (rounded down, within the status schema's bound)."""
    return int(min(MAX_PERCENT, max(0, math.floor(value / amount * 100)))) if amount > 0 else 0


def evaluate(rules: BudgetRules, history: SpendSeries | None, *, now: datetime, memory: Memory,
             forecaster: Forecaster, anomalies: Iterable[Anomaly] = ()) -> Evaluation:
    """The budget at ``now`` (see the module's docstring). Never raises for data: an empty history is zero spend."""
    period = rules.period_at(now)
    today = local_day(now, rules.zone)
    memory = memory.for_period(period)
    spend = history.total(period.start, today + timedelta(days=1)) if history is not None else 0.0
    forecast, lower, upper, fc, known = _to_period_end(history, period, today, forecaster)
    crossings = _crossings(rules, spend, forecast, known, memory, now)
    events = [BudgetEvent(now, EventKind.THRESHOLD_CROSSED,
                          f"{c.threshold.describe()} crossed: {'forecast' if c.threshold.forecasted else 'spend'} "
                          f"{c.value:.2f} USD >= {c.limit:.2f} USD; action {c.threshold.action}",
                          threshold=c.threshold.id, period=period.key) for c in crossings]
    seen, found = _new_anomalies(anomalies, period, memory)
    events += [BudgetEvent(now, EventKind.ANOMALY_FOUND, anomaly_message(a), period=period.key) for a in found]
    fired = {**memory.fired, **{c.threshold.id: now for c in crossings}}
    memory = replace(memory, fired=fired, anomalies=seen).with_events(events)
    return Evaluation(period, spend, forecast, lower, upper, fc.method if fc else "none",
                      fc.backtest_mape if fc else None, known, _state(rules, spend, forecast, known),
                      crossings, memory, tuple(found))


def record_actions(memory: Memory, done: Iterable[tuple[Crossing, str]], *, now: datetime) -> Memory:
    """``memory`` with one ActionTaken event per (crossing, what was done); a FreezeGrowth is remembered
    with its period (whatever its pull request became: the release finds what is open)."""
    done = list(done)
    for crossing, _ in done:
        if crossing.threshold.action == "FreezeGrowth" and memory.period is not None:
            memory = memory.with_freeze(Freeze(crossing.threshold.id, memory.period, now))
    return memory.with_events(
        BudgetEvent(now, EventKind.ACTION_TAKEN, f"{c.threshold.action} for {c.threshold.describe()}: {what}",
                    threshold=c.threshold.id, period=memory.period) for c, what in done)


def anomaly_message(anomaly: Anomaly) -> str:
    days = anomaly.start.isoformat() + (f" to {anomaly.end.isoformat()}" if anomaly.end != anomaly.start else "")
    driver = f"; driver {anomaly.driver}" if anomaly.driver else ""
    return (f"{anomaly.severity.value} {anomaly.kind.value} {days}: {anomaly.actual:.2f} USD against "
            f"{anomaly.expected:.2f} USD expected{driver}")


# --------------------------------------------------------------------------- parts


def _to_period_end(history: SpendSeries | None, period: Period, today: date, forecaster: Forecaster
                   ) -> tuple[float, float, float, Forecast | None, int]:
    """(forecast total, lower, upper, the Forecast, complete days of history) for the period."""
    past = _complete_days(history, today)
    spent_before = history.total(period.start, today) if history is not None else 0.0
    partial = history.total(today, today + timedelta(days=1)) if history is not None else 0.0
    known = int(np.isfinite(past.values).sum()) if past is not None else 0
    horizon = (period.end - today).days
    fc = forecaster(past, horizon) if past is not None and known else None
    if fc is None or len(fc.points) < horizon:
        total = spent_before + partial
        return total, total, total, None, known
    points = fc.points[:horizon]
    first, rest = points[0], points[1:]
    total = spent_before + max(partial, first.value) + sum(p.value for p in rest)
    lower = spent_before + max(partial, first.lower) + sum(p.lower for p in rest)
    upper = spent_before + max(partial, first.upper) + sum(p.upper for p in rest)
    return total, lower, max(upper, total), fc, known


def _complete_days(history: SpendSeries | None, today: date) -> SpendSeries | None:
    """The history up to the day before ``today``, padded with unknown days so that it ends there."""
    if history is None or history.start >= today:
        return None
    n = (today - history.start).days
    values = np.full(n, np.nan)
    kept = history.values[:n]
    values[:len(kept)] = kept
    return SpendSeries(history.start, values)


def _crossings(rules: BudgetRules, spend: float, forecast: float, known: int, memory: Memory,
               now: datetime) -> list[Crossing]:
    out = []
    for threshold in rules.thresholds:
        if threshold.id in memory.fired or (threshold.forecasted and known < MIN_FORECAST_DAYS):
            continue
        value = forecast if threshold.forecasted else spend
        limit = rules.amount * threshold.percent / 100
        if value >= limit:
            out.append(Crossing(threshold, value, limit, now))
    return out


def _state(rules: BudgetRules, spend: float, forecast: float, known: int) -> State:
    if spend >= rules.amount:
        return State.EXCEEDED
    trusted = known >= MIN_FORECAST_DAYS
    if trusted and forecast >= rules.amount:
        return State.FORECAST_EXCEEDED
    for t in rules.thresholds:
        value = forecast if t.forecasted else spend
        if (trusted or not t.forecasted) and value >= rules.amount * t.percent / 100:
            return State.WARNING
    return State.OK


def _new_anomalies(anomalies: Iterable[Anomaly], period: Period, memory: Memory
                   ) -> tuple[tuple[str, ...], list[Anomaly]]:
    seen = list(memory.anomalies)
    found = []
    for anomaly in sorted(anomalies, key=lambda a: a.start):
        key = anomaly.start.isoformat()
        if period.start <= anomaly.start < period.end and key not in seen:
            seen.append(key)
            found.append(anomaly)
    return tuple(seen[-MAX_ANOMALIES:]), found
