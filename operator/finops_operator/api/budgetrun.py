"""One evaluation of a Budget against live systems (blocking; the handler runs it in a thread).

    outcome = evaluate_budget(budget, api_client, status=body.get("status"), now=now, read_days=reader)

1. the daily history (:mod:`.spendstore`): the days not final yet, and on a new Budget the
   :data:`BACKFILL_DAYS` before it (the forecast needs them), are read (:mod:`.budgetcosts`) and merged;
2. :func:`..budgets.evaluate` with the memory the status holds (what fired in this period);
3. the status is written *before* anything fires (at most once: a crash after it loses an Event, never
   repeats one), then each crossing posts its Event, runs its action (:func:`run_action`), and the
   actions taken are written as budget events (a FreezeGrowth is remembered with its period,
   ``status.freezes``);
4. a remembered freeze whose threshold value is back under the line in a later period
   (``detectors.freeze.should_release``) is released (``release``: its pull request closed, a
   FreezeReleased Event) and forgotten; a failed release stays remembered and is retried next time.

Never raises for a failing source: the failure is Ready=False in status, naming the source and field.
"""
from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from ..budgets import (BudgetEvent, Crossing, Evaluation, Forecaster, EventKind, Freeze, Memory, evaluate, forecaster_for, local_day,
                       record_actions)
from ..budgets.history import SpendHistory, first_open_day, merge
from ..errors import FinOpsError
from ..models.insights import Insight
from ..models.spend import Anomaly, SpendSeries
from .budget import BudgetSpec
from .budgetstatus import evaluated_status, failed_status, memory_from_status
from .spendstore import SpendStore

log = logging.getLogger(__name__)
GROUP, VERSION, PLURAL = "finops.dev", "v1alpha1", "budgets"
BACKFILL_DAYS = 90               # what a new Budget reads back (the forecast's back-test wants three months)
SEVERE = ("Alert", "FreezeGrowth")
ACK_ANNOTATION = "finops.dev/acknowledge-anomalies"
MAX_ACKNOWLEDGED = 366           # days read from the annotation at most
ANOMALY_MIN_DAYS = 14            # known days before the detector runs

DayReader = Callable[[list[date]], dict[date, float]]
ActionRunner = Callable[[BudgetSpec, Crossing, Evaluation], str]
Releaser = Callable[[BudgetSpec, Freeze, Evaluation], str | None]     # what was closed, None: nothing was open


@dataclass
class BudgetOutcome:
    budget: BudgetSpec
    status: dict[str, Any]
    result: Evaluation | None = None
    error: FinOpsError | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)     # (type, reason, message) posted
    read_days: int = 0
    notes: list[str] = field(default_factory=list)


def update_history(store: SpendStore, budget: BudgetSpec, read_days: DayReader, now: datetime
                   ) -> tuple[SpendHistory, int, list[str]]:
    """Read the days the stored history lacks or has not finalised, merge them in; (history, days read, notes)."""
    zone = budget.rules().zone
    today = local_day(now, zone)
    stored = store.load(budget)
    history = stored.history
    first = today - timedelta(days=BACKFILL_DAYS)
    if history.series is not None:
        first = max(first, min(history.series.start, history.complete or today))
    wanted = history.missing(first, today)
    fresh = read_days(wanted) if wanted else {}
    complete = first_open_day(now, zone)
    known = {d: v for d, v in fresh.items() if not (math.isnan(v) and d >= complete)}
    notes = [stored.problem] if stored.problem else []
    notes += getattr(read_days, "notes", [])         # budgetcosts.BudgetCosts: e.g. the bill fell back on the book
    gaps = sum(1 for d in wanted if d < complete and math.isnan(fresh.get(d, math.nan)))
    if gaps:
        notes.append(f"{gaps} of the {len(wanted)} days read had no cost data (recorded as unknown)")
    merged = store.update(budget, lambda h: merge(h, known, today, complete=complete))
    return merged, len(wanted), notes


