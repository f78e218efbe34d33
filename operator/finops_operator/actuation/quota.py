"""Add or tighten a namespace's FreezeGrowth ResourceQuota where the GitOps repository defines the namespace.

    out = edit_quota(index, finding, read)
    out.files      # {path: new text}: the quota file (edited or new) and, for a new one, the kustomization
    out.location   # "path:line" of the quota
    out.notes      # what was done, for the reviewer

The ``kind: Namespace`` document named after the finding's namespace is looked up
among the repository's YAML (plain files and ``kind: List`` items; kustomize patch
files and Helm templates are not definitions). Exactly one must exist; none, or
several, is refused with what was looked for.

* A ResourceQuota named :data:`..detectors.freeze.QUOTA_NAME` for that namespace
  already in the repository is edited in place (round-trip: only its ``spec.hard``
  values move): each wanted value is written only when it is lower than the one
  there (tighten only, the minimum is kept); a missing resource is added.
* Otherwise :data:`..detectors.freeze.QUOTA_FILE` is added beside the Namespace
  manifest, and every kustomization that lists the Namespace file in its
  ``resources:`` gets the new file appended, so the same builds render it.

Nothing to tighten (the repository's quota is already as strict) is refused with
that reason: the finding is skipped, no branch is written for it.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Callable

from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

from ..detectors.freeze import FIELD_PREFIX, QUOTA_FILE, QUOTA_NAME, quantity
from ..errors import EditError, QuantityError, SourceNotFound
from ..models import Finding
from . import yamledit
from .locate import Ambiguous, Definition, RepoIndex

MANAGED_BY = "app.kubernetes.io/managed-by"


@dataclass(slots=True)
class QuotaEdit:
    files: dict[str, str] = field(default_factory=dict)
    location: str | None = None
    notes: list[str] = field(default_factory=list)


def _objects(doc: Any) -> list[tuple[list[Any], dict]]:
    if not isinstance(doc, dict):
        return []
    if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
        return [(["items", j], item) for j, item in enumerate(doc["items"]) if isinstance(item, dict)]
    return [([], doc)]


def _documents(index: RepoIndex, kind: str, name: str) -> list[tuple[Definition, dict]]:
    """Every definition of ``kind``/``name`` (not patches, not Helm templates), with its data."""
    patches = {p.path for k in index.kustomizations.values() for p in k.patches}
    found = []
    for rel in index.yaml_files:
        if rel in patches or index.is_helm_template(rel):
            continue
        for i, doc in enumerate(index.load(rel) or []):
            for prefix, obj in _objects(doc):
                meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
                if obj.get("kind") == kind and meta.get("name") == name:
                    ns = meta.get("namespace")
                    found.append((Definition(rel, i, prefix, kind, name, ns if isinstance(ns, str) else None), obj))
    return found


def find_namespace(index: RepoIndex, namespace: str) -> Definition:
    """The one ``kind: Namespace`` document named ``namespace`` (SourceNotFound / Ambiguous otherwise)."""
    found = [d for d, _ in _documents(index, "Namespace", namespace)]
    if not found:
        raise SourceNotFound(
            f"Namespace {namespace} not found in the repository: looked for a `kind: Namespace` document named "
            f"{namespace} in {len(index.yaml_files)} YAML files (plain manifests, List items and kustomization "
            f"resources; patches and Helm templates are not definitions); add its manifest to the repository, or "
            f"create ResourceQuota {QUOTA_NAME} in namespace {namespace} by hand")
    if len(found) > 1:
        raise Ambiguous(f"Namespace {namespace} is defined in several files: "
                        f"{', '.join(sorted(f'{d.path} (document {d.doc + 1})' for d in found))}; keep one "
                        "definition per namespace so the operator knows where its ResourceQuota belongs")
    return found[0]


def _existing_quota(index: RepoIndex, namespace: str, home: Definition) -> Definition | None:
    """The repository's ResourceQuota ``QUOTA_NAME`` of ``namespace`` (by its namespace, or beside ``home``)."""
    here = str(PurePosixPath(home.path).parent)
    mine = []
    for defn, _ in _documents(index, "ResourceQuota", QUOTA_NAME):
        chained = {c.namespace for c in index.chains(defn.path) if c.namespace}
        if defn.namespace == namespace or (defn.namespace is None and (
                namespace in chained or (not chained and str(PurePosixPath(defn.path).parent) == here))):
            mine.append(defn)
    if len(mine) > 1:
        raise Ambiguous(f"ResourceQuota {QUOTA_NAME} of namespace {namespace} is defined in several files: "
                        f"{', '.join(sorted(d.path for d in mine))}; keep one")
    return mine[0] if mine else None


