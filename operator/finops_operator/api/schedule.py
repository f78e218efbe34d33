"""When a policy runs, and the status it shows between runs (pure; the timer handler calls these).

A policy runs when one of these holds (checked on every timer tick):

* ``run-now``: the annotation ``finops.dev/run-now`` has a value not yet handled
  (the operator copies it to ``finops.dev/run-now-handled`` after the run), so
  ``kubectl annotate fpol NAME finops.dev/run-now=$(date +%s) --overwrite`` runs
  it once, and a restart does not run it again;
* ``retry``: a transient failure scheduled a retry (annotation ``finops.dev/retry``
  = ``{"attempt": n, "at": "<RFC 3339>"}``) and its time has come;
* ``schedule``: ``status.nextRunTime`` has passed.

The retry bookkeeping lives in an annotation because the CRD's strict status
schema would prune an unknown status field.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from ..errors import FinOpsError
from .conditions import condition, get_condition, merge_conditions, timestamp
from .policy import PolicySpec

RUN_NOW = "finops.dev/run-now"
RUN_NOW_HANDLED = "finops.dev/run-now-handled"
RETRY = "finops.dev/retry"


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def retry_state(annotations: dict[str, str] | None) -> tuple[int, datetime] | None:
    """(attempt, when) of a scheduled retry, or None (also for an unreadable annotation)."""
    raw = (annotations or {}).get(RETRY)
    if not raw:
        return None
    try:
        data = json.loads(raw)
        at = parse_time(data["at"])
        return (int(data["attempt"]), at) if at else None
    except (ValueError, KeyError, TypeError):
        return None


MAX_HANDLED = 256   # run-now values longer than this are remembered by their digest


def handled_marker(value: str | None) -> str | None:
    """What ``run-now-handled`` records for a ``run-now`` value: the value, or its digest when long.

    Copying a huge value would push the annotations over the API's 256 KiB limit: the patch would
    fail and the policy would run again on every tick.
    """
    if value is None or len(value) <= MAX_HANDLED:
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def retry_annotation(attempt: int, at: datetime) -> str:
    return json.dumps({"attempt": attempt, "at": timestamp(at)}, separators=(",", ":"))


def due(now: datetime, status: dict[str, Any] | None, annotations: dict[str, str] | None) -> str | None:
    """Why the policy should run now ('run-now', 'retry', 'schedule'), or None."""
    annotations = annotations or {}
    wanted = annotations.get(RUN_NOW)
    if wanted and handled_marker(wanted) != annotations.get(RUN_NOW_HANDLED):
        return "run-now"
    retry = retry_state(annotations)
    if retry is not None and now >= retry[1]:
        return "retry"
    next_at = parse_time((status or {}).get("nextRunTime"))
    if next_at is not None and now >= next_at:
        return "schedule"
    return None


def scheduled_status(policy: PolicySpec, previous: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    """Status after a (re)validated spec: the next run time; Ready Unknown until a first run reports."""
    previous = previous or {}
    next_at = policy.next_run(now)
    updates = []
    ready = get_condition(previous.get("conditions"), "Ready")
    if ready is None or ready.get("reason") == "InvalidSpec":
        updates.append(condition("Ready", None, "Scheduled",
                                 f"spec accepted; first run at {timestamp(next_at)} ({policy.schedule} in "
                                 f"{policy.time_zone}), or annotate finops.dev/run-now to run at once",
                                 generation=policy.generation))
    elif ready.get("observedGeneration") != policy.generation:
        updates.append({**ready, "observedGeneration": policy.generation})
    return {"observedGeneration": policy.generation, "nextRunTime": timestamp(next_at),
            "conditions": merge_conditions(previous.get("conditions"), updates, now=now)}


def invalid_status(error: FinOpsError, generation: int, previous: dict[str, Any] | None,
                   now: datetime) -> dict[str, Any]:
    """Status for a spec the operator cannot use: Ready=False, reason InvalidSpec, the field in the message."""
    where = f"{error.field}: " if error.field else ""
    message = f"{where}{error.message}"
    return {"observedGeneration": generation, "nextRunTime": None,
            "conditions": merge_conditions((previous or {}).get("conditions"),
                                           [condition("Ready", False, "InvalidSpec", message, generation=generation)],
                                           now=now)}
