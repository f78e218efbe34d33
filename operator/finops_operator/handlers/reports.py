"""FinOpsReport handlers: validate on create/update/resume; a timer generates each report when it is due.

The timer ticks every ``FINOPS_REPORT_INTERVAL_SECONDS`` (30 by default) and asks :func:`.reportrun.due_slot`
whether a scheduled time passed that was not generated yet (``status.lastSlot``: a restart in the same slot
generates nothing); the report is gathered, rendered, stored, pruned and its summary queued in a thread
(:func:`.reportrun.generate`). The operator serves the stored reports (``api/reportserve.py``).
"""
from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from ..api.conditions import condition, merge_conditions
from ..api.events import post_event
from ..api.report import read_report
from ..api.reportrun import due_slot, generate, scheduled_status
from ..api.schedule import invalid_status, parse_time
from ..errors import ConfigError, FinOpsError
from ..scrub import scrub
from .logs import about
from .startup import CONFIG, plain

RESOURCE = ("finops.dev", "v1alpha1", "finopsreports")
INTERVAL = CONFIG.report_interval_seconds


def utcnow() -> datetime:
    """Test seam."""
    return datetime.now(UTC)


def _created(raw: dict[str, Any]) -> datetime | None:
    return parse_time(str(raw["metadata"].get("creationTimestamp") or "").replace("Z", "+00:00"))


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE)
def validate_report(body: kopf.Body, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    raw, now = plain(body), utcnow()
    try:
        spec = read_report(raw, operator_ns=memo.operator_ns)
    except ConfigError as exc:
        generation = int(raw["metadata"].get("generation") or 0)
        invalid = invalid_status(exc, generation, plain(status), now)
        patch.status.update({k: v for k, v in invalid.items() if k != "nextRunTime"})
        post_event(memo.api_client, raw, type_="Warning", reason="InvalidSpec", message=str(exc), now=now,
                   instance=memo.config.instance)
        raise kopf.PermanentError(f"invalid spec: {exc}") from None
    patch.status.update(scheduled_status(spec, plain(status), _created(raw), now))


@kopf.timer(*RESOURCE, interval=INTERVAL, initial_delay=min(5.0, INTERVAL))
async def generate_report(body: kopf.Body, status: kopf.Status, patch: kopf.Patch, name: str, namespace: str,
                          memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    raw, now = plain(body), utcnow()
    try:
        spec = read_report(raw, operator_ns=memo.operator_ns)
    except FinOpsError:
        return                                   # reported by validate_report
    previous = plain(status)
    slot = due_slot(spec, previous, _created(raw), now)
    lock: asyncio.Lock = memo.locks.setdefault(("report", namespace, name), asyncio.Lock())
    if slot is None or lock.locked():
        return
    async with lock:
        with about(raw):
            try:
                updated = await asyncio.to_thread(generate, memo.api_client, spec, slot, previous, now,
                                                  dict(memo.health_inputs))
            except FinOpsError as exc:           # the slot stays due: the next tick tries again
                logger.warning("report %s not generated: %s", spec.key, exc)
                ready = condition("Ready", False, type(exc).__name__, scrub(str(exc)), generation=spec.generation)
                patch.status.update({"conditions": merge_conditions(previous.get("conditions"), [ready], now=now)})
                return
    patch.status.update(updated)
    last = updated.get("lastReport")
    if last:
        logger.info("report %s generated for %s: %s", spec.key, last["date"], last["path"])
        post_event(memo.api_client, raw, type_="Normal", reason="ReportGenerated",
                   message=f"report {last['date']} stored; served at {last['path']}", now=now,
                   instance=memo.config.instance)