def wanted_hard(finding: Finding) -> dict[str, str]:
    """The finding's ``spec.hard`` values by resource name (``requests.cpu`` keeps its dot)."""
    return {c.field.removeprefix(FIELD_PREFIX): c.after for c in finding.changes
            if c.field.startswith(FIELD_PREFIX) and c.after is not None}


def edit_quota(index: RepoIndex, finding: Finding, read: Callable[[str], str]) -> QuotaEdit:
    """Add or tighten the namespace's FreezeGrowth ResourceQuota (module docstring); EditError when it cannot."""
    namespace = finding.target.namespace or finding.target.name
    hard = wanted_hard(finding)
    if not hard:
        raise EditError(f"the FreezeGrowth finding for namespace {namespace} has no spec.hard value to write")
    home = find_namespace(index, namespace)
    existing = _existing_quota(index, namespace, home)
    if existing is not None:
        return _tighten(existing, hard, read)
    return _add(index, home, namespace, hard, read)


# --------------------------------------------------------------------------- tighten an existing quota


def _tighten(defn: Definition, hard: dict[str, str], read: Callable[[str], str]) -> QuotaEdit:
    text = read(defn.path)
    out = QuotaEdit()
    for resource in sorted(hard):
        try:
            text, note = _tighten_one(text, defn, resource, hard[resource])
        except (EditError, QuantityError) as exc:
            raise EditError(exc.message, source=defn.path, field=f"spec.hard.{resource}") from None
        out.notes.append(note)
    if text == read(defn.path):
        raise EditError(f"ResourceQuota {QUOTA_NAME} already holds limits at or below the freeze "
                        f"({', '.join(f'{k}={v}' for k, v in sorted(hard.items()))}); nothing to tighten",
                        source=defn.path)
    out.files[defn.path] = text
    out.location = f"{defn.path}:{_line(text, defn)}"
    return out


def _node(text: str, defn: Definition) -> tuple[Any, MappingNode]:
    docs = {d.index: d for d in yamledit.compose(text, defn.path)}
    root = docs[defn.doc].node if defn.doc in docs else None
    node = root
    for key in defn.prefix:
        node = node.value[key] if isinstance(key, int) and isinstance(node, SequenceNode) else yamledit.get(node, str(key))
    if not isinstance(node, MappingNode):
        raise EditError(f"document {defn.doc + 1} no longer holds ResourceQuota {QUOTA_NAME}")
    return root, node


def _tighten_one(text: str, defn: Definition, resource: str, wanted: str) -> tuple[str, str]:
    root, obj = _node(text, defn)
    spec = yamledit.get(obj, "spec")
    hard = yamledit.get(spec, "hard") if isinstance(spec, MappingNode) else None
    current = yamledit.get(hard, resource) if isinstance(hard, MappingNode) else None
    if current is not None:
        if not isinstance(current, ScalarNode):
            raise EditError("is not a plain value")
        if quantity(resource, current.value) <= quantity(resource, wanted):
            return text, f"kept {resource}: {current.value} (already at or below {wanted}: tighten only)"
        new = yamledit.set_scalar(text, current, wanted)
        note = f"tightened {resource}: {current.value} -> {wanted}"
    else:
        holder, keys = (hard, [resource]) if isinstance(hard, MappingNode) else \
            (spec, ["hard", resource]) if isinstance(spec, MappingNode) else (obj, ["spec", "hard", resource])
        if not (holder.value or holder.flow_style):
            raise EditError(f"cannot add {resource}: its mapping is empty; write `hard: {{}}` with a key")
        new = yamledit.insert_keys(text, holder, keys, wanted, indent_step=yamledit.indent_step(root))
        note = f"added {resource}: {wanted}"
    yamledit.verify(text, new, defn.path, defn.doc, defn.prefix + ["spec", "hard", resource], wanted,
                    prune_from=len(defn.prefix) + 1)
    return new, f"ResourceQuota {QUOTA_NAME} in {defn.path}: {note}"


