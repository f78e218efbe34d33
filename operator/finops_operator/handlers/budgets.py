"""Budget handlers: validate on create/update/resume; evaluate on a timer.

The timer ticks every ``FINOPS_BUDGET_INTERVAL_SECONDS`` (900 by default) and evaluates the budget
(``api.budgetrun``) in a thread: the daily history is brought up to date from the namespace's
FinOpsPolicy data sources, spend, forecast and state go to status, crossed thresholds fire once per
period (remembered in status, so a restarted operator fires nothing twice), Events are posted.
A per-budget lock keeps two evaluations of one budget apart in this process.
"""
from __future__ import annotations

import asyncio
import functools
import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from ..api.budget import read_budget, rejected_status
from ..api.budgetactions import PolicyAccess, release, run_action
from ..api.budgetcosts import budget_policy, cost_reader
from ..api.budgetrun import acknowledged_days, evaluate_budget
from ..api.budgetstatus import accepted_status
from ..api.events import post_event
from ..errors import ConfigError, FinOpsError
from .logs import about
from .startup import CONFIG, plain

RESOURCE = ("finops.dev", "v1alpha1", "budgets")
INTERVAL = CONFIG.budget_interval_seconds


def utcnow() -> datetime:
    """Test seam."""
    return datetime.now(UTC)


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE)
def validate_budget(body: kopf.Body, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo,
                    logger: logging.Logger, **_: Any) -> None:
    raw, now = plain(body), utcnow()
    generation = int(raw["metadata"].get("generation") or 0)
    try:
        budget = read_budget(raw)
    except ConfigError as exc:
        patch.status.update(rejected_status(exc, generation, plain(status), now))
        post_event(memo.api_client, raw, type_="Warning", reason="InvalidSpec", message=str(exc), now=now,
                   instance=memo.config.instance)
        raise kopf.PermanentError(f"invalid spec: {exc}") from None
    patch.status.update(accepted_status(budget, plain(status), now=now))
    logger.info("budget accepted: %s %s per %s", budget.amount, budget.currency, budget.period)


@kopf.on.delete(*RESOURCE, optional=True)
def forget_budget(namespace: str, name: str, **_: Any) -> None:
    """The budget is gone: so are its gauges (its history ConfigMap goes with it: owner reference)."""
    from .. import metrics
    metrics.forget_budget(f"{namespace}/{name}")


@kopf.timer(*RESOURCE, interval=INTERVAL, initial_delay=min(5.0, INTERVAL))
async def evaluate(body: kopf.Body, status: kopf.Status, name: str, namespace: str, memo: kopf.Memo,
                   logger: logging.Logger, **_: Any) -> None:
    """Evaluate the budget; the status is written by ``api.budgetrun`` itself (before anything fires)."""
    raw = plain(body)
    try:
        budget = read_budget(raw)
    except FinOpsError:
        return                                    # reported by validate_budget; nothing runs until the spec changes
    lock: asyncio.Lock = memo.locks.setdefault(("budget", namespace, name), asyncio.Lock())
    if lock.locked():
        return
    async with lock:
        with about(raw):
            outcome = await asyncio.to_thread(_evaluate, budget, raw, plain(status), memo)
    if outcome.error is not None:
        logger.warning("budget not evaluated: %s", outcome.error)
    elif outcome.result is not None:
        logger.info("budget %s: %s USD spent, forecast %.2f (%s); %d days read", outcome.result.state.value,
                    f"{outcome.result.spend:.2f}", outcome.result.forecast, outcome.result.method, outcome.read_days)


def _evaluate(budget, raw: dict[str, Any], status: dict[str, Any], memo: kopf.Memo):
    now = utcnow()

    def reader():
        policy = budget_policy(memo.api_client, budget, operator_ns=memo.operator_ns,
                               allow_local_git=memo.config.allow_local_git)
        return cost_reader(policy, budget, memo.api_client, cluster=memo.config.cluster_name,
                           workdir=memo.workdir / budget.namespace / budget.name, region=memo.config.aws_region,
                           now=now)

    post = functools.partial(_post, memo, raw, now)
    acknowledged, problem = acknowledged_days(raw["metadata"].get("annotations"))
    if problem:
        post("Warning", "InvalidAnnotation", problem)
    access = PolicyAccess(memo.api_client, operator_ns=memo.operator_ns, now=now,
                          workdir=memo.workdir / budget.namespace / budget.name,
                          allow_local_git=memo.config.allow_local_git, cluster=memo.config.cluster_name,
                          region=memo.config.aws_region)
    return evaluate_budget(budget, memo.api_client, status=status, now=now, read_days=reader, post=post,
                           acknowledged=acknowledged, run_action=functools.partial(run_action, access=access),
                           release=functools.partial(release, access=access))


def _post(memo: kopf.Memo, raw: dict[str, Any], now: datetime, type_: str, reason: str, message: str) -> None:
    post_event(memo.api_client, raw, type_=type_, reason=reason, message=message, now=now,
               instance=memo.config.instance)
