"""Edit a Karpenter NodePool manifest's ``spec.disruption`` (round-trip: only those lines change).

    out = edit_node_pool(index, finding, read)
    out.files      # {path: new text}
    out.location   # "path:line" of the first changed value
    out.notes      # what was edited, for the reviewer

The NodePool is found among the repository's YAML documents by kind and name
(``apiVersion: karpenter.sh/...``, plain files and ``kind: List`` items; files
that a kustomization uses as a patch are not definitions). Exactly one
definition must exist: none, or several, is refused with the files named.
Each ``spec.*`` change of the finding is applied with :mod:`.yamledit` (an
existing value is replaced in place, a missing key is added under its
mapping) after checking that the repository holds the value the cluster runs;
the ``nodes`` change is the expected outcome and is not written.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..errors import EditError, SourceNotFound
from ..models import Change, Finding
from . import yamledit
from .locate import Ambiguous, Definition, RepoIndex

KIND = "NodePool"
API_GROUP = "karpenter.sh/"


@dataclass(slots=True)
class NodePoolEdit:
    files: dict[str, str] = field(default_factory=dict)
    location: str | None = None
    notes: list[str] = field(default_factory=list)


def find_node_pool(index: RepoIndex, name: str) -> Definition:
    """The one document that defines NodePool ``name`` (SourceNotFound / Ambiguous otherwise)."""
    patches = {p.path for k in index.kustomizations.values() for p in k.patches}
    found: list[Definition] = []
    for rel in index.yaml_files:
        if rel in patches or index.is_helm_template(rel):
            continue
        for i, doc in enumerate(index.load(rel) or []):
            for prefix, obj in _objects(doc):
                meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
                if obj.get("kind") == KIND and str(obj.get("apiVersion", "")).startswith(API_GROUP) \
                        and meta.get("name") == name:
                    found.append(Definition(rel, i, prefix, KIND, name, None))
    if not found:
        raise SourceNotFound(f"NodePool {name} not found in the repository (searched {len(index.yaml_files)} YAML "
                             "files for kind: NodePool, apiVersion karpenter.sh/*); if a Helm chart templates it, "
                             "change spec.disruption in its values by hand")
    if len(found) > 1:
        raise Ambiguous(f"NodePool {name} is defined in several files: "
                        f"{', '.join(sorted(f'{d.path} (document {d.doc + 1})' for d in found))}; keep one "
                        "definition per NodePool in the paths this cluster applies (spec.git.paths)")
    return found[0]


def _objects(doc: Any) -> list[tuple[list[Any], dict]]:
    if not isinstance(doc, dict):
        return []
    if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
        return [(["items", j], item) for j, item in enumerate(doc["items"]) if isinstance(item, dict)]
    return [([], doc)]


def edit_node_pool(index: RepoIndex, finding: Finding, read: Callable[[str], str]) -> NodePoolEdit:
    """Apply the finding's ``spec.*`` changes to the NodePool's manifest (all of them, or an EditError)."""
    defn = find_node_pool(index, finding.target.name)
    text = read(defn.path)
    out = NodePoolEdit()
    for change in finding.changes:
        if not change.field.startswith("spec."):
            continue                                   # "nodes": the expected outcome, not a manifest field
        try:
            text, line = _apply(text, defn, change)
        except EditError as exc:
            raise exc.located(source=defn.path) from None
        out.location = out.location or f"{defn.path}:{line}"
        out.notes.append(f"NodePool {defn.name} in {defn.path}: {change.field.removeprefix('spec.')} "
                         f"{change.before if change.before is not None else '(unset)'} -> {change.after}")
    if text == read(defn.path):
        raise EditError(f"NodePool {defn.name}: the finding has no spec change to write", source=defn.path)
    out.files[defn.path] = text
    return out


def _navigate(root: Node, keys: list[Any]) -> Node | None:
    node: Node | None = root
    for key in keys:
        if isinstance(key, int) and isinstance(node, SequenceNode) and key < len(node.value):
            node = node.value[key]
        else:
            node = yamledit.get(node, str(key))
    return node


def _apply(text: str, defn: Definition, change: Change) -> tuple[str, int]:
    """One value set or added; returns the new text and the line of the value."""
    if change.after is None:
        raise EditError(f"removing {change.field} is not supported; the detector proposes values only")
    docs = {d.index: d for d in yamledit.compose(text, defn.path)}
    root = docs[defn.doc].node if defn.doc in docs else None
    owner = _navigate(root, defn.prefix) if root is not None else None
    if not isinstance(owner, MappingNode):
        raise EditError(f"document {defn.doc + 1} no longer holds NodePool {defn.name}")
    keys = change.field.split(".")
    chain: list[Node] = [owner]
    for key in keys:
        nxt = yamledit.get(chain[-1], key)
        if nxt is None:
            break
        chain.append(nxt)
    if len(chain) == len(keys) + 1:
        leaf = chain[-1]
        if not isinstance(leaf, ScalarNode):
            raise EditError(f"{change.field} is not a plain value", field=change.field)
        if leaf.value != (change.before or ""):
            raise EditError(f"the repository has {keys[-1]}: {leaf.value} but the cluster runs "
                            f"{change.before or '(unset)'}; sync the NodePool before changing it",
                            field=change.field)
        new = yamledit.set_scalar(text, leaf, change.after)
    else:
        if change.before is not None:
            raise EditError(f"the repository does not set {keys[-1]} but the cluster runs {change.before}; "
                            "sync the NodePool before changing it", field=change.field)
        holder = chain[-1]
        if not isinstance(holder, MappingNode) or not (holder.value or holder.flow_style):
            raise EditError(f"cannot add {change.field}: {'.'.join(keys[:len(chain) - 1]) or 'the document'} "
                            "is not a mapping with keys", field=change.field)
        new = yamledit.insert_keys(text, holder, keys[len(chain) - 1:], change.after,
                                   indent_step=yamledit.indent_step(root))
    yamledit.verify(text, new, defn.path, defn.doc, defn.prefix + keys, change.after,
                    prune_from=len(defn.prefix) + 1)
    return new, _line_of(new, defn, keys)


def _line_of(text: str, defn: Definition, keys: list[str]) -> int:
    docs = {d.index: d for d in yamledit.compose(text, defn.path)}
    node = _navigate(docs[defn.doc].node, defn.prefix + keys)
    return yamledit.line_of(text, node.start_mark.index) if node is not None else 1