def _line(text: str, defn: Definition) -> int:
    _, obj = _node(text, defn)
    hard = yamledit.get_path(obj, ["spec", "hard"])
    node = hard if hard is not None else obj
    return yamledit.line_of(text, node.start_mark.index)


# --------------------------------------------------------------------------- add a new quota file


def quota_manifest(namespace: str, hard: dict[str, str]) -> str:
    """The new ResourceQuota document (values quoted: ``"12"`` stays a string quantity)."""
    lines = ["# FreezeGrowth: added by finops-operator when a Budget crossed its threshold (see the pull request).",
             "apiVersion: v1", "kind: ResourceQuota", "metadata:", f"  name: {QUOTA_NAME}",
             f"  namespace: {namespace}", "  labels:", f"    {MANAGED_BY}: finops-operator", "spec:", "  hard:"]
    lines += [f"    {resource}: {json.dumps(str(hard[resource]))}" for resource in sorted(hard)]
    return "\n".join(lines) + "\n"


def _add(index: RepoIndex, home: Definition, namespace: str, hard: dict[str, str],
         read: Callable[[str], str]) -> QuotaEdit:
    directory = PurePosixPath(home.path).parent
    rel = str(directory / QUOTA_FILE) if str(directory) != "." else QUOTA_FILE
    if index.is_file(rel):
        raise EditError(f"{rel} exists but does not define ResourceQuota {QUOTA_NAME} of namespace {namespace}; "
                        "rename it or add the quota to it by hand", source=rel)
    out = QuotaEdit({rel: quota_manifest(namespace, hard)}, f"{rel}:1",
                    [f"added {rel}: ResourceQuota {QUOTA_NAME} ("
                     + ", ".join(f"{k}={hard[k]}" for k in sorted(hard)) + f"), beside Namespace {namespace} "
                     f"in {home.path}"])
    for kustomization in sorted(index.kustomizations.values(), key=lambda k: k.path):
        if home.path not in kustomization.resources:
            continue
        entry = str(PurePosixPath(_relative(rel, kustomization.dir)))
        out.files[kustomization.path] = add_resource_entry(read(kustomization.path), kustomization.path, entry)
        out.notes.append(f"listed {entry} in the resources of {kustomization.path}")
    return out


def _relative(path: str, directory: str) -> str:
    """``path`` relative to ``directory`` (both repository-relative, POSIX)."""
    target, base = PurePosixPath(path).parts, ([] if directory == "." else list(PurePosixPath(directory).parts))
    common = 0
    while common < min(len(target), len(base)) and target[common] == base[common]:
        common += 1
    return "/".join([".."] * (len(base) - common) + list(target[common:]))


def add_resource_entry(text: str, path: str, entry: str) -> str:
    """The kustomization with ``- entry`` appended to its block ``resources:`` list; self-checked."""
    docs = yamledit.compose(text, path)
    root = docs[0].node if docs else None
    pair = yamledit.get_pair(root, "resources") if isinstance(root, MappingNode) else None
    seq = pair[1] if pair else None
    if not isinstance(seq, SequenceNode) or seq.flow_style or not seq.value:
        raise EditError(f"`resources:` is not a block list; add {entry} to it by hand", source=path,
                        field="resources")
    first = seq.value[0]
    line_start = text.rfind("\n", 0, first.start_mark.index) + 1
    pad = " " * (text.index("-", line_start) - line_start)
    at = yamledit._content_line_end(text, yamledit._last_end(seq))
    plain = re.fullmatch(r"[A-Za-z0-9_.][A-Za-z0-9_./-]*", entry) is not None   # a path reads as itself
    new = text[:at] + f"\n{pad}- {entry if plain else yamledit.render_scalar(entry, None)}" + text[at:]
    before, after = yamledit.load_data(text, path)[0], yamledit.load_data(new, path)[0]
    expected = {**before, "resources": list(before.get("resources") or []) + [entry]}
    if yamledit._stringify(after) != yamledit._stringify(expected):
        raise EditError("adding the resources entry changed more than `resources:`", source=path)
    return new
