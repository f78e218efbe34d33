"""Kubernetes Events next to the object they are about (``kubectl describe fpol``, ``kubectl get events``).

Posted directly through the kubernetes client rather than kopf's posting, so
the operator decides exactly which events exist (one per run summary, one per
failing stage) without turning every handler log line into an event. A
failure to post is logged, never raised: events are a courtesy, not the record.
"""
from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from ..permissions import Rule
from ..scrub import scrub
from .conditions import reason_of, timestamp

log = logging.getLogger(__name__)
COMPONENT = "finops-operator"
MAX_MESSAGE = 1024
PERMISSIONS = (Rule("cluster", "", "events", ("create",), "api/events.py post_event (and kopf's own Events)"),)


def event_body(obj: dict[str, Any], *, type_: str, reason: str, message: str, now: datetime,
               instance: str = COMPONENT) -> dict[str, Any]:
    """A core/v1 Event about ``obj`` (any namespaced object with apiVersion/kind/metadata).

    The message is scrubbed here whoever built it (the last line of defence: no secret or
    control character reaches ``kubectl get events``). ``instance``: the operator pod's name.
    """
    meta = obj.get("metadata") or {}
    stamp = timestamp(now)
    text = scrub(message, limit=MAX_MESSAGE)
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": f"{meta.get('name', 'finops')[:200]}.", "namespace": meta.get("namespace")},
        "involvedObject": {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": meta.get("name"),
                           "namespace": meta.get("namespace"), "uid": meta.get("uid")},
        "type": "Warning" if type_ == "Warning" else "Normal", "reason": reason_of(reason), "message": text,
        "source": {"component": COMPONENT}, "reportingComponent": COMPONENT,
        "reportingInstance": instance[:128],
        "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
    }


def post_event(api_client: Any, obj: dict[str, Any], *, type_: str, reason: str, message: str,
               now: datetime | None = None, instance: str = COMPONENT) -> bool:
    """Create the event; False (and a log line) when the API refuses."""
    import kubernetes
    body = event_body(obj, type_=type_, reason=reason, message=message, now=now or datetime.now(UTC),
                      instance=instance)
    try:
        kubernetes.client.CoreV1Api(api_client).create_namespaced_event(body["metadata"]["namespace"], body,
                                                                         _preload_content=False)
        return True
    except Exception as exc:  # never let an event break a run
        log.warning("cannot post event %s on %s: %s", reason, body["involvedObject"]["name"],
                    getattr(exc, "reason", exc))
        return False
