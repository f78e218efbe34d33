"""The daily job per team: health, insights, store, deliver (critical at once, the rest as a digest).

    runs = run_due_teams(plans, now, last_run=stored.history.last_run, job=TeamJob(...))

Each due team (:func:`..health.due`: its local time has passed on its local day and it has not run that
day) runs alone: an exception in one team is logged, counted (outcome ``error``) and the next team runs.
Every run is logged and exported (:func:`..metrics.record_health_run`): duration, outcome, insights made,
alerts sent. The day is remembered per team only after the run, in the same ConfigMap write as the
scores (:mod:`.healthstore`), so a restart on the same day reruns nothing that finished and retries what
did not.

Insights: :func:`make_insights` (``finops_operator.insights.generate`` over the team's slice of the data);
delivery: :func:`channel_delivery` (the namespace's NotificationSubscriptions route them; the engine sends
critical ones at once and batches the rest into a digest).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from ..health import BudgetStanding, HealthData, HealthScore, TeamPlan, due
from ..health.history import StoredInsight
from ..models.insights import Insight

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TeamRun:
    team: str
    day: date
    outcome: str                 # ok | error
    seconds: float
    insights: int = 0
    alerts: int = 0
    error: str | None = None


def team_slice(data: HealthData, team: str) -> HealthData:
    """The team's part of the data: its container and volume charges, its opportunities, its budgets."""
    from ..models.costs import ALLOCATED, charge_key, row_kind
    allocation = data.allocation
    if allocation is not None:
        charges = [c for c in allocation.charges if row_kind(c) == ALLOCATED and charge_key(c, "team") == team]
        allocation = replace(allocation, charges=charges, bill_total=None, notes=list(allocation.notes))
    return replace(data, allocation=allocation,
                   opportunities=[o for o in data.opportunities or () if o.team == team],
                   budgets=[b for b in data.budgets or () if team in b.teams])


def make_insights(data: HealthData, team: str, scores: list[HealthScore], now: datetime) -> list[Insight]:
    """The team's insights: :func:`finops_operator.insights.generate` over the team's slice of the data."""
    from ..insights import InsightData, generate
    mine = team_slice(data, team)
    made = generate(InsightData(allocation=mine.allocation, opportunities=list(mine.opportunities or ()), now=now,
                                team=team))
    return [i for i in made if i.team in (team, None)]


def stored_insight(insight: Insight, day: date) -> StoredInsight:
    """What the health ConfigMap keeps of an insight: id, title, priority, category."""
    return StoredInsight(insight.id, insight.title, insight.priority.value, insight.category.value, day)


def channel_delivery(api_client: Any, namespace: str, now: datetime) -> Callable[[str, list[Insight]], int]:
    """Deliver through the namespace's NotificationSubscriptions (:func:`.notifycluster.enqueue_insights`): the
    engine sends critical insights at once and batches the rest into digests. Returns the items queued."""
    from .notifycluster import enqueue_insights

    def deliver(team: str, insights: list[Insight]) -> int:
        return enqueue_insights(api_client, namespace, insights, now) if insights else 0
    return deliver


@dataclass
class TeamJob:
    """One team's work; the pieces are injected so tests (and the handler) choose them."""

    compute: Callable[[str], tuple[HealthData, list[HealthScore]]]       # team -> its data and scores
    store: Callable[[str, date, list[HealthScore], list[Any]], None]     # scores, insights and the day, durably
    insights: Callable[[HealthData, str, list[HealthScore]], list[Any]]
    deliver: Callable[[str, list[Any]], int]

    def __call__(self, team: str, day: date) -> tuple[int, int]:
        data, scores = self.compute(team)
        made = self.insights(data, team, scores)
        self.store(team, day, scores, made)
        return len(made), self.deliver(team, made)


