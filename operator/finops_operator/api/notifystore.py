"""A NotificationChannel's durable queue, sent ids and receipts, in a ConfigMap beside it.

    store = QueueStore(api_client)
    state = store.update(channel, lambda state: enqueue(state, items, now)[0])  # read -> change -> write

One ConfigMap per channel, ``finops-notify-<channel>``, owned by the channel, holding
``binaryData["queue.json.gz"]`` (:mod:`..delivery.codec`, bounded by the engine). Every write carries the
resourceVersion that was read (optimistic concurrency, as :mod:`.spendstore`): two writers never overwrite
each other; the loser re-reads and applies its change again, so a change must be a function of the state
read. A state that cannot be read is reported and the queue starts empty (its sent ids are lost: items sent
before may be sent again once; the channel's status says so).
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from ..delivery.codec import decode, encode
from ..delivery.model import QueueState
from ..errors import DataSourceError, DataSourceRefused
from ..permissions import Rule
from .notification import ChannelSpec

log = logging.getLogger(__name__)
KEY = "queue.json.gz"
PREFIX = "finops-notify-"
CHANNEL_LABEL = "finops.dev/notification-channel"
MANAGED = {"app.kubernetes.io/managed-by": "finops-operator", "app.kubernetes.io/component": "notification-queue"}
ATTEMPTS = 5

PERMISSIONS = (   # RBAC for the calls below (see finops_operator.permissions)
    Rule("cluster", "", "configmaps", ("get", "create", "update"),
         "api/notifystore.py QueueStore: one queue ConfigMap per NotificationChannel, in its namespace"),
)


class QueueConflict(DataSourceError):
    """Someone else wrote the queue between our read and our write, every time we tried (transient)."""


def config_map_name(channel: str) -> str:
    name = PREFIX + channel
    return name if len(name) <= 253 else f"{name[:242]}-{hashlib.sha256(channel.encode()).hexdigest()[:10]}"


class QueueStore:
    def __init__(self, api_client: Any) -> None:
        import kubernetes
        self.core = kubernetes.client.CoreV1Api(api_client)

    def load(self, channel: ChannelSpec) -> tuple[QueueState, str | None, str | None]:
        """(state, resourceVersion or None when absent, problem when the stored state was unreadable)."""
        name = config_map_name(channel.name)
        try:
            response = self.core.read_namespaced_config_map(name, channel.namespace, _preload_content=False)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return QueueState(channel.name), None, None
            raise _error(exc, "read", channel) from None
        body = json.loads(response.data)
        version = body["metadata"]["resourceVersion"]
        blob = (body.get("binaryData") or {}).get(KEY)
        try:
            return (decode(base64.b64decode(blob, validate=True)) if blob else QueueState(channel.name)), version, None
        except ValueError as exc:
            problem = f"ConfigMap {channel.namespace}/{name} {KEY} is unreadable ({exc}); the queue starts empty"
            log.warning("%s", problem)
            return QueueState(channel.name), version, problem

    def save(self, channel: ChannelSpec, state: QueueState, version: str | None) -> str:
        body = self._body(channel, state, version)
        name = config_map_name(channel.name)
        try:
            if version is None:
                answer = self.core.create_namespaced_config_map(channel.namespace, body, _preload_content=False)
            else:
                answer = self.core.replace_namespaced_config_map(name, channel.namespace, body,
                                                                 _preload_content=False)
        except Exception as exc:
            if getattr(exc, "status", None) == 409:
                raise QueueConflict(f"ConfigMap {channel.namespace}/{name} changed while it was being written",
                                    source=channel.source) from None
            raise _error(exc, "write", channel) from None
        return json.loads(answer.data)["metadata"]["resourceVersion"]

    def update(self, channel: ChannelSpec, change: Callable[[QueueState], QueueState]) -> QueueState:
        """Load, change, save at the version read; on a conflict re-read and change again."""
        for attempt in range(ATTEMPTS):
            state, version, _ = self.load(channel)
            changed = change(state)
            if changed == state and version is not None:
                return state
            try:
                self.save(channel, changed, version)
                return changed
            except QueueConflict:
                log.info("queue of %s changed meanwhile (attempt %d); applying again", channel.key, attempt + 1)
        raise QueueConflict(f"the queue ConfigMap kept changing ({ATTEMPTS} attempts)", source=channel.source)

    def _body(self, channel: ChannelSpec, state: QueueState, version: str | None) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "name": config_map_name(channel.name), "namespace": channel.namespace,
            "labels": {**MANAGED, CHANNEL_LABEL: channel.name[:63]}}
        if channel.uid:
            metadata["ownerReferences"] = [{"apiVersion": "finops.dev/v1alpha1", "kind": "NotificationChannel",
                                            "name": channel.name, "uid": channel.uid, "controller": True,
                                            "blockOwnerDeletion": False}]
        if version is not None:
            metadata["resourceVersion"] = version
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata,
                "binaryData": {KEY: base64.b64encode(encode(state)).decode()}}


def _error(exc: Exception, what: str, channel: ChannelSpec) -> DataSourceError:
    status = getattr(exc, "status", None)
    where = f"ConfigMap {channel.namespace}/{config_map_name(channel.name)}"
    if status in (401, 403):
        return DataSourceRefused(f"the operator may not {what} {where} ({status}); the chart's ClusterRole grants "
                                 "configmaps get/create/update (api/notifystore.py)", source=channel.source)
    return DataSourceError(f"cannot {what} {where} ({status or type(exc).__name__}): {getattr(exc, 'reason', exc)}",
                           source=channel.source)
