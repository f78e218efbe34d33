"""Container resource edits in Kubernetes manifests, Kustomize patches and Helm values.

Two steps: :func:`resolve_container` decides WHERE a container's resources live
(plain YAML, an overlay patch, a Helm values mapping) as a :class:`YamlTarget`, and
:func:`apply_change` changes one value there by splicing the file's text
(:mod:`.yamledit`), re-checking that nothing else moved.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .. import safeio
from ..errors import EditError, QuantityError, SourceNotFound, UnreadableFile
from ..gitops.deploymap import RepoEntry, ambiguity, candidates
from ..models import Change, DeploySource, Finding
from ..units import parse_cpu, parse_memory
from . import yamledit
from .helmvalues import helm_target
from .locate import Ambiguous, Chain, Definition, RepoIndex, pod_spec_path

RESOURCE_FIELDS = {"resources.requests.cpu", "resources.requests.memory",
                   "resources.limits.cpu", "resources.limits.memory"}


@dataclass(slots=True)
class YamlTarget:
    """Where a container's ``resources`` mapping lives: file, document, key path to its owner."""

    path: str
    doc: int
    owner: list[Any]               # key path from the document root to the mapping holding `resources`
    what: str                      # human description for notes and errors
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- resolving


def resolve_container(index: RepoIndex, finding: Finding, deploy: DeploySource | None = None) -> YamlTarget:
    """Find the file and key path to edit for a container finding (raises SourceNotFound/EditError).

    ``deploy`` (default: the finding's ``edit.deploy``, from :mod:`..gitops.deploymap`) is the entry
    point that deploys the workload in this cluster: only what it renders is a candidate. Without
    one, several entry points rendering the workload is a refusal naming them (never the first wins).
    """
    ref, container = finding.target.workload, finding.target.name
    if ref is None:
        raise EditError(f"finding {finding.id} has a container target without a workload")
    deploy = deploy or finding.edit.deploy
    entry = deploying_entry(index, ref, deploy)
    hint = finding.edit.source_hint
    if hint and hint.strip():
        _hint_inside(ref, hint.strip(), entry, deploy)
        return _from_hint(index, ref, container, hint.strip(), entry)
    if deploy is not None and deploy.kind == "helm":
        target = helm_target(index, ref, container, None, only_paths=_helm_files(index, deploy))
        if target is None:
            raise SourceNotFound(f"{_ref_text(ref)}: no Helm values for container {container} in "
                                 f"{_deploy_text(deploy)}; add annotation {safeio.SOURCE_HINT_KEY}: "
                                 "<values file>#<key.path.to.resources> to the workload")
        return YamlTarget(*target)
    matches = _matching_definitions(index, ref, None, entry)
    if len(matches) == 1:
        return _with_patches(index, ref, container, *matches[0])
    if len(matches) > 1:
        paths = ", ".join(sorted({f"{d.path} (document {d.doc + 1})" for d, _ in matches}))
        raise Ambiguous(f"{_ref_text(ref)} is defined in several places: {paths}; add annotation "
                        f"{safeio.SOURCE_HINT_KEY}: <path> to the workload to say which one to edit")
    if deploy is not None and deploy.kind != "helm" and index.definitions.get((ref.kind, ref.name)):
        raise SourceNotFound(f"{_ref_text(ref)} is not rendered by {_deploy_text(deploy)} (it is defined in "
                             f"{', '.join(sorted({d.path for d in index.definitions[(ref.kind, ref.name)]}))}); "
                             "check the entry point the policy or the GitOps controller names")
    target = helm_target(index, ref, container, None)
    if target is not None:
        return YamlTarget(*target)
    raise _not_found(index, ref)


def _deploy_text(deploy: DeploySource) -> str:
    return f"entry point {deploy.entry_point} ({deploy.kind}, decided by {deploy.rule})"


