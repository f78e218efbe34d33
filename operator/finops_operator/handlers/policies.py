"""FinOpsPolicy handlers: validate on create/update/resume, run on a timer when due.

The timer ticks every ``FINOPS_TIMER_INTERVAL_SECONDS`` (30 by default) and runs
the policy only when it is due (see ``api.schedule``). The run itself is
blocking and goes to a thread; a per-policy lock keeps two runs of one policy
apart in this process, the policy's run Lease (``api.coordination``) across
operators, and every exception stays inside its policy. Log lines written
during a run name the policy (``logs.about``).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from ..api.coordination import Claim
from ..api.events import post_event
from ..api.healthjob import health_data_of
from ..api.policy import PolicySpec, read_policy
from ..api.runs import RunOutcome, execute_run, forget_metrics, record_metrics, retry_delay, run_events, run_status
from ..api.schedule import (
    RETRY,
    RUN_NOW,
    RUN_NOW_HANDLED,
    due,
    handled_marker,
    invalid_status,
    retry_annotation,
    retry_state,
    scheduled_status,
)
from ..errors import FinOpsError
from .logs import about
from .startup import CONFIG, plain

RESOURCE = ("finops.dev", "v1alpha1", "finopspolicies")
TIMER_INTERVAL = CONFIG.timer_interval_seconds


def utcnow() -> datetime:
    """Test seam."""
    return datetime.now(UTC)


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE)
def validate(body: kopf.Body, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger,
             **_: Any) -> None:
    """Check the spec; schedule the next run, or report InvalidSpec (condition + Event) and give up."""
    raw, now = plain(body), utcnow()
    try:
        policy = read_policy(raw, operator_ns=memo.operator_ns, allow_local_git=memo.config.allow_local_git)
    except FinOpsError as exc:
        generation = int(raw["metadata"].get("generation") or 0)
        patch.status.update(invalid_status(exc, generation, plain(status), now))
        post_event(memo.api_client, raw, type_="Warning", reason="InvalidSpec", message=str(exc), now=now,
                   instance=memo.config.instance)
        raise kopf.PermanentError(f"invalid spec: {exc}") from None
    patch.status.update(scheduled_status(policy, plain(status), now))
    logger.info("policy valid; next run %s", patch.status["nextRunTime"])


@kopf.on.delete(*RESOURCE, optional=True)
async def forget(uid: str, name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    """The policy is gone: so are its run Lease (best effort; no finalizer waits for this) and its metrics."""
    forget_metrics(namespace, name)
    await asyncio.to_thread(memo.coordinator.forget, uid)


@kopf.timer(*RESOURCE, interval=TIMER_INTERVAL, initial_delay=min(5.0, TIMER_INTERVAL))
async def tick(body: kopf.Body, meta: kopf.Meta, status: kopf.Status, name: str, namespace: str,
               patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger,
               approved_opportunities: kopf.Index, **_: Any) -> None:
    """Run the policy if it is due; write status, annotations, Events and metrics."""
    raw, now = plain(body), utcnow()
    try:
        policy = read_policy(raw, operator_ns=memo.operator_ns, allow_local_git=memo.config.allow_local_git)
    except FinOpsError:
        return                                        # reported by `validate`; nothing runs until the spec changes
    if due(now, plain(status), dict(meta.get("annotations") or {})) is None:
        if not status.get("nextRunTime"):
            patch.status.update(scheduled_status(policy, plain(status), now))
        return
    lock: asyncio.Lock = memo.locks.setdefault((namespace, name), asyncio.Lock())
    if lock.locked():
        return
    async with lock:
        claim = await _claim(memo, raw, now, logger)
        if claim is None:
            return
        fresh = claim.body                            # as the API has it now, not as this watch last saw it
        annotations = dict((fresh["metadata"].get("annotations") or {}))
        reason = due(now, fresh.get("status") or {}, annotations)
        if reason is None:                            # another replica has just run it
            await asyncio.to_thread(memo.coordinator.release, claim)
            return
        with about(raw):
            outcome = await _run(policy, memo, claim, namespace, name, now, reason, logger,
                                 frozenset(approved_opportunities.get((namespace, name), [])))
        status = _report(outcome, raw, fresh.get("status") or {}, annotations, reason, patch, memo, logger)
        gathered = health_data_of(outcome)
        if gathered is not None:
            memo.health_inputs[(namespace, name)] = gathered
        # The result first, then "handled": kopf patches annotations before status, so a crash between the two
        # would mark a run-now handled whose result is lost. The status goes now; kopf's patch carries the rest.
        try:
            await asyncio.to_thread(memo.coordinator.record, namespace, name, status)
        except FinOpsError as exc:
            logger.warning("status written with the annotations instead: %s", exc)
            patch.status.update(status)
    await asyncio.to_thread(_post_events, memo, raw, outcome)


async def _claim(memo: kopf.Memo, raw: dict[str, Any], now: datetime, logger: logging.Logger) -> Claim | None:
    """The policy's run Lease and its fresh body; None when another operator holds it or the API refuses."""
    meta = raw["metadata"]
    try:
        claim = await asyncio.to_thread(memo.coordinator.claim, meta["namespace"], meta["name"], meta.get("uid"), now)
    except FinOpsError as exc:
        logger.warning("not running now: %s", exc)
        return None
    if claim is not None and claim.body is None:      # deleted meanwhile
        return None
    return claim


