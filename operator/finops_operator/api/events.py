"""Kubernetes Events next to the object they are about (``kubectl describe fpol``, ``kubectl get events``).

Posted directly through the kubernetes client rather than kopf's posting, so
the operator decides exactly which events exist (one per run summary, one per
failing stage) without turning every handler log line into an event. A
failure to post is logged, never raised: events are a courtesy, not the record.
"""
from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import Any

from .conditions import reason_of, timestamp

log = logging.getLogger(__name__)
COMPONENT = "finops-operator"
MAX_MESSAGE = 1024


def event_body(obj: dict[str, Any], *, type_: str, reason: str, message: str, now: datetime) -> dict[str, Any]:
    """A core/v1 Event about ``obj`` (any namespaced object with apiVersion/kind/metadata)."""
    meta = obj.get("metadata") or {}
    stamp = timestamp(now)
    text = message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE - 3] + "..."
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": f"{meta.get('name', 'finops')[:200]}.", "namespace": meta.get("namespace")},
        "involvedObject": {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": meta.get("name"),
                           "namespace": meta.get("namespace"), "uid": meta.get("uid")},
        "type": "Warning" if type_ == "Warning" else "Normal", "reason": reason_of(reason), "message": text,
        "source": {"component": COMPONENT}, "reportingComponent": COMPONENT,
        "reportingInstance": os.environ.get("FINOPS_POD_NAME") or COMPONENT,
        "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
    }


def post_event(api_client: Any, obj: dict[str, Any], *, type_: str, reason: str, message: str,
               now: datetime | None = None) -> bool:
    """Create the event; False (and a log line) when the API refuses."""
    import kubernetes
    body = event_body(obj, type_=type_, reason=reason, message=message, now=now or datetime.now(UTC))
    try:
        kubernetes.client.CoreV1Api(api_client).create_namespaced_event(body["metadata"]["namespace"], body,
                                                                         _preload_content=False)
        return True
    except Exception as exc:  # never let an event break a run
        log.warning("cannot post event %s on %s: %s", reason, body["involvedObject"]["name"],
                    getattr(exc, "reason", exc))
        return False