def evaluate_budget(budget: BudgetSpec, api_client: Any, *, status: dict[str, Any] | None, now: datetime,
                    read_days: Callable[[], DayReader], forecaster: Forecaster | None = None,
                    anomalies: Iterable[Anomaly] | None = None, acknowledged: frozenset[date] = frozenset(),
                    run_action: ActionRunner | None = None, release: Releaser | None = None,
                    post: Callable[[str, str, str], Any] | None = None,
                    notify: Callable[[str, list[Insight]], int] | None = None) -> BudgetOutcome:
    """Evaluate, write the status, fire what crossed (see the module's docstring). ``read_days`` builds the
    day reader (called here, so that finding the policy and its secrets fails into the status too);
    ``notify(namespace, insights)`` queues the critical anomaly insights (default: the namespace's
    NotificationSubscriptions, :func:`.notifycluster.enqueue_insights`)."""
    store = SpendStore(api_client)
    try:
        history, count, notes = update_history(store, budget, read_days(), now)
    except FinOpsError as exc:
        log.warning("budget %s not evaluated: %s", budget.key, exc)
        outcome = BudgetOutcome(budget, failed_status(budget, exc, status, now=now), error=exc)
        write_status(api_client, budget, outcome.status)
        return outcome
    spec = budget.schema
    if anomalies is None:
        anomalies = find_anomalies(history.series, acknowledged)
    result = evaluate(budget.rules(), history.series, now=now, memory=memory_from_status(status),
                      forecaster=forecaster or forecaster_for(spec.forecast.method if spec else "Auto"),
                      anomalies=anomalies)
    outcome = BudgetOutcome(budget, evaluated_status(budget, result, status, now=now, notes=notes), result,
                            read_days=count, notes=notes)
    _export(budget, result)
    if not write_status(api_client, budget, outcome.status):    # remembered before anything fires
        return outcome                                          # not remembered: fire nothing (next time)
    memory = result.memory
    if result.crossings:
        action = run_action or functools.partial(default_action, api_client=api_client)
        done = [(c, _fire(outcome, c, action, post)) for c in result.crossings]
        memory = record_actions(memory, done, now=now)
    if release is not None:
        memory = _release(outcome, memory, release, post, now)
    if memory is not result.memory:
        outcome.status = evaluated_status(budget, _with_memory(result, memory), status, now=now, notes=notes)
        write_status(api_client, budget, {"events": outcome.status["events"], "freezes": outcome.status["freezes"]})
    for event in result.memory.events:
        if event.kind.value == "AnomalyFound" and event.at == now:
            _post(outcome, post, "Warning", "AnomalyFound", event.message)
    _notify_anomalies(outcome, notify or functools.partial(_enqueue, api_client, now=now), now)
    return outcome


def _notify_anomalies(outcome: BudgetOutcome, notify: Callable[[str, list[Insight]], int], now: datetime) -> None:
    """Best effort: the new HIGH episodes as critical insights (after the status remembers them: at most once)."""
    from ..scrub import scrub
    from .notifycluster import anomaly_insights
    insights = anomaly_insights(outcome.budget.key, outcome.result.anomalies_found, now)
    if not insights:
        return
    try:
        queued = notify(outcome.budget.namespace, insights)
        log.info("budget %s: %d anomaly insights, %d queued for delivery", outcome.budget.key, len(insights), queued)
    except Exception as exc:  # delivery never fails the evaluation
        log.warning("budget %s: anomaly insights not queued for delivery: %s", outcome.budget.key, scrub(str(exc)))


def _enqueue(api_client: Any, namespace: str, insights: list[Insight], *, now: datetime) -> int:
    from .notifycluster import enqueue_insights
    return enqueue_insights(api_client, namespace, insights, now)


def find_anomalies(series: SpendSeries | None, acknowledged: frozenset[date] = frozenset()) -> list[Anomaly]:
    """Anomaly episodes in the stored daily history (the detector needs two weeks before it judges a day)."""
    from ..anomalies import detect
    if series is None or int(np.count_nonzero(~np.isnan(series.values))) < ANOMALY_MIN_DAYS:
        return []
    return detect(series, acknowledged=acknowledged)


def acknowledged_days(annotations: dict[str, str] | None) -> tuple[frozenset[date], str | None]:
    """Days named in ``finops.dev/acknowledge-anomalies`` (comma-separated YYYY-MM-DD): their episodes are not
    reported again. A malformed value is ignored as a whole and the problem returned (never a crash)."""
    raw = (annotations or {}).get(ACK_ANNOTATION, "").strip()
    if not raw:
        return frozenset(), None
    try:
        days = frozenset(date.fromisoformat(part.strip()) for part in raw.split(",")[:MAX_ACKNOWLEDGED] if part.strip())
    except ValueError:
        return frozenset(), (f"annotation {ACK_ANNOTATION} must list days as YYYY-MM-DD separated by commas, "
                             f"e.g. 2026-11-03,2026-11-10; ignored")
    return days, None


