"""A Budget's status: written from an :class:`~..budgets.Evaluation`, read back as the budget's
:class:`~..budgets.Memory` (what fired in which period, the events), so a restarted operator fires
nothing twice. Pure.

    memory = memory_from_status(body.get("status"))
    status = evaluated_status(budget, result, previous, now=now)
"""
from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from ..budgets import BudgetEvent, Evaluation, EventKind, Freeze, Memory, State, percent_of, utc_bounds
from ..errors import FinOpsError
from ..money import decimal_string
from ..scrub import scrub
from .budget import BudgetSpec
from .conditions import condition, merge_conditions, timestamp

log = logging.getLogger(__name__)
MAX_EVENT_MESSAGE = 1024
MAX_METHOD = 32                 # status.forecastMethod's maxLength in crds/budgets.yaml


def _time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def memory_from_status(status: dict[str, Any] | None) -> Memory:
    """The memory a previous evaluation wrote (anything unreadable in it is skipped, never fatal)."""
    status = status or {}
    fired: dict[str, datetime] = {}
    for item in status.get("triggeredThresholds") or []:
        if not isinstance(item, dict) or not isinstance(item.get("percent"), int):
            continue
        at = _time(item.get("triggeredAt"))
        if at is not None:
            fired[f"{item['percent']}{'-forecast' if item.get('forecasted') else ''}"] = at
    events = []
    for item in status.get("events") or []:
        at = _time(item.get("time")) if isinstance(item, dict) else None
        if at is None or item.get("type") not in EventKind._value2member_map_:
            continue
        events.append(BudgetEvent(at, EventKind(item["type"]), str(item.get("message") or ""),
                                  threshold=item.get("threshold"), period=item.get("period")))
    anomalies = tuple(a for a in status.get("anomaliesReported") or [] if isinstance(a, str))
    period = status.get("period") if isinstance(status.get("period"), str) else None
    return Memory(period, fired if period else {}, anomalies if period else (), tuple(events),
                  freezes_from_status(status))


def freezes_from_status(status: dict[str, Any]) -> tuple[Freeze, ...]:
    """The FreezeGrowth actions not released yet (``status.freezes``); unreadable items are skipped."""
    out = []
    for item in status.get("freezes") or []:
        if not isinstance(item, dict) or not isinstance(item.get("period"), str):
            continue
        threshold, at = item.get("threshold"), _time(item.get("since"))
        if isinstance(threshold, str) and re.fullmatch(r"[0-9]{1,4}(-forecast)?", threshold) and at is not None:
            out.append(Freeze(threshold, item["period"], at))
    return tuple(out)


def freeze_items(memory: Memory) -> list[dict[str, Any]]:
    return [{"threshold": f.threshold, "period": f.period, "since": timestamp(f.at)} for f in memory.freezes]


def _threshold_items(budget: BudgetSpec, memory: Memory) -> list[dict[str, Any]]:
    out = []
    for percent, action, forecasted in budget.thresholds:
        at = memory.fired.get(f"{percent}{'-forecast' if forecasted else ''}")
        if at is not None:
            out.append({"percent": percent, "forecasted": forecasted, "action": action, "triggeredAt": timestamp(at)})
    return out


def _event_item(event: BudgetEvent) -> dict[str, Any]:
    item: dict[str, Any] = {"time": timestamp(event.at), "type": event.kind.value,
                            "message": scrub(event.message, limit=MAX_EVENT_MESSAGE)}
    if event.threshold:
        item["threshold"] = event.threshold
    if event.period:
        item["period"] = event.period
    return item


def method_name(method: str) -> str:
    """The method for ``status.forecastMethod`` (at most 32 characters): its name without the explanation the
    forecaster may add ("moving-average (history of 7 days, fewer than 14)"); the Ready message keeps it whole."""
    return method.split(" (", 1)[0][:MAX_METHOD]


def summary(budget: BudgetSpec, result: Evaluation) -> str:
    amount = float(budget.amount)
    mape = f", back-tested error {result.mape:.0%}" if result.mape is not None else ""
    return (f"{result.state.value}: {decimal_string(result.spend)} of {budget.amount} USD spent "
            f"({percent_of(result.spend, amount)}%) in the period {result.period.start} to {result.period.end}; "
            f"forecast {decimal_string(result.forecast)} USD (95%: {decimal_string(result.lower)} to "
            f"{decimal_string(result.upper)}, {result.method}{mape}, {result.history_days} days of history)")


def evaluated_status(budget: BudgetSpec, result: Evaluation, previous: dict[str, Any] | None, *,
                     now: datetime, notes: list[str] = ()) -> dict[str, Any]:
    """The status after an evaluation (a merge patch); ``notes``: what a person should know (e.g. a data gap)."""
    rules = budget.rules()
    start, end = utc_bounds(result.period, rules.zone)
    amount, generation = float(budget.amount), budget.generation
    message = summary(budget, result) + "".join(f"; {n}" for n in notes)
    exceeded = result.state is State.EXCEEDED
    conditions = [condition("Ready", True, "Evaluated", message, generation=generation),
                  condition("Exceeded", exceeded, "SpendOverAmount" if exceeded else "SpendUnderAmount",
                            f"{decimal_string(result.spend)} of {budget.amount} USD", generation=generation)]
    return {
        "observedGeneration": generation, "state": result.state.value, "period": result.period.key,
        "periodStart": timestamp(start), "periodEnd": timestamp(end),
        "currentSpend": decimal_string(result.spend), "forecastedSpend": decimal_string(result.forecast),
        "forecastLower": decimal_string(result.lower), "forecastUpper": decimal_string(result.upper),
        "forecastMethod": method_name(result.method),        # why it was chosen: in the Ready message
        "forecastMapePercent": None if result.mape is None else min(10000, round(result.mape * 100)),
        "usedPercent": percent_of(result.spend, amount), "forecastPercent": percent_of(result.forecast, amount),
        "historyDays": result.history_days, "lastEvaluatedTime": timestamp(now),
        "triggeredThresholds": _threshold_items(budget, result.memory),
        "anomaliesReported": list(result.memory.anomalies),
        "freezes": freeze_items(result.memory),
        "events": [_event_item(e) for e in result.memory.events],
        "conditions": merge_conditions((previous or {}).get("conditions"), conditions, now=now),
    }


def failed_status(budget: BudgetSpec, error: FinOpsError, previous: dict[str, Any] | None, *,
                  now: datetime) -> dict[str, Any]:
    """Ready=False naming the failure; the rest of the status (and its memory) stays as it was."""
    reason = "NoPolicy" if error.field == "spec.policyRef" else \
        "PermanentError" if error.permanent else "TransientError"
    text = f"{error}" + ("" if error.permanent else "; retried at the next evaluation")
    return {"observedGeneration": budget.generation, "lastEvaluatedTime": timestamp(now),
            "conditions": merge_conditions((previous or {}).get("conditions"),
                                           [condition("Ready", False, reason, text, generation=budget.generation)],
                                           now=now)}


def accepted_status(budget: BudgetSpec, previous: dict[str, Any] | None, *, now: datetime) -> dict[str, Any]:
    """After validation: Ready stays as the last evaluation left it, unless it said the spec was invalid."""
    conditions = (previous or {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    if ready is not None and ready.get("reason") != "InvalidSpec":
        return {}
    message = (f"accepted: {budget.amount} {budget.currency} per {budget.period.lower()} period, "
               f"{len(budget.thresholds)} thresholds; waiting for the first evaluation")
    return {"conditions": merge_conditions(conditions, [condition("Ready", True, "Accepted", message,
                                                                  generation=budget.generation)], now=now)}
