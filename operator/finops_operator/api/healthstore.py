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

import base64
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import DataSourceError, DataSourceRefused
from ..health.history import HealthHistory, decode, encode
from ..permissions import Rule

log = logging.getLogger(__name__)
KEY = "health.json.gz"
PREFIX = "finops-health-"
POLICY_LABEL = "finops.dev/policy"
MANAGED = {"app.kubernetes.io/managed-by": "finops-operator", "app.kubernetes.io/component": "health-history"}
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
        name = PREFIX + self.policy
        if len(name) <= 253:
            return name
        return f"{name[:242]}-{hashlib.sha256(self.policy.encode()).hexdigest()[:10]}"


@dataclass(frozen=True, slots=True)
class StoredHealth:
    history: HealthHistory
    resource_version: str | None               # None: no ConfigMap yet
    problem: str | None = None                 # why a stored history was not readable (started afresh)


class HealthStore:
    def __init__(self, api_client: Any) -> None:
        import kubernetes
        self.core = kubernetes.client.CoreV1Api(api_client)

    def load(self, owner: HealthOwner) -> StoredHealth:
        try:
            response = self.core.read_namespaced_config_map(owner.config_map, owner.namespace, _preload_content=False)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return StoredHealth(HealthHistory(), None)
            raise _error(exc, "read", owner) from None
        body = json.loads(response.data)
        version = body["metadata"]["resourceVersion"]
        blob = (body.get("binaryData") or {}).get(KEY)
        try:
            history = decode(base64.b64decode(blob or "", validate=True)) if blob else HealthHistory()
        except ValueError as exc:
            problem = (f"ConfigMap {owner.namespace}/{owner.config_map} {KEY} is unreadable ({exc}); "
                       "the health history starts afresh")
            log.warning("%s", problem)
            return StoredHealth(HealthHistory(), version, problem)
        return StoredHealth(history, version)

    def save(self, owner: HealthOwner, stored: StoredHealth, history: HealthHistory) -> str:
        """Write ``history`` over ``stored``; returns the new resourceVersion; HealthConflict when it changed."""
        body = self._body(owner, history, stored.resource_version)
        try:
            if stored.resource_version is None:
                answer = self.core.create_namespaced_config_map(owner.namespace, body, _preload_content=False)
            else:
                answer = self.core.replace_namespaced_config_map(owner.config_map, owner.namespace, body,
                                                                 _preload_content=False)
        except Exception as exc:
            if getattr(exc, "status", None) == 409:
                raise HealthConflict(f"ConfigMap {owner.namespace}/{owner.config_map} changed while it was being "
                                     "written", source=owner.source) from None
            raise _error(exc, "write", owner) from None
        return json.loads(answer.data)["metadata"]["resourceVersion"]

    def update(self, owner: HealthOwner, change: Callable[[HealthHistory], HealthHistory]) -> HealthHistory:
        """Load, change, save; on a conflict re-read and change again (the change must be a merge)."""
        for attempt in range(ATTEMPTS):
            stored = self.load(owner)
            history = change(stored.history)
            try:
                self.save(owner, stored, history)
                return history
            except HealthConflict:
                log.info("health history of %s changed meanwhile (attempt %d); merging again", owner.source,
                         attempt + 1)
        raise HealthConflict(f"the health history ConfigMap kept changing ({ATTEMPTS} attempts)", source=owner.source)

    def _body(self, owner: HealthOwner, history: HealthHistory, version: str | None) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": owner.config_map, "namespace": owner.namespace,
                                    "labels": {**MANAGED, POLICY_LABEL: owner.policy[:63]}}
        if owner.uid:
            metadata["ownerReferences"] = [{"apiVersion": "finops.dev/v1alpha1", "kind": "FinOpsPolicy",
                                            "name": owner.policy, "uid": owner.uid, "controller": True,
                                            "blockOwnerDeletion": False}]
        if version is not None:
            metadata["resourceVersion"] = version
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata,
                "binaryData": {KEY: base64.b64encode(encode(history)).decode()}}


def _error(exc: Exception, what: str, owner: HealthOwner) -> DataSourceError:
    status = getattr(exc, "status", None)
    where = f"ConfigMap {owner.namespace}/{owner.config_map}"
    if status in (401, 403):
        return DataSourceRefused(f"the operator may not {what} {where} ({status}); the chart's ClusterRole grants "
                                 "configmaps get/create/update (api/healthstore.py)", source=owner.source)
    return DataSourceError(f"cannot {what} {where} ({status or type(exc).__name__}): {getattr(exc, 'reason', exc)}",
                           source=owner.source)
