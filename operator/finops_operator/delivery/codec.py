"""A channel's queue state as compressed JSON (the ConfigMap's ``binaryData``), and back.

Bounded by the engine (MAX_PENDING items, MAX_SENT ids within SENT_WINDOW, MAX_RECEIPTS receipts): a few
hundred KiB at most, well under a ConfigMap's 1 MiB. ``decode`` raises ValueError on anything it cannot read.
"""
from __future__ import annotations

import gzip
import json
from datetime import datetime
from typing import Any

from ..models.insights import Priority
from ..safeio import gunzip_json
from .model import Attempt, Item, Outcome, QueueState, Receipt, Stats

VERSION = 1
MAX_BLOB = 1024 * 1024          # a ConfigMap holds at most 1 MiB
MAX_JSON = 16 * 1024 * 1024     # decompressed bytes accepted (a gzip bomb stops here)


def _t(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _at(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _item(i: Item) -> dict[str, Any]:
    return {"id": i.id, "channel": i.channel, "subscription": i.subscription, "priority": i.priority.value,
            "title": i.title, "text": i.text, "enqueued": _t(i.enqueued), "persona": i.persona,
            "links": list(i.links), "failures": i.failures, "notBefore": _t(i.not_before)}


def _read_item(d: dict[str, Any]) -> Item:
    return Item(d["id"], d["channel"], d["subscription"], Priority(d["priority"]), d["title"], d["text"],
                datetime.fromisoformat(d["enqueued"]), d.get("persona", ""), tuple(d.get("links", ())),
                int(d.get("failures", 0)), _at(d.get("notBefore")))


def _receipt(r: Receipt) -> dict[str, Any]:
    return {"at": _t(r.at), "outcome": r.outcome.value, "subscription": r.subscription, "items": list(r.item_ids),
            "attempt": r.attempt, "reason": r.reason}


def encode(state: QueueState) -> bytes:
    body = {
        "version": VERSION, "channel": state.channel, "lastError": state.last_error,
        "pending": [_item(i) for i in state.pending],
        "sending": [{"id": a.id, "subscription": a.subscription, "started": _t(a.started), "digest": a.digest,
                     "items": [_item(i) for i in a.items]} for a in state.sending],
        "sent": [[k, _t(t)] for k, t in state.sent],
        "deliveries": [[s, _t(t)] for s, t in state.deliveries],
        "receipts": [_receipt(r) for r in state.receipts],
        "stats": [list(c) for c in state.stats.counts],
    }
    return gzip.compress(json.dumps(body, separators=(",", ":")).encode(), mtime=0)


def decode(blob: bytes) -> QueueState:
    try:
        body = gunzip_json(blob, max_blob=MAX_BLOB, max_raw=MAX_JSON)
    except ValueError as exc:
        raise ValueError(f"unreadable queue state: {exc}") from None
    try:
        if body.get("version") != VERSION:
            raise ValueError(f"version {body.get('version')!r}, this operator reads {VERSION}")
        channel = body["channel"]
        return QueueState(
            channel=channel,
            pending=tuple(_read_item(d) for d in body["pending"]),
            sending=tuple(Attempt(a["id"], channel, a["subscription"], tuple(_read_item(d) for d in a["items"]),
                                  datetime.fromisoformat(a["started"]), bool(a["digest"])) for a in body["sending"]),
            sent=tuple((k, datetime.fromisoformat(t)) for k, t in body["sent"]),
            deliveries=tuple((s, datetime.fromisoformat(t)) for s, t in body["deliveries"]),
            receipts=tuple(Receipt(datetime.fromisoformat(r["at"]), Outcome(r["outcome"]), channel,
                                   r["subscription"], tuple(r["items"]), r["attempt"], r["reason"])
                           for r in body["receipts"]),
            stats=Stats(tuple((s, o, int(c)) for s, o, c in body["stats"])),
            last_error=body.get("lastError", ""))
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"unreadable queue state: {type(exc).__name__}: {exc}") from None



