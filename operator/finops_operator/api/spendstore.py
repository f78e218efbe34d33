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

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..budgets.history import SpendHistory, decode, encode
from ..errors import DataSourceError
from ..permissions import Rule
from . import cmstore
from .budget import BudgetSpec
from .cmstore import BlobConfigMaps, Owner, blob_body

log = logging.getLogger(__name__)
KEY = "history.json.gz"
PREFIX = "finops-spend-"
BUDGET_LABEL = "finops.dev/budget"
MANAGED = {"app.kubernetes.io/component": "spend-history"}
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
    return cmstore.config_map_name(PREFIX, budget_name)


class SpendStore:
    def __init__(self, api_client: Any) -> None:
        self.maps = BlobConfigMaps(api_client, who="api/spendstore.py")

    def load(self, budget: BudgetSpec) -> StoredHistory:
        empty = SpendHistory(None, budget.rules().time_zone)
        found = self.maps.read(budget.namespace, config_map_name(budget.name), source=budget.source)
        if found is None:
            return StoredHistory(empty, None)
        version = found.resource_version
        try:
            blob = found.blob(KEY)
            history = decode(blob) if blob else empty
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
        body = blob_body(budget.namespace, config_map_name(budget.name), {**MANAGED, BUDGET_LABEL: budget.name[:63]},
                         Owner("Budget", budget.name, budget.uid), {KEY: encode(history)}, stored.resource_version)
        return self.maps.write(body, source=budget.source, conflict=HistoryConflict)

    def update(self, budget: BudgetSpec, change: Callable[[SpendHistory], SpendHistory]) -> SpendHistory:
        """Load, change, save; on a conflict re-read and change again (the change must be a merge)."""
        def load() -> tuple[SpendHistory, StoredHistory]:
            stored = self.load(budget)
            return stored.history, stored
        return cmstore.update_until_written(load, change, lambda history, stored: self.save(budget, stored, history),
                                            conflict=HistoryConflict, attempts=ATTEMPTS, what="spend history",
                                            source=budget.source)