def deploying_entry(index: RepoIndex, ref, deploy: DeploySource | None) -> RepoEntry | None:
    """The entry point that deploys ``ref`` here: the DeploySource's, else the only candidate.

    Several candidates and no DeploySource: refused with the candidates and the fix.
    """
    if deploy is not None:
        if deploy.kind == "helm":
            return None
        entry = index.entry(deploy.entry_point)
        if entry is None:
            raise SourceNotFound(f"{_ref_text(ref)}: {_deploy_text(deploy)} is not an entry point of the "
                                 "repository (no kustomization, chart or manifests there); check spec.git.paths, "
                                 "the controller's path, or the policy's repository")
        return entry
    found = [e for e in candidates(index.catalogue(), ref) if e.kind != "helm"]
    if len(found) > 1:
        raise Ambiguous(ambiguity(ref, found))
    return found[0] if found else None


def _hint_inside(ref, hint: str, entry: RepoEntry | None, deploy: DeploySource | None) -> None:
    """A source hint must name a file of the entry point a controller or the policy chose."""
    path, _, _ = safeio.split_source_hint(hint)
    if deploy is None or deploy.rule == "annotation" or entry is None:
        return
    if path in entry.inputs or path == entry.path or path.startswith(entry.path.rstrip("/") + "/") \
            or entry.path == ".":
        return
    raise SourceNotFound(f"source hint {hint!r} of {_ref_text(ref)} is outside {_deploy_text(deploy)}, which "
                         f"deploys it in this cluster; point {safeio.SOURCE_HINT_KEY} at one of its files")


def _helm_files(index: RepoIndex, deploy: DeploySource) -> set[str]:
    """Files whose Helm values may feed the release: its values files, else the chart's own."""
    if deploy.values_files or deploy.inline_values:
        return set(deploy.values_files) | set(deploy.inline_values)
    prefix = deploy.entry_point.rstrip("/") + "/"
    return {v.path for v in index.values if v.path.startswith(prefix)}


def _ref_text(ref) -> str:
    return f"{ref.kind} {ref.namespace}/{ref.name}"


def _not_found(index: RepoIndex, ref) -> SourceNotFound:
    msg = (f"{_ref_text(ref)} not found in the repository (searched {len(index.yaml_files)} YAML files; "
           f"add annotation {safeio.SOURCE_HINT_KEY}: <path> to the workload)")
    broken = index.malformed_mentioning(ref.name)
    if broken:
        msg += "; these files mention it but could not be parsed: " + "; ".join(str(e) for e in broken)
    return SourceNotFound(msg)


def _matching_definitions(index: RepoIndex, ref, under: str | None,
                          entry: RepoEntry | None = None) -> list[tuple[Definition, list[Chain]]]:
    """Definitions of ``ref`` (under ``under``; rendered by ``entry``), with the chains that deploy them."""
    strong, weak = [], []
    for defn in index.definitions.get((ref.kind, ref.name), []):
        if under and not (defn.path == under or defn.path.startswith(under.rstrip("/") + "/")):
            continue
        if entry is not None and defn.path not in entry.inputs:
            continue
        namespaces, chains = index.namespaces_of(defn)
        if entry is not None:
            chains = [c for c in chains if c.dirs[0] == entry.path]
            namespaces = {c.namespace for c in chains if c.namespace} or \
                ({defn.namespace or entry.namespace} - {None})
        if ref.namespace in namespaces:
            chosen = [c for c in chains if (c.namespace or defn.namespace) == ref.namespace]
            strong.append((defn, chosen))
        elif not namespaces:
            weak.append((defn, chains))
    return strong or weak


