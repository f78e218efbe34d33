"""A Budget's daily spend history, kept in a ConfigMap beside it (survives restarts and Prometheus retention).

    store = SpendStore(api_client)
    stored = store.load(budget)                      # StoredHistory(history, resource_version); empty when absent
    store.save(budget, stored, history)              # create, or replace at the resourceVersion read (409: Conflict)
    store.update(budget, lambda history: merge(...)) # load -> change -> save, re-read and retried on a conflict

One ConfigMap per Budget, named ``finops-spend-<budget>``, labelled with the budget, owned by it (deleting
the Budget deletes its history), holding ``binaryData["history.json.gz"]`` (:mod:`..budgets.history`:
at most 400 days, a few KiB). Writes carry the resourceVersion that was read, so two operators (or an
operator and a person) never overwrite each other's days silently: the loser re-reads and merges again.
A history that cannot be read (edited by hand, from a newer version) is not fatal: it is reported and
rebuilt from the data sources.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..budgets.history import SpendHistory, decode, encode
from ..errors import DataSourceError
from ..permissions import Rule
from .budget import BudgetSpec

log = logging.getLogger(__name__)
KEY = "history.json.gz"
PREFIX = "finops-spend-"
BUDGET_LABEL = "finops.dev/budget"
MANAGED = {"app.kubernetes.io/managed-by": "finops-operator", "app.kubernetes.io/component": "spend-history"}
ATTEMPTS = 4

PERMISSIONS = (   # RBAC for the calls below (see finops_operator.permissions)
    Rule("cluster", "", "configmaps", ("get", "create", "update"),
         "api/spendstore.py SpendStore: one spend-history ConfigMap per Budget, in the Budget's namespace"),
)


class HistoryConflict(DataSourceError):
    """Someone else wrote the history between our read and our write, every time we tried (transient)."""


@dataclass(frozen=True, slots=True)
class StoredHistory:
    history: SpendHistory
    resource_version: str | None               # None: no ConfigMap yet
    problem: str | None = None                 # why a stored history was not readable (it is rebuilt)


def config_map_name(budget_name: str) -> str:
    """``finops-spend-<budget>``; a long name is cut and made unique with a hash (ConfigMap names: 253)."""
    name = PREFIX + budget_name
    if len(name) <= 253:
        return name
    digest = hashlib.sha256(budget_name.encode()).hexdigest()[:10]
    return f"{name[:242]}-{digest}"


class SpendStore:
    def __init__(self, api_client: Any) -> None:
        import kubernetes
        self.core = kubernetes.client.CoreV1Api(api_client)

    def load(self, budget: BudgetSpec) -> StoredHistory:
        empty = SpendHistory(None, budget.rules().time_zone)
        try:
            response = self.core.read_namespaced_config_map(config_map_name(budget.name), budget.namespace,
                                                            _preload_content=False)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return StoredHistory(empty, None)
            raise _error(exc, "read", budget) from None
        body = json.loads(response.data)
        version = body["metadata"]["resourceVersion"]
        blob = (body.get("binaryData") or {}).get(KEY)
        try:
            history = decode(base64.b64decode(blob or "", validate=True)) if blob else empty
        except ValueError as exc:
            problem = f"ConfigMap {budget.namespace}/{config_map_name(budget.name)} {KEY} is unreadable ({exc}); " \
                      "the history is rebuilt from the data sources"
            log.warning("%s", problem)
            return StoredHistory(empty, version, problem)
        if history.time_zone != empty.time_zone:          # days of another zone are other days: start again
            return StoredHistory(empty, version, f"the stored history is in {history.time_zone}, the budget in "
                                                 f"{empty.time_zone}; rebuilt")
        return StoredHistory(history, version)

    def save(self, budget: BudgetSpec, stored: StoredHistory, history: SpendHistory) -> str:
        """Write ``history`` over ``stored`` (create when there was none); returns the new resourceVersion.
        Raises :class:`HistoryConflict` when the ConfigMap changed since ``stored`` was read."""
        body = self._body(budget, history, stored.resource_version)
        try:
            if stored.resource_version is None:
                answer = self.core.create_namespaced_config_map(budget.namespace, body, _preload_content=False)
            else:
                answer = self.core.replace_namespaced_config_map(config_map_name(budget.name), budget.namespace,
                                                                 body, _preload_content=False)
        except Exception as exc:
            if getattr(exc, "status", None) == 409:
                raise HistoryConflict(f"ConfigMap {budget.namespace}/{config_map_name(budget.name)} changed while "
                                      "it was being written", source=budget.source) from None
            raise _error(exc, "write", budget) from None
        return json.loads(answer.data)["metadata"]["resourceVersion"]

    def update(self, budget: BudgetSpec, change: Callable[[SpendHistory], SpendHistory]) -> SpendHistory:
        """Load, change, save; on a conflict re-read and change again (the change must be a merge)."""
        for attempt in range(ATTEMPTS):
            stored = self.load(budget)
            history = change(stored.history)
            try:
                self.save(budget, stored, history)
                return history
            except HistoryConflict:
                log.info("spend history of %s changed meanwhile (attempt %d); merging again", budget.key, attempt + 1)
        raise HistoryConflict(f"the spend history ConfigMap kept changing ({ATTEMPTS} attempts)", source=budget.source)

    def _body(self, budget: BudgetSpec, history: SpendHistory, version: str | None) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "name": config_map_name(budget.name), "namespace": budget.namespace,
            "labels": {**MANAGED, BUDGET_LABEL: budget.name[:63]},
            "ownerReferences": [{"apiVersion": "finops.dev/v1alpha1", "kind": "Budget", "name": budget.name,
                                 "uid": budget.uid, "controller": True, "blockOwnerDeletion": False}]}
        if version is not None:
            metadata["resourceVersion"] = version
        if not budget.uid:
            del metadata["ownerReferences"]
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata,
                "binaryData": {KEY: base64.b64encode(encode(history)).decode()}}


def _error(exc: Exception, what: str, budget: BudgetSpec) -> DataSourceError:
    status = getattr(exc, "status", None)
    where = f"ConfigMap {budget.namespace}/{config_map_name(budget.name)}"
    if status in (401, 403):
        from ..errors import DataSourceRefused
        return DataSourceRefused(f"the operator may not {what} {where} ({status}); the chart's ClusterRole grants "
                                 "configmaps get/create/update (api/spendstore.py)", source=budget.source)
    return DataSourceError(f"cannot {what} {where} ({status or type(exc).__name__}): {getattr(exc, 'reason', exc)}",
                           source=budget.source)
