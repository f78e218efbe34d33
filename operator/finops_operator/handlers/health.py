"""Team health: each FinOpsPolicy's daily job per team, at the team's local time (``spec.health``).

The timer ticks every minute per policy; each tick scores teams and namespaces from what the policy's
latest run gathered in this process (allocation, usage, ledger: ``memo.health_inputs``, set by
``handlers.policies``) and every Budget's evaluated status (a kopf index), exports the gauges, and runs the teams that are due (``api.healthjob``), each
isolated, remembered durably in the policy's health ConfigMap (``api.healthstore``).
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import kopf

from ..api.healthjob import budget_standings, channel_delivery, run_daily
from ..api.healthstore import HealthOwner, HealthStore
from ..api.policy import read_policy
from ..errors import FinOpsError
from ..health import DailyJob
from .logs import about
from .startup import plain

RESOURCE = ("finops.dev", "v1alpha1", "finopspolicies")
BUDGETS = ("finops.dev", "v1alpha1", "budgets")
INTERVAL = 60.0


def utcnow() -> datetime:
    """Test seam."""
    return datetime.now(UTC)


@kopf.index(*BUDGETS)
def budget_bodies(body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    """Every Budget (spec and status), for the budget-adherence category; no listing per tick."""
    return {"all": plain(body)}


@kopf.timer(*RESOURCE, interval=INTERVAL, initial_delay=30.0)
async def daily_health(body: kopf.Body, name: str, namespace: str, memo: kopf.Memo, logger: logging.Logger,
                       budget_bodies: kopf.Index, **_: Any) -> None:
    raw = plain(body)
    try:
        policy = read_policy(raw, operator_ns=memo.operator_ns, allow_local_git=memo.config.allow_local_git)
    except FinOpsError:
        return                                    # reported by handlers.policies.validate
    settings = policy.settings.health
    data = getattr(memo, "health_inputs", {}).get((namespace, name))
    if settings.daily is DailyJob.DISABLED or data is None:
        return                                    # no run since start-up yet: nothing to score
    lock: asyncio.Lock = memo.locks.setdefault(("health", namespace, name), asyncio.Lock())
    if lock.locked():
        return
    owner = HealthOwner(namespace, name, raw["metadata"].get("uid") or "")
    budgets, notes = budget_standings(list(budget_bodies.get("all", [])), utcnow())
    data = replace(data, budgets=budgets, notes=[*data.notes, *notes])
    async with lock:
        with about(raw):
            try:
                now = utcnow()
                runs = await asyncio.to_thread(run_daily, HealthStore(memo.api_client), owner, data, settings, now,
                                               deliver=channel_delivery(memo.api_client, namespace, now))
            except FinOpsError as exc:
                logger.warning("team health not computed: %s", exc)
                return
    for run in runs:
        logger.info("team %s: daily job %s (%.2fs, %d insights, %d alerts)%s", run.team, run.outcome, run.seconds,
                    run.insights, run.alerts, f": {run.error}" if run.error else "")