def _from_hint(index: RepoIndex, ref, container: str, hint: str, entry: RepoEntry | None = None) -> YamlTarget:
    path, keypath, problem = safeio.split_source_hint(hint)
    if problem:
        raise SourceNotFound(f"source hint {hint!r} of {_ref_text(ref)}: the path {problem}; fix the "
                             "finops.dev/source annotation")
    try:
        full = safeio.inside(index.root, path)
    except UnreadableFile as exc:
        raise SourceNotFound(f"source hint {hint!r} of {_ref_text(ref)}: {exc.message}; fix the "
                             "finops.dev/source annotation") from None
    if not full.exists():
        raise SourceNotFound(f"source hint {hint!r} of {_ref_text(ref)} points to {path}, which does not "
                             "exist in the repository; fix the finops.dev/source annotation")
    if full.is_dir():
        matches = _matching_definitions(index, ref, path, entry)
        if len(matches) == 1:
            return _with_patches(index, ref, container, *matches[0])
        raise SourceNotFound(f"source hint {hint!r}: {len(matches)} definitions of {_ref_text(ref)} under "
                             f"{path}; point the finops.dev/source annotation at one file")
    docs = index.load(path)
    if docs is None:
        raise index.errors.get(path) or SourceNotFound(f"source hint {hint!r}: {path} is not a YAML file "
                                                       "of the repository; fix the finops.dev/source annotation")
    if keypath:
        owner: list[Any] = [int(p) if p.isdigit() else p for p in keypath.strip(".").split(".")]
        if owner and owner[-1] == "resources":
            owner = owner[:-1]
        doc = next((i for i, d in enumerate(docs) if _has_path(d, owner)), None)
        if doc is None:
            raise SourceNotFound(f"source hint {hint!r}: {keypath} does not exist in {path}; fix the "
                                 "finops.dev/source annotation (format: path#key.path.to.resources)")
        return YamlTarget(path, doc, owner, f"Helm values {path} ({'.'.join(map(str, owner + ['resources']))})")
    defs = [d for d in index.definitions.get((ref.kind, ref.name), []) if d.path == path]
    if defs:
        _, chains = index.namespaces_of(defs[0])
        chains = [c for c in chains if c.namespace == ref.namespace and (entry is None or c.dirs[0] == entry.path)]
        return _with_patches(index, ref, container, defs[0], chains)
    for i, doc in enumerate(docs):
        if isinstance(doc, dict) and doc.get("kind") == ref.kind and (doc.get("metadata") or {}).get("name") == ref.name:
            return _container_target(path, i, [], doc, ref.kind, container, f"{path}")
    target = helm_target(index, ref, container, path)
    if target is not None:
        return YamlTarget(*target)
    raise SourceNotFound(f"source hint {hint!r}: {path} defines no {_ref_text(ref)} and no Helm values for "
                         f"container {container}; use path#key.path.to.resources for a values file")


def _has_path(data: Any, keys: list[Any]) -> bool:
    for key in keys:
        if isinstance(data, dict) and key in data:
            data = data[key]
        elif isinstance(data, list) and isinstance(key, int) and key < len(data):
            data = data[key]
        else:
            return False
    return isinstance(data, dict)


def _container_target(path: str, doc_index: int, prefix: list[Any], doc: dict, kind: str,
                      container: str, what: str) -> YamlTarget:
    spec_path = pod_spec_path(kind)
    spec: Any = doc
    for key in spec_path:
        spec = spec.get(key) if isinstance(spec, dict) else None
    for list_key in ("containers", "initContainers"):
        listed = spec.get(list_key) if isinstance(spec, dict) else None
        for i, c in enumerate(listed if isinstance(listed, list) else []):
            if isinstance(c, dict) and c.get("name") == container:
                return YamlTarget(path, doc_index, prefix + spec_path + [list_key, i], what)
    raise SourceNotFound(f"{path}: {kind} {(doc.get('metadata') or {}).get('name')} has no container "
                         f"named {container!r} (looked in containers and initContainers)")


def _with_patches(index: RepoIndex, ref, container: str, defn: Definition, chains: list[Chain]) -> YamlTarget:
    """An overlay patch that sets this container's resources wins over the base."""
    for chain in chains:
        for patch in index.patches_for(chain):
            docs = index.load(patch.path)
            if docs is None:
                raise index.errors.get(patch.path) or EditError("cannot read patch", source=patch.path)
            for i, doc in enumerate(docs):
                target = _patch_container(index, patch, i, doc, ref, container)
                if target is not None:
                    return target
    doc = index.load(defn.path)[defn.doc]
    for key in defn.prefix:
        doc = doc[key]
    target = _container_target(defn.path, defn.doc, defn.prefix, doc, ref.kind, container, defn.path)
    others = sorted({c.namespace for c in index.chains(defn.path) if c.namespace and c.namespace != ref.namespace})
    if others:
        target.notes.append(f"{defn.path} is a Kustomize base also deployed to namespace(s) "
                            f"{', '.join(others)}; this change applies there too")
    return target


