"""ConfigMaps that hold gzip'd blobs for one owning object: the pieces every durable store shares.

    blobs = BlobConfigMaps(api_client, who="api/healthstore.py")
    found = blobs.read(namespace, name, source=...)          # Found(body, resource_version) or None (absent)
    data = found.blob(KEY)                                   # bytes (ValueError: not base64)
    body = blob_body(namespace, name, labels, owner, {KEY: data}, version)
    version = blobs.write(body, source=..., conflict=MyConflict)   # create (version None) or replace at it

Writes carry the resourceVersion that was read (optimistic concurrency): a 409 raises ``conflict`` so the
caller re-reads and applies its change again (:func:`update_until_written`, the one retry loop). Other failures are :class:`DataSourceError` naming the
ConfigMap, and 401/403 a :class:`DataSourceRefused` naming the module whose RBAC rule grants the call.
Used by :mod:`.spendstore`, :mod:`.healthstore`, :mod:`.notifystore` and :mod:`.reportstore`.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import DataSourceError, DataSourceRefused

log = logging.getLogger(__name__)
MANAGED_BY = {"app.kubernetes.io/managed-by": "finops-operator"}
V = TypeVar("V")
T = TypeVar("T")
MAX_NAME = 253


def config_map_name(prefix: str, name: str) -> str:
    """``<prefix><name>``; a long name is cut and made unique with a hash (ConfigMap names: 253)."""
    full = prefix + name
    if len(full) <= MAX_NAME:
        return full
    return f"{full[:MAX_NAME - 11]}-{hashlib.sha256(name.encode()).hexdigest()[:10]}"


@dataclass(frozen=True, slots=True)
class Owner:
    """The finops.dev object a ConfigMap belongs to (deleting it deletes the ConfigMap)."""

    kind: str
    name: str
    uid: str = ""

    def reference(self) -> list[dict[str, Any]]:
        if not self.uid:
            return []
        return [{"apiVersion": "finops.dev/v1alpha1", "kind": self.kind, "name": self.name, "uid": self.uid,
                 "controller": True, "blockOwnerDeletion": False}]


@dataclass(frozen=True, slots=True)
class Found:
    body: dict[str, Any]
    resource_version: str

    def blob(self, key: str) -> bytes | None:
        """The binaryData entry decoded from base64 (None when absent); ValueError when it is not base64."""
        raw = (self.body.get("binaryData") or {}).get(key)
        return base64.b64decode(raw, validate=True) if raw else None


def blob_body(namespace: str, name: str, labels: dict[str, str], owner: Owner, blobs: dict[str, bytes],
              version: str | None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": {**MANAGED_BY, **labels}}
    if owner.reference():
        metadata["ownerReferences"] = owner.reference()
    if annotations:
        metadata["annotations"] = dict(annotations)
    if version is not None:
        metadata["resourceVersion"] = version
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata,
            "binaryData": {k: base64.b64encode(v).decode() for k, v in blobs.items()}}


class BlobConfigMaps:
    """get / create-or-replace / delete of ConfigMaps, errors named for ``who`` (the module declaring the RBAC)."""

    def __init__(self, api_client: Any, *, who: str) -> None:
        import kubernetes
        self.core = kubernetes.client.CoreV1Api(api_client)
        self.who = who

    def read(self, namespace: str, name: str, *, source: str) -> Found | None:
        try:
            response = self.core.read_namespaced_config_map(name, namespace, _preload_content=False)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise self.error(exc, "read", namespace, name, source) from None
        body = json.loads(response.data)
        return Found(body, body["metadata"]["resourceVersion"])

    def write(self, body: dict[str, Any], *, source: str, conflict: type[DataSourceError]) -> str:
        """Create (no resourceVersion in ``body``) or replace at it; returns the new resourceVersion.
        Raises ``conflict`` on 409 (it exists, or it changed since it was read)."""
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        try:
            if "resourceVersion" not in meta:
                answer = self.core.create_namespaced_config_map(namespace, body, _preload_content=False)
            else:
                answer = self.core.replace_namespaced_config_map(name, namespace, body, _preload_content=False)
        except Exception as exc:
            if getattr(exc, "status", None) == 409:
                raise conflict(f"ConfigMap {namespace}/{name} changed while it was being written",
                               source=source) from None
            raise self.error(exc, "write", namespace, name, source) from None
        return json.loads(answer.data)["metadata"]["resourceVersion"]

    def delete(self, namespace: str, name: str, *, source: str) -> bool:
        """True when deleted, False when it was already gone."""
        try:
            self.core.delete_namespaced_config_map(name, namespace)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return False
            raise self.error(exc, "delete", namespace, name, source) from None
        return True

    def error(self, exc: Exception, what: str, namespace: str, name: str, source: str) -> DataSourceError:
        status = getattr(exc, "status", None)
        where = f"ConfigMap {namespace}/{name}"
        if status in (401, 403):
            return DataSourceRefused(f"the operator may not {what} {where} ({status}); the chart's ClusterRole "
                                     f"grants the configmaps verbs {self.who} declares", source=source)
        return DataSourceError(f"cannot {what} {where} ({status or type(exc).__name__}): "
                               f"{getattr(exc, 'reason', exc)}", source=source)


def update_until_written(load: Callable[[], tuple[V, T]], change: Callable[[V], V], save: Callable[[V, T], Any], *,
                         conflict: type[DataSourceError], attempts: int, what: str, source: str,
                         unchanged: Callable[[V, V, T], bool] | None = None) -> V:
    """Load (a value and the token its write needs), change, save at it; on ``conflict`` (someone wrote in
    between) load and change again, so ``change`` must be a merge. ``unchanged(old, new, token)`` true: nothing
    is written. After ``attempts`` conflicts: ``conflict`` saying the ConfigMap kept changing (transient)."""
    for attempt in range(attempts):
        value, token = load()
        changed = change(value)
        if unchanged is not None and unchanged(value, changed, token):
            return value
        try:
            save(changed, token)
            return changed
        except conflict:
            log.info("the %s of %s changed meanwhile (attempt %d); applying the change again", what, source,
                     attempt + 1)
    raise conflict(f"the {what} ConfigMap kept changing ({attempts} attempts)", source=source)
