"""Team health history and each team's last daily run, kept in a ConfigMap beside the FinOpsPolicy.

    store = HealthStore(api_client)
    owner = HealthOwner(namespace, policy_name, policy_uid)
    stored = store.load(owner)                        # StoredHealth(history, resource_version); empty when absent
    store.update(owner, lambda h: record(h, ...))     # load -> change -> save, re-read and retried on a conflict

One ConfigMap per policy, ``finops-health-<policy>``, labelled and owned by it (deleting the policy deletes
the history), holding ``binaryData["health.json.gz"]`` (:mod:`..health.history`: at most 400 days per
subject, 300 subjects). Writes carry the resourceVersion read (optimistic concurrency): a writer that
lost re-reads and applies its change again. A blob that cannot be read (edited by hand, from a newer
version) is reported and started afresh, never fatal.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import DataSourceError
from ..health.history import HealthHistory, decode, encode
from ..permissions import Rule
from . import cmstore
from .cmstore import BlobConfigMaps, Owner, blob_body, config_map_name

log = logging.getLogger(__name__)
KEY = "health.json.gz"
PREFIX = "finops-health-"
POLICY_LABEL = "finops.dev/policy"
MANAGED = {"app.kubernetes.io/component": "health-history"}
ATTEMPTS = 4

PERMISSIONS = (
    Rule("cluster", "", "configmaps", ("get", "create", "update"),
         "api/healthstore.py HealthStore: one team-health history ConfigMap per FinOpsPolicy, in its namespace"),
)


class HealthConflict(DataSourceError):
    """Someone else wrote the history between our read and our write, every time we tried (transient)."""


@dataclass(frozen=True, slots=True)
class HealthOwner:
    namespace: str
    policy: str
    uid: str = ""

    @property
    def source(self) -> str:
        return f"FinOpsPolicy {self.namespace}/{self.policy}"

    @property
    def config_map(self) -> str:
        """``finops-health-<policy>``; a long name is cut and made unique with a hash (ConfigMap names: 253)."""
        return config_map_name(PREFIX, self.policy)


@dataclass(frozen=True, slots=True)
class StoredHealth:
    history: HealthHistory
    resource_version: str | None               # None: no ConfigMap yet
    problem: str | None = None                 # why a stored history was not readable (started afresh)


class HealthStore:
    def __init__(self, api_client: Any) -> None:
        self.maps = BlobConfigMaps(api_client, who="api/healthstore.py")

    def load(self, owner: HealthOwner) -> StoredHealth:
        found = self.maps.read(owner.namespace, owner.config_map, source=owner.source)
        if found is None:
            return StoredHealth(HealthHistory(), None)
        try:
            blob = found.blob(KEY)
            history = decode(blob) if blob else HealthHistory()
        except ValueError as exc:
            problem = (f"ConfigMap {owner.namespace}/{owner.config_map} {KEY} is unreadable ({exc}); "
                       "the health history starts afresh")
            log.warning("%s", problem)
            return StoredHealth(HealthHistory(), found.resource_version, problem)
        return StoredHealth(history, found.resource_version)

    def save(self, owner: HealthOwner, stored: StoredHealth, history: HealthHistory) -> str:
        """Write ``history`` over ``stored``; returns the new resourceVersion; HealthConflict when it changed."""
        body = blob_body(owner.namespace, owner.config_map, {**MANAGED, POLICY_LABEL: owner.policy[:63]},
                         Owner("FinOpsPolicy", owner.policy, owner.uid), {KEY: encode(history)},
                         stored.resource_version)
        return self.maps.write(body, source=owner.source, conflict=HealthConflict)

    def update(self, owner: HealthOwner, change: Callable[[HealthHistory], HealthHistory]) -> HealthHistory:
        """Load, change, save; on a conflict re-read and change again (the change must be a merge)."""
        def load() -> tuple[HealthHistory, StoredHealth]:
            stored = self.load(owner)
            return stored.history, stored
        return cmstore.update_until_written(load, change, lambda history, stored: self.save(owner, stored, history),
                                            conflict=HealthConflict, attempts=ATTEMPTS, what="health history",
                                            source=owner.source)