def _patch_container(index: RepoIndex, patch, i: int, doc: Any, ref, container: str) -> YamlTarget | None:
    names_target = (patch.target.get("name") in (None, ref.name) and patch.target.get("kind") in (None, ref.kind))
    if isinstance(doc, list):   # JSON 6902 operations: too risky to rewrite, say so
        touches = any(isinstance(op, dict) and "/resources" in str(op.get("path", "")) for op in doc)
        if touches and patch.target.get("name") == ref.name:
            raise EditError(f"resources of {_ref_text(ref)} are set by a JSON 6902 patch; change "
                            "it by hand or turn it into a strategic-merge patch", source=patch.path)
        return None
    if not isinstance(doc, dict):
        return None
    meta = doc.get("metadata") or {}
    kind_ok = doc.get("kind", ref.kind) == ref.kind and meta.get("name", ref.name) == ref.name
    if not (kind_ok and names_target):
        return None
    try:
        target = _container_target(patch.path, i, [], doc, ref.kind, container,
                                   f"Kustomize patch {patch.path}")
    except SourceNotFound:
        return None
    c: Any = doc
    for key in target.owner:
        c = c[key]
    return target if "resources" in c else None


# --------------------------------------------------------------------------- editing


def _navigate(node: Node, keys: list[Any], path: str) -> Node:
    for key in keys:
        if isinstance(key, int) and isinstance(node, SequenceNode) and key < len(node.value):
            node = node.value[key]
        elif isinstance(node, MappingNode) and yamledit.get(node, str(key)) is not None:
            node = yamledit.get(node, str(key))
        else:
            raise EditError(f"key {'.'.join(map(str, keys))} moved while editing", source=path)
    return node


def _same_quantity(field_name: str, a: str, b: str) -> bool:
    try:
        if field_name.endswith("cpu"):
            return abs(parse_cpu(a) - parse_cpu(b)) < 1e-9
        return parse_memory(a) == parse_memory(b)
    except QuantityError:
        return a.strip() == b.strip()


def apply_change(text: str, target: YamlTarget, change: Change) -> tuple[str, int]:
    """Apply one resources change; returns the new text and the 1-based line of the value."""
    if change.field not in RESOURCE_FIELDS:
        raise EditError(f"unsupported field {change.field!r} (expected one of {sorted(RESOURCE_FIELDS)})")
    return apply_keys(text, target.path, target.doc, target.owner, change.field.split("."), change)


def apply_keys(text: str, path: str, doc: int, owner_keys: list[Any], keys: list[str],
               change: Change) -> tuple[str, int]:
    """Set (insert, remove) ``keys`` below the mapping at ``owner_keys`` to ``change.after``.

    ``change.before`` is checked against the value found there (a quantity of the kind
    ``change.field`` names). Returns the new text and the 1-based line of the value.
    """
    docs = {d.index: d for d in yamledit.compose(text, path)}
    if doc not in docs:
        raise EditError(f"document {doc + 1} disappeared while editing", source=path)
    root = docs[doc].node
    owner = _navigate(root, owner_keys, path)
    if not isinstance(owner, MappingNode):
        raise EditError(f"{'.'.join(map(str, owner_keys))} is not a mapping", source=path)
    chain: list[Node] = [owner]
    for key in keys:
        nxt = yamledit.get(chain[-1], key) if isinstance(chain[-1], MappingNode) else None
        if nxt is None:
            break
        chain.append(nxt)
    leaf = chain[-1] if len(chain) == len(keys) + 1 else None
    if leaf is not None and not isinstance(leaf, ScalarNode):
        raise EditError(f"{path}:{'.'.join(map(str, owner_keys + keys))} is not a plain value", source=path)
    if leaf is not None and change.before is not None and not yamledit.is_null(leaf) \
            and not _same_quantity(change.field, leaf.value, change.before):
        raise disagree(path, change, leaf.value, ".".join(map(str, owner_keys + keys)))
    if change.after is None:
        if leaf is None:
            return text, yamledit.line_of(text, owner.start_mark.index)
        new = _remove(text, chain, keys)
    elif leaf is not None:
        new = yamledit.set_scalar(text, leaf, change.after)
    else:
        new = _insert(text, chain, keys, change.after, root)
    yamledit.verify(text, new, path, doc, owner_keys + keys, change.after, prune_from=len(owner_keys) + 1)
    return new, _line_after(new, path, doc, owner_keys, keys)


