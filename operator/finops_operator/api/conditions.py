"""Kubernetes-convention ``status.conditions``: set one, merge several, keep transition times honest.

A condition is a dict ``{type, status, reason, message, lastTransitionTime,
observedGeneration}`` (the CRDs' list-map keyed by ``type``).
``lastTransitionTime`` moves only when ``status`` changes, as the API
conventions ask, so ``kubectl get`` shows how long a policy has been failing.
Reasons are CamelCase identifiers (the CRD's pattern); messages are scrubbed
(:func:`finops_operator.scrub.scrub`) and capped at the CRD's 32768 characters.

    conditions = set_condition(status.get("conditions"), ready(False, "InvalidSpec", msg, generation=3), now=now)
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ..scrub import scrub

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"
MAX_MESSAGE = 32768
MAX_CONDITIONS = 16
_REASON_OK = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")

Condition = dict[str, Any]


def timestamp(now: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` and whole seconds, as the apiserver writes times."""
    return now.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def reason_of(text: str) -> str:
    """A valid condition reason from free text: 'data source error' -> 'DataSourceError'."""
    if _REASON_OK.match(text):
        return text
    words = re.findall(r"[A-Za-z0-9]+", text)
    camel = "".join(w[:1].upper() + w[1:] for w in words)
    camel = camel.lstrip("0123456789")
    return camel or "Unknown"


def condition(type_: str, status: bool | str | None, reason: str, message: str, *,
              generation: int | None = None) -> Condition:
    """A new condition (without a transition time: :func:`set_condition` fills it)."""
    if isinstance(status, bool):
        status = TRUE if status else FALSE
    elif status is None:
        status = UNKNOWN
    if status not in (TRUE, FALSE, UNKNOWN):
        raise ValueError(f"condition status must be True, False or Unknown, not {status!r}")
    out: Condition = {"type": type_, "status": status, "reason": reason_of(reason),
                      "message": _cap(message)}
    if generation is not None:
        out["observedGeneration"] = int(generation)
    return out


def _cap(message: str) -> str:
    """The last line of defence before a message reaches status: scrubbed (no secrets, no control characters)
    and within the CRD's bound."""
    return scrub(message or "", limit=MAX_MESSAGE)


def get_condition(conditions: Iterable[Condition] | None, type_: str) -> Condition | None:
    return next((c for c in conditions or [] if c.get("type") == type_), None)


def set_condition(conditions: Iterable[Condition] | None, new: Condition, *, now: datetime) -> list[Condition]:
    """``conditions`` with ``new`` put in place of the same type (appended if new).

    The transition time is kept when the status did not change (only reason,
    message or generation moved), and set to ``now`` when it did. The input is
    not modified; order of the other conditions is kept.
    """
    out: list[Condition] = []
    replaced = False
    for old in conditions or []:
        if old.get("type") != new["type"]:
            out.append(dict(old))
            continue
        replaced = True
        merged = dict(new)
        same = old.get("status") == new["status"] and old.get("lastTransitionTime")
        merged["lastTransitionTime"] = old["lastTransitionTime"] if same else timestamp(now)
        out.append(merged)
    if not replaced:
        out.append({**new, "lastTransitionTime": new.get("lastTransitionTime") or timestamp(now)})
    return out[-MAX_CONDITIONS:]


def merge_conditions(conditions: Iterable[Condition] | None, updates: Iterable[Condition], *,
                     now: datetime) -> list[Condition]:
    """Apply several :func:`set_condition` in order; conditions not mentioned stay as they are."""
    out = [dict(c) for c in conditions or []]
    for new in updates:
        out = set_condition(out, new, now=now)
    return out


def changed(before: Iterable[Condition] | None, after: Iterable[Condition] | None) -> bool:
    """Whether writing ``after`` would change anything a person sees (ignores list order)."""
    def key(items):
        return sorted((c.get("type"), c.get("status"), c.get("reason"), c.get("message"),
                       c.get("observedGeneration")) for c in items or [])
    return key(before) != key(after)