def run_due_teams(plans: list[TeamPlan], now: datetime, *, last_run: Mapping[str, date],
                  job: Callable[[str, date], tuple[int, int]],
                  clock: Callable[[], float] = time.monotonic) -> list[TeamRun]:
    """Run every due team, each isolated; returns one TeamRun per team that ran (or failed)."""
    from .. import metrics
    runs = []
    for plan in plans:
        day = due(plan, now, last_run=last_run.get(plan.team))
        if day is None:
            continue
        started = clock()
        try:
            made, sent = job(plan.team, day)
            run = TeamRun(plan.team, day, "ok", clock() - started, made, sent)
            log.info("team %s daily job for %s: ok in %.2fs, %d insights, %d queued for delivery", plan.team, day,
                     run.seconds, made, sent)
        except Exception as exc:  # one team's failure never stops another's
            run = TeamRun(plan.team, day, "error", clock() - started, error=f"{type(exc).__name__}: {exc}")
            log.warning("team %s daily job for %s failed after %.2fs: %s", plan.team, day, run.seconds, run.error)
        metrics.record_health_run(plan.team, outcome=run.outcome, seconds=run.seconds, insights=run.insights,
                                  alerts=run.alerts)
        runs.append(run)
    return runs


def health_data_of(outcome: Any) -> HealthData | None:
    """What a policy run gathered that health is computed from (None: the run allocated nothing and had no ledger)."""
    report = outcome.report
    if report is None and outcome.ledger is None:
        return None
    return HealthData(allocation=report.allocation if report else None, usage=report.usage if report else None,
                      opportunities=outcome.ledger.opportunities if outcome.ledger is not None else None,
                      team_label=outcome.policy.settings.allocation.team_label)


def budget_standings(bodies: list[dict[str, Any]], now: datetime) -> tuple[list[BudgetStanding], list[str]]:
    """Budgets as health sees them, from their objects (spec: amount and scope; status: state, spend, period).
    A budget not evaluated yet, or with an unreadable spec or status, is left out and said in the notes."""
    from ..errors import FinOpsError
    from .budget import read_budget
    from .schedule import parse_time

    out, notes = [], []
    for body in bodies:
        status = body.get("status") or {}
        meta = body.get("metadata") or {}
        name = f"{meta.get('namespace')}/{meta.get('name')}"
        try:
            budget = read_budget(body)
            start, end = parse_time(status.get("periodStart")), parse_time(status.get("periodEnd"))
            spend, state = float(status["currentSpend"]), str(status["state"])
            if start is None or end is None or end <= start or not 0 <= spend < float("inf"):
                raise ValueError("no readable period or spend")
            elapsed = min(1.0, max(0.0, (now - start) / (end - start)))
        except (FinOpsError, KeyError, TypeError, ValueError) as exc:
            notes.append(f"Budget {name} left out of health: not evaluated or unreadable ({type(exc).__name__})")
            continue
        scope = budget.schema.scope if budget.schema is not None else None
        out.append(BudgetStanding(name, state, spend, float(budget.amount), elapsed,
                                  teams=tuple(getattr(scope, "teams", None) or ()),
                                  namespaces=tuple(getattr(scope, "namespaces", None) or ())))
    return out, notes


def run_daily(store: Any, owner: Any, data: HealthData, settings: Any, now: datetime, *,
              deliver: Callable[[str, list[Any]], int],
              insights: Callable[[HealthData, str, list[HealthScore]], list[Any]] | None = None) -> list[TeamRun]:
    """One policy's tick: score teams and namespaces, export them, run each due team's job (see the module)."""
    from .. import metrics
    from ..health import health_scores, team_plans, with_trend
    from ..health.history import kept_insights, ran, record

    stored = store.load(owner)
    trend = settings.trend_days

    def scored(by: str) -> list[HealthScore]:
        out = []
        for s in health_scores(data, by, settings.weights):
            days = stored.history.scores.get(s.key, {})
            out.append(with_trend(s, days, max(days, default=now.date()), trend))
        return out

    teams, namespaces = scored("team"), scored("namespace")
    metrics.export_health(owner.source, teams + namespaces)

    def keep(team: str, day: date, scores: list[HealthScore], made: list[Any]) -> None:
        def change(history):
            for s in [*scores, *namespaces]:
                if s.score is not None:
                    history = record(history, s.key, day, s.score)
            return kept_insights(ran(history, team, day), team, [stored_insight(i, day) for i in made])
        store.update(owner, change)

    job = TeamJob(compute=lambda team: (data, [s for s in teams if s.subject == team]), store=keep,
                  insights=insights or (lambda d, team, s: make_insights(d, team, s, now)), deliver=deliver)
    plans = team_plans(settings, {s.subject for s in teams})
    return run_due_teams(plans, now, last_run=stored.history.last_run, job=job)