def disagree(path: str, change: Change, found: str, where: str) -> EditError:
    return EditError(f"the repository has {change.field.rsplit('.', 1)[-1]}: {found} but the cluster runs "
                     f"{change.before}; the repository and the cluster disagree, sync them before right-sizing",
                     source=path, field=where)


def same_value(change: Change, found: Any) -> bool:
    """Whether a value found in a layer is what the cluster runs (``change.before``)."""
    if found is None or change.before is None:
        return True
    return _same_quantity(change.field, str(found), change.before)


def _line_after(text: str, path: str, doc: int, owner: list[Any], keys: list[str]) -> int:
    """Line of the changed value in the new text (of its owner when the key was removed)."""
    docs = {d.index: d for d in yamledit.compose(text, path)}
    node = _navigate(docs[doc].node, owner, path)
    for key in keys:
        nxt = yamledit.get(node, key)
        if nxt is None:
            break
        node = nxt
    return yamledit.line_of(text, node.start_mark.index)


def _remove(text: str, chain: list[Node], keys: list[str]) -> str:
    """Remove the leaf key, or its highest ancestor (up to `resources`) left holding nothing else."""
    depth = len(keys) - 1             # chain[depth] is the mapping holding keys[depth]
    while depth > 0 and isinstance(chain[depth], MappingNode) and len(chain[depth].value) == 1:
        depth -= 1
    return yamledit.remove_key(text, chain[depth], keys[depth])


def _insert(text: str, chain: list[Node], keys: list[str], value: str, root: Node) -> str:
    depth = len(chain) - 1            # chain[depth] exists; keys[depth] is missing below it
    holder = chain[depth]
    step = yamledit.indent_step(root)
    if yamledit.is_null(holder) and depth > 0:
        parent = chain[depth - 1]
        knode, _ = yamledit.get_pair(parent, keys[depth - 1])
        return yamledit.insert_under_null(text, knode, holder, keys[depth:], value, indent_step=step)
    if isinstance(holder, MappingNode) and (holder.value or holder.flow_style):
        return yamledit.insert_keys(text, holder, keys[depth:], value, indent_step=step)
    raise EditError(f"cannot add {'.'.join(keys)} under a {type(holder).__name__} at line "
                    f"{yamledit.line_of(text, holder.start_mark.index)}")


def remove_document(text: str, path: str, kind: str, name: str) -> str | None:
    """Text without the document ``kind``/``name``; None when it was the file's only document."""
    docs = [d for d in yamledit.compose(text, path) if isinstance(d.node, MappingNode)]
    hits = [d for d in docs if yamledit.scalar(yamledit.get(d.node, "kind")) == kind
            and yamledit.scalar(yamledit.get_path(d.node, ["metadata", "name"])) == name]
    if not hits:
        raise SourceNotFound(f"no {kind} {name} document", source=path)
    if len(docs) == 1:
        return None
    doc = hits[0]
    if doc.sep is not None:                   # drop its own '---' line and its text
        return text[:doc.sep] + text[doc.end:]
    following = [d for d in docs if d.sep is not None and d.sep >= doc.end]
    cut = following[0].start if following else doc.end   # first document: drop the next '---' too
    return text[:0] + text[cut:]
