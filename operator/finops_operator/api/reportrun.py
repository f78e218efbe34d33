"""When a FinOpsReport generates, and what one generation does (the timer handler calls these).

    slot = due_slot(spec, status, created, now)           # the scheduled time to generate for, or None
    status = generate(api_client, spec, slot, previous, now)   # gather, render, store, prune, deliver

Idempotent across restarts: the slot generated last is ``status.lastSlot``; the next one is the first
scheduled time after it (after the object's creation for the first), and when the operator was down
across several slots only the newest is generated. The report's ConfigMap is named by the slot, so a run
interrupted after storing it reuses it, and the delivery item's id names it too (a channel never sends it
twice). A report too large to store is refused once per slot (Ready=False says why), not retried.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from ..delivery.model import Item
from ..errors import FinOpsError
from ..models.insights import Priority
from ..scrub import scrub
from .conditions import condition, get_condition, merge_conditions, timestamp
from .notifycluster import enqueue_items
from .report import ReportSpec
from .reportgen import gather, render
from .reportstore import ReportStore, ReportTooLarge, StoredReport, prune, report_key
from .schedule import parse_time

log = logging.getLogger(__name__)
MAX_CATCHUP = 1000             # scheduled times skipped at most when the operator was down (newest wins)
MAX_SUMMARY = 3500             # characters of the Markdown summary sent to a channel


def due_slot(spec: ReportSpec, status: dict[str, Any] | None, created: datetime | None,
             now: datetime) -> datetime | None:
    """The newest scheduled time that has passed and was not generated yet, or None."""
    base = parse_time((status or {}).get("lastSlot")) or created
    if base is None:
        return None
    slot = spec.next_slot(base)
    if slot > now:
        return None
    slot, done = _newest(spec, slot, now)
    if not done:                  # a long downtime: look again from two schedule intervals before now
        candidate = spec.next_slot(now - 2 * (spec.next_slot(slot) - slot))
        slot, _ = _newest(spec, max(slot, candidate) if candidate <= now else slot, now)
    return slot


def _newest(spec: ReportSpec, slot: datetime, now: datetime) -> tuple[datetime, bool]:
    """(the last scheduled time <= now from ``slot`` on, whether it was reached within MAX_CATCHUP steps)."""
    for _ in range(MAX_CATCHUP):
        following = spec.next_slot(slot)
        if following > now:
            return slot, True
        slot = following
    return slot, False


def next_report_time(spec: ReportSpec, status: dict[str, Any] | None, created: datetime | None,
                     now: datetime) -> datetime:
    base = parse_time((status or {}).get("lastSlot")) or created or now
    return spec.next_slot(base)


def scheduled_status(spec: ReportSpec, previous: dict[str, Any] | None, created: datetime | None,
                     now: datetime) -> dict[str, Any]:
    """Status after a (re)validated spec: the next report time; Ready Unknown until a first report."""
    previous = previous or {}
    updates = []
    ready = get_condition(previous.get("conditions"), "Ready")
    if ready is None or ready.get("reason") == "InvalidSpec":
        updates.append(condition("Ready", None, "Scheduled", f"spec accepted; first report at "
                                 f"{timestamp(next_report_time(spec, previous, created, now))} "
                                 f"({spec.schema.schedule} in {spec.schema.time_zone})", generation=spec.generation))
    return {"observedGeneration": spec.generation,
            "nextReportTime": timestamp(next_report_time(spec, previous, created, now)),
            "conditions": merge_conditions(previous.get("conditions"), updates, now=now)}


def summary_item(spec: ReportSpec, entry: StoredReport, markdown: str, channel: str, now: datetime) -> Item:
    """The Markdown summary for one channel; the id names the report and its date (sent once)."""
    text = markdown if len(markdown) <= MAX_SUMMARY else markdown[:MAX_SUMMARY - 1] + "…"
    text += f"\n\nFull report: {entry.path} on the finops-operator report server."
    title = f"FinOps {spec.schema.period.lower()} report {spec.key} ({entry.date})"
    return Item(f"report:{spec.key}:{entry.date}", channel, f"report:{spec.key}", Priority.HIGH, title, text, now,
                persona=spec.schema.persona)


def deliver(api_client: Any, spec: ReportSpec, entry: StoredReport, markdown: str,
            now: datetime) -> list[dict[str, Any]]:
    """Queue the summary on each channel (the channel's timer sends it); one failing channel spares the others."""
    out = []
    for ref in spec.schema.channels:
        try:
            enqueue_items(api_client, spec.namespace, [summary_item(spec, entry, markdown, ref.name, now)], now)
            out.append({"channel": ref.name, "queued": True, "message": "queued for delivery"})
        except Exception as exc:     # FinOpsError, a missing channel (404), a refused call
            reason = getattr(exc, "reason", None) or exc
            out.append({"channel": ref.name, "queued": False,
                        "message": scrub(f"not queued: {reason}", limit=1000)})
    return out


def replacing(old: Any, new: Any) -> Any:
    """``new`` as a merge patch over ``old``: keys only ``old`` has become None (removed), nested too."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    return {**{k: None for k in old if k not in new}, **{k: replacing(old.get(k), v) for k, v in new.items()}}


def _previous_entries(previous: dict[str, Any]) -> list[StoredReport]:
    items = [StoredReport.from_item(i) for i in previous.get("reports") or [] if isinstance(i, dict)]
    return [i for i in items if i is not None]


def generate(api_client: Any, spec: ReportSpec, slot: datetime, previous: dict[str, Any] | None,
             now: datetime, runs: Any = None) -> dict[str, Any]:
    """Generate, store, prune and deliver the report of ``slot``; returns the status to patch.

    A data source failure raises (the slot stays due and the next tick tries again)."""
    previous = previous or {}
    store, key = ReportStore(api_client), report_key(slot, spec)
    base = {"observedGeneration": spec.generation, "lastSlot": timestamp(slot),
            "nextReportTime": timestamp(spec.next_slot(max(slot, now)))}
    try:
        rendered = render(spec, gather(api_client, spec, runs), end=slot)
        entry = store.save(spec, key, rendered, now)
    except ReportTooLarge as exc:
        ready = condition("Ready", False, "ReportTooLarge", str(exc), generation=spec.generation)
        return {**base, "conditions": merge_conditions(previous.get("conditions"), [ready], now=now)}
    keep, drop = prune([entry, *_previous_entries(previous)], spec.schema.retention.count,
                       spec.schema.retention.days, now)
    for old in drop:
        try:
            store.delete(spec, old)
        except FinOpsError as exc:        # kept in the list: pruned again next time
            log.warning("%s: cannot delete the report of %s: %s", spec.source, old.date, exc)
            keep.append(old)
    delivery = deliver(api_client, spec, entry, rendered.markdown, now)
    failed = [d["channel"] for d in delivery if not d["queued"]]
    message = f"report {key} stored at {entry.path}; {len(keep)} kept"
    if failed:
        message += f"; summary not queued on {', '.join(failed)} (see status.delivery)"
    ready = condition("Ready", True, "Generated", message, generation=spec.generation)
    return {**base, "lastReport": replacing(previous.get("lastReport"), entry.item()),
            "reports": [k.item() for k in keep[:100]], "delivery": delivery,
            "conditions": merge_conditions(previous.get("conditions"), [ready], now=now)}