async def _run(policy: PolicySpec, memo: kopf.Memo, claim: Claim, namespace: str, name: str, now: datetime,
               reason: str, logger: logging.Logger, approved: frozenset[str]) -> RunOutcome:
    logger.info("running policy (%s)", reason)
    renewing = asyncio.create_task(_renew(memo, claim, logger))
    try:
        return await asyncio.to_thread(execute_run, policy, memo.api_client, now=now,
                                       workdir=memo.workdir / namespace / name, approved=approved,
                                       cluster=memo.config.cluster_name, region=memo.config.aws_region)
    except Exception as exc:  # a bug must not take the operator (or other policies) down
        logger.exception("run failed unexpectedly")
        return RunOutcome(policy=policy, started=now, errors={"internal": f"{type(exc).__name__}: {exc}"},
                          permanent={"internal": False})
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
        try:
            await asyncio.to_thread(memo.coordinator.finish, claim, utcnow())
        except FinOpsError as exc:
            logger.warning("cannot renew the run Lease after the run: %s", exc)


async def _renew(memo: kopf.Memo, claim: Claim, logger: logging.Logger) -> None:
    """Keep the run Lease while the run lasts (every third of its duration)."""
    while True:
        await asyncio.sleep(max(1.0, memo.config.lease_seconds / 3))
        try:
            if not await asyncio.to_thread(memo.coordinator.renew, claim, utcnow()):
                logger.warning("the run Lease %s was taken over while the run was going on", claim.name)
                return
        except FinOpsError as exc:
            logger.warning("cannot renew the run Lease: %s", exc)


def _report(outcome: RunOutcome, raw: dict[str, Any], status: dict[str, Any], annotations: dict[str, str],
            reason: str, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger) -> dict[str, Any]:
    """The annotations into kopf's ``patch``; returns the status to write; records metrics and logs the end."""
    policy: PolicySpec = outcome.policy
    now = utcnow()
    next_at = policy.next_run(now)
    retry = None
    if outcome.transient:
        attempt = (retry_state(annotations) or (0, now))[0] + 1
        at = now + retry_delay(attempt, base=memo.retry_base)
        if at < next_at:
            retry = (attempt, at)
    patch.metadata.annotations[RETRY] = retry_annotation(*retry) if retry else None
    if reason == "run-now":
        patch.metadata.annotations[RUN_NOW_HANDLED] = handled_marker(annotations.get(RUN_NOW))
    new_status = run_status(outcome, status, now=now, next_at=next_at, retry=retry)
    try:
        record_metrics(outcome, finished=now)
    except Exception:  # metrics never break a run
        logger.exception("cannot record metrics")
    level = logging.INFO if outcome.ok else logging.WARNING
    logger.log(level, "run finished in %.1fs: %s", outcome.seconds,
               "ok" if outcome.ok else "; ".join(f"{k}: {v}" for k, v in outcome.errors.items()))
    return new_status


def _post_events(memo: kopf.Memo, raw: dict[str, Any], outcome: RunOutcome) -> None:
    for type_, reason, message in run_events(outcome):
        post_event(memo.api_client, raw, type_=type_, reason=reason, message=message, instance=memo.config.instance)
