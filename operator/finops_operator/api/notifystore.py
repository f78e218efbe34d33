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

import logging
from collections.abc import Callable
from typing import Any

from ..delivery.codec import decode, encode
from ..delivery.model import QueueState
from ..errors import DataSourceError
from ..permissions import Rule
from . import cmstore
from .cmstore import BlobConfigMaps, Owner, blob_body
from .notification import ChannelSpec

log = logging.getLogger(__name__)
KEY = "queue.json.gz"
PREFIX = "finops-notify-"
CHANNEL_LABEL = "finops.dev/notification-channel"
MANAGED = {"app.kubernetes.io/component": "notification-queue"}
ATTEMPTS = 5

PERMISSIONS = (   # RBAC for the calls below (see finops_operator.permissions)
    Rule("cluster", "", "configmaps", ("get", "create", "update"),
         "api/notifystore.py QueueStore: one queue ConfigMap per NotificationChannel, in its namespace"),
)


class QueueConflict(DataSourceError):
    """Someone else wrote the queue between our read and our write, every time we tried (transient)."""


def config_map_name(channel: str) -> str:
    return cmstore.config_map_name(PREFIX, channel)


class QueueStore:
    def __init__(self, api_client: Any) -> None:
        self.maps = BlobConfigMaps(api_client, who="api/notifystore.py")

    def load(self, channel: ChannelSpec) -> tuple[QueueState, str | None, str | None]:
        """(state, resourceVersion or None when absent, problem when the stored state was unreadable)."""
        name = config_map_name(channel.name)
        found = self.maps.read(channel.namespace, name, source=channel.source)
        if found is None:
            return QueueState(channel.name), None, None
        try:
            blob = found.blob(KEY)
            return (decode(blob) if blob else QueueState(channel.name)), found.resource_version, None
        except ValueError as exc:
            problem = f"ConfigMap {channel.namespace}/{name} {KEY} is unreadable ({exc}); the queue starts empty"
            log.warning("%s", problem)
            return QueueState(channel.name), found.resource_version, problem

    def save(self, channel: ChannelSpec, state: QueueState, version: str | None) -> str:
        labels = {**MANAGED, CHANNEL_LABEL: channel.name[:63]}
        body = blob_body(channel.namespace, config_map_name(channel.name), labels,
                         Owner("NotificationChannel", channel.name, channel.uid), {KEY: encode(state)}, version)
        return self.maps.write(body, source=channel.source, conflict=QueueConflict)

    def update(self, channel: ChannelSpec, change: Callable[[QueueState], QueueState]) -> QueueState:
        """Load, change, save at the version read; on a conflict re-read and change again."""
        return cmstore.update_until_written(
            lambda: self.load(channel)[:2], change, lambda state, version: self.save(channel, state, version),
            conflict=QueueConflict, attempts=ATTEMPTS, what="queue", source=channel.source,
            unchanged=lambda old, new, version: new == old and version is not None)
