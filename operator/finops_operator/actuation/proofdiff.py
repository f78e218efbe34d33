"""Compare two renderings of an entry point, object by object and field by field (pure).

    objects(text, namespace=None)            -> {ObjectKey: object}
    diff(before, after)                      -> [ObjectChange]
    Intent.of(finding)                       -> what a finding should change, or None
    intended_path(obj, intent, field)        -> where that value lives in a rendered object
    field_ok(obj, intent, field)             -> the rendered value is the intended one

Objects are keyed by apiVersion, kind, namespace and name; lists of mappings
that all carry a ``name`` (containers, env, ports, volumes) are compared by
name, so a reorder is not a change of every field. Quantities are compared
after parsing (``"1"`` equals ``1000m``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from ..detectors.freeze import FIELD_PREFIX, QUOTA_NAME
from ..errors import ProofError, QuantityError
from ..models import EditKind, Finding, TargetKind
from ..units import parse_cpu, parse_memory, parse_quantity

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "(unset)"})()
POD_SPEC_PATHS = {"CronJob": ("spec", "jobTemplate", "spec", "template", "spec"), "Pod": ("spec",)}
DEFAULT_POD_SPEC = ("spec", "template", "spec")
RESOURCE_FIELDS = {f"resources.{side}.{res}" for side in ("requests", "limits") for res in ("cpu", "memory")}


@dataclass(frozen=True, order=True)
class ObjectKey:
    api_version: str
    kind: str
    namespace: str          # "" when the rendering gives none
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class FieldChange:
    path: tuple[str, ...]
    before: Any
    after: Any

    @property
    def dotted(self) -> str:
        return ".".join(self.path).replace(".[", "[")

    def __str__(self) -> str:
        return f"{self.dotted} {_show(self.before)} -> {_show(self.after)}"


@dataclass
class ObjectChange:
    key: ObjectKey
    change: str                                   # added | removed | modified
    fields: list[FieldChange] = field(default_factory=list)

    def __str__(self) -> str:
        if self.change != "modified":
            return f"{self.key} {self.change}"
        return f"{self.key}: " + "; ".join(str(f) for f in self.fields[:4]) + (
            f" and {len(self.fields) - 4} more" if len(self.fields) > 4 else "")


@dataclass(frozen=True)
class Intent:
    """What one finding should change in the rendered objects."""

    finding_id: str
    target: str
    kind: str
    namespace: str | None
    name: str
    container: str | None = None                        # None: ``fields`` are paths in the object itself
    fields: tuple[tuple[str, str | None], ...] = ()   # ("resources.requests.cpu", "250m" | None = removed)
    remove: bool = False                                # the object itself goes away (a PersistentVolume)
    add: bool = False                                   # the object may be new (a FreezeGrowth ResourceQuota)
    root: tuple[str, ...] | None = None                 # ``fields`` are keys of this mapping (dots kept)
    at_most: bool = False                               # a rendered value below the intended one is as intended
    entry_point: str | None = None                      # the entry point that deploys it here (DeploySource)
    release: str | None = None                          # helm: the release of that entry point

    @classmethod
    def of(cls, finding: Finding) -> "Intent | None":
        target = finding.target
        if finding.edit.kind == EditKind.PERSISTENT_VOLUME:
            return cls(finding.id, str(target), "PersistentVolume", None, target.name, remove=True)
        if finding.edit.kind == EditKind.RESOURCE_QUOTA:  # spec.hard of the namespace's quota; tighten only
            fields = tuple((c.field.removeprefix(FIELD_PREFIX), c.after) for c in finding.changes
                           if c.field.startswith(FIELD_PREFIX))
            return cls(finding.id, str(target), "ResourceQuota", target.namespace or target.name, QUOTA_NAME, None,
                       fields, add=True, root=("spec", "hard"), at_most=True)
        if finding.edit.kind == EditKind.NODE_POOL:      # cluster-scoped; spec.disruption.* of the object
            fields = tuple((c.field, c.after) for c in finding.changes if c.field.startswith("spec."))
            return cls(finding.id, str(target), "NodePool", None, target.name, None, fields)
        if target.kind != TargetKind.CONTAINER or target.workload is None:
            return None
        fields = tuple((c.field, c.after) for c in finding.changes if c.field in RESOURCE_FIELDS)
        deploy = finding.edit.deploy
        return cls(finding.id, str(target), target.workload.kind, target.workload.namespace, target.workload.name,
                   target.name, fields, entry_point=(deploy.kustomization or deploy.entry_point) if deploy else None,
                   release=deploy.release if deploy and deploy.kind == "helm" else None)

    def match(self, key: ObjectKey) -> str | None:
        """'strong' (kind, namespace, name), 'weak' (the rendering has no namespace) or None."""
        if key.kind != self.kind or key.name != self.name:
            return None
        if self.namespace is None or key.namespace == self.namespace:
            return "strong"
        return "weak" if key.namespace == "" else None


def _show(value: Any) -> str:
    if value is MISSING:
        return "(unset)"
    if isinstance(value, (dict, list)):
        text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
        return text if len(text) <= 80 else text[:79] + "…"
    return str(value)


def objects(text: str, *, namespace: str | None = None, source: str = "rendering") -> dict[ObjectKey, dict]:
    """The objects of a multi-document YAML stream; those without a namespace get ``namespace``."""
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise ProofError(f"the rendered output is not YAML: {exc}", source=source) from None
    found: dict[ObjectKey, dict] = {}
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        items = doc.get("items") if str(doc.get("kind", "")).endswith("List") else None
        for obj in items if isinstance(items, list) else [doc]:
            if isinstance(obj, dict):
                meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
                key = ObjectKey(str(obj.get("apiVersion", "")), str(obj.get("kind", "")),
                                str(meta.get("namespace") or namespace or ""), str(meta.get("name", "")))
                found[key] = obj
    return found


def _keyed(items: list[Any]) -> dict[str, Any] | None:
    """A list of mappings by their ``name`` ('[name]'), when every item has a distinct one."""
    if not items or not all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
        return None
    names = [i["name"] for i in items]
    return {f"[{n}]": i for n, i in zip(names, items)} if len(set(names)) == len(names) else None


def _as_mapping(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, list):
        return _keyed(value) or {f"[{i}]": v for i, v in enumerate(value)}
    return None


def leaf_changes(before: Any, after: Any, path: tuple[str, ...] = ()) -> list[FieldChange]:
    """Every leaf that differs; a side that is absent counts as unset."""
    if before == after:
        return []
    left = {} if before is MISSING else _as_mapping(before)
    right = {} if after is MISSING else _as_mapping(after)
    if left is None or right is None or (before is MISSING and after is MISSING):
        return [FieldChange(path, before, after)]
    if type(before) is not type(after) and before is not MISSING and after is not MISSING:
        return [FieldChange(path, before, after)]
    changes: list[FieldChange] = []
    for key in list(left) + [k for k in right if k not in left]:
        changes += leaf_changes(left.get(key, MISSING), right.get(key, MISSING), path + (key,))
    return changes


def diff(before: dict[ObjectKey, dict], after: dict[ObjectKey, dict]) -> list[ObjectChange]:
    """Objects added, removed or modified (with their changed fields), in key order."""
    changes = []
    for key in sorted(set(before) | set(after)):
        if key not in after:
            changes.append(ObjectChange(key, "removed"))
        elif key not in before:
            changes.append(ObjectChange(key, "added"))
        elif before[key] != after[key]:
            changes.append(ObjectChange(key, "modified", leaf_changes(before[key], after[key])))
    return changes


def pod_spec_path(kind: str) -> tuple[str, ...]:
    return POD_SPEC_PATHS.get(kind, DEFAULT_POD_SPEC)


def _get(obj: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        mapping = _as_mapping(obj) if obj is not MISSING else None
        if mapping is None or part not in mapping:
            return MISSING
        obj = mapping[part]
    return obj


def container_list(obj: dict, kind: str, container: str) -> str | None:
    """'containers' or 'initContainers' (native sidecars), whichever holds ``container``."""
    spec = _get(obj, pod_spec_path(kind))
    for key in ("containers", "initContainers"):
        items = _get(spec, (key,))
        if isinstance(items, list) and any(isinstance(c, dict) and c.get("name") == container for c in items):
            return key
    return None


def intended_path(obj: dict, intent: Intent, field_name: str) -> tuple[str, ...] | None:
    """The path of ``field_name`` (``resources.requests.cpu``) of the intent's container in ``obj``
    (or of the object itself for an intent without a container)."""
    if intent.root is not None:
        return intent.root + (field_name,)
    if intent.container is None:
        return tuple(field_name.split("."))
    where = container_list(obj, intent.kind, intent.container or "")
    if where is None:
        return None
    return pod_spec_path(intent.kind) + (where, f"[{intent.container}]") + tuple(field_name.split("."))


def same_quantity(field_name: str, rendered: Any, wanted: str | None) -> bool:
    """The rendered value is the wanted one (None: absent), quantities compared as numbers."""
    if wanted is None or rendered is MISSING:
        return wanted is None and rendered is MISSING
    if not field_name.endswith(("cpu", "memory")):
        return str(rendered) == str(wanted)
    parse = parse_memory if field_name.endswith("memory") else parse_cpu
    try:
        return abs(parse(rendered) - parse(wanted)) < 1e-9
    except QuantityError:
        return str(rendered) == str(wanted)


def accepts(intent: Intent, field_name: str, rendered: Any, wanted: str | None) -> bool:
    """The rendered value is as intended: the wanted one, or (``at_most``) a quantity at or below it."""
    if same_quantity(field_name, rendered, wanted):
        return True
    if not intent.at_most or wanted is None or rendered is MISSING:
        return False
    try:
        return parse_quantity(rendered) <= parse_quantity(wanted)
    except QuantityError:
        return False


def field_ok(obj: dict, intent: Intent, field_name: str, wanted: str | None) -> tuple[bool, Any]:
    """(the rendered value is the intended one, the rendered value)."""
    path = intended_path(obj, intent, field_name)
    value = MISSING if path is None else _get(obj, path)
    return path is not None and accepts(intent, field_name, value, wanted), value