def _export(budget: BudgetSpec, result: Evaluation) -> None:
    from .. import metrics
    try:
        metrics.export_budget(budget.key, amount=float(budget.amount), spend=result.spend, forecast=result.forecast,
                              lower=result.lower, upper=result.upper, state=result.state.value)
    except Exception:  # metrics never break an evaluation
        log.exception("cannot export the metrics of %s", budget.key)


def _with_memory(result: Evaluation, memory) -> Evaluation:
    from dataclasses import replace
    return replace(result, memory=memory)


def _fire(outcome: BudgetOutcome, crossing: Crossing, run_action: ActionRunner, post) -> str:
    threshold = crossing.threshold
    type_ = "Warning" if threshold.action in SEVERE else "Normal"
    _post(outcome, post, type_, "ThresholdCrossed",
          f"{threshold.describe()} crossed: {crossing.value:.2f} USD >= {crossing.limit:.2f} USD "
          f"({'forecast' if threshold.forecasted else 'spend'}, period {outcome.result.period.key}); "
          f"action {threshold.action}")
    try:
        what = run_action(outcome.budget, crossing, outcome.result)
    except Exception as exc:  # an action failing must not lose the evaluation (it has been recorded)
        log.exception("budget %s: action %s failed", outcome.budget.key, threshold.action)
        what = f"failed: {type(exc).__name__}: {exc}"
    _post(outcome, post, "Warning" if what.startswith("failed") else "Normal", "ActionTaken",
          f"{threshold.action} for {threshold.describe()}: {what}")
    return what


def due_releases(memory: Memory, result: Evaluation, amount: float) -> list[Freeze]:
    """Remembered freezes to release now: a later period, the threshold's value back under it (pure)."""
    from ..detectors.freeze import should_release
    return [f for f in memory.freezes
            if should_release(f.period, result.period.key, result.forecast if f.forecasted else result.spend,
                              amount * f.percent / 100)]


def _release(outcome: BudgetOutcome, memory: Memory, release: Releaser, post, now: datetime) -> Memory:
    for freeze in due_releases(memory, outcome.result, float(outcome.budget.amount)):
        try:
            what = release(outcome.budget, freeze, outcome.result)
        except Exception as exc:  # kept: the next evaluation retries
            log.warning("budget %s: the freeze of %s (threshold %s) is not released yet: %s", outcome.budget.key,
                        freeze.period, freeze.threshold, exc)
            continue
        if what is not None:
            message = f"FreezeGrowth of threshold {freeze.threshold} released: {what}"
            _post(outcome, post, "Normal", "FreezeReleased", message)
            memory = memory.with_events([BudgetEvent(now, EventKind.ACTION_TAKEN, message, threshold=freeze.threshold,
                                                     period=outcome.result.period.key)])
        memory = memory.released(freeze.threshold)
    return memory


def _post(outcome: BudgetOutcome, post, type_: str, reason: str, message: str) -> None:
    outcome.events.append((type_, reason, message))
    if post is not None:
        post(type_, reason, message)


def default_action(budget: BudgetSpec, crossing: Crossing, result: Evaluation, *, api_client: Any = None) -> str:
    """What each action does now; see :mod:`.budgetactions`."""
    from .budgetactions import run_action
    return run_action(budget, crossing, result, api_client=api_client)


def write_status(api_client: Any, budget: BudgetSpec, status: dict[str, Any]) -> bool:
    """Merge-patch the Budget's status subresource; False (logged) when the API refuses."""
    import kubernetes
    try:
        kubernetes.client.CustomObjectsApi(api_client).patch_namespaced_custom_object_status(
            GROUP, VERSION, budget.namespace, PLURAL, budget.name, {"status": status}, _preload_content=False)
        return True
    except Exception as exc:
        log.warning("cannot write the status of %s: %s", budget.source, getattr(exc, "reason", exc))
        return False
