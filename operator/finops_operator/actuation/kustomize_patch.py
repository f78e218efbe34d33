"""Write container resources through this overlay's own patches, and edit inline patches in place.

    write = overlay_patch(layers, container, {"resources.requests.cpu": "250m"}, read)
    write.files     # path -> new text (a new strategic-merge patch, the kustomization's `patches:`)
    write.sites     # fields to set in an existing strategic-merge patch that already names the container

When a value lives in a base (or component) that other overlays also build, the
change goes into a strategic-merge patch of this overlay: the one it already has
for the workload (the container is added to it when missing), else a new file
``finops-resources-<workload>.yaml`` beside the kustomization, listed at the end of
its ``patches:``. Texts are spliced (comments and layout stay); every result is
parsed back and compared with what was meant.

:func:`edit_embedded` edits a document held in a block scalar (``patches: -
patch: |-``) and writes it back with the block's indentation.
"""
from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

from ..errors import EditError, FinOpsError
from . import yamledit
from .kustomize_layers import OverlayLayers, Site
from .locate import pod_spec_path

PATCH_NAME = "finops-resources-{workload}.yaml"


@dataclass
class OverlayWrite:
    files: dict[str, str] = field(default_factory=dict)
    sites: list[Site] = field(default_factory=list)
    where: str = ""                    # the patch file written or extended

    def location(self, files: dict[str, str], container: str) -> str:
        """``path:line`` of the container in the patch written (line 1 when only extended in place)."""
        text = files.get(self.where, "")
        at = text.find(f"name: {container}")
        return f"{self.where}:{text.count(chr(10), 0, at) + 1 if at >= 0 else 1}"


def _exists(read: Callable[[str], str], path: str) -> str | None:
    try:
        return read(path)
    except (FinOpsError, OSError):
        return None


def _smp_for(layers: OverlayLayers, read, text_of: dict[str, str]) -> tuple[str, int, str] | None:
    """(path, document, text) of a strategic-merge patch of the overlay itself that targets the workload."""
    k = layers.index.kustomizations[layers.overlay]
    for patch in k.patches:
        if patch.inline is not None or patch.key == "patchesJson6902" or not patch.path.endswith((".yaml", ".yml")):
            continue
        text = text_of.get(patch.path) or _exists(read, patch.path)
        if text is None:
            continue
        for i, doc in enumerate(yamledit.load_data(text, patch.path)):
            if isinstance(doc, dict) and layers._targets(patch, doc) and _containers(doc, layers) is not None:
                return patch.path, i, text
    own = f"{layers.overlay}/{PATCH_NAME.format(workload=layers.defn.name)}"
    text = _exists(read, own)
    return (own, 0, text) if text is not None else None


def _containers(doc: Any, layers: OverlayLayers) -> list | None:
    spec = doc
    for key in pod_spec_path(layers.defn.kind):
        spec = spec.get(key) if isinstance(spec, dict) else None
    listed = spec.get("containers") if isinstance(spec, dict) else None
    return listed if isinstance(listed, list) else None


def overlay_patch(layers: OverlayLayers, container: str, fields: dict[str, str], read) -> OverlayWrite:
    """Set ``fields`` (dotted field -> value) of ``container`` through a patch of the overlay."""
    found = _smp_for(layers, read, {})
    if found is None:
        return _new_patch(layers, container, fields, read)
    path, doc_index, text = found
    doc = yamledit.load_data(text, path)[doc_index]
    listed = _containers(doc, layers)
    spec_path = pod_spec_path(layers.defn.kind)
    for n, c in enumerate(listed):
        if isinstance(c, dict) and c.get("name") == container:
            sites = [Site(path, doc_index, spec_path + ["containers", n], f.split("."), f"Kustomize patch {path}",
                          value=None, kdir=layers.overlay) for f in fields]
            return OverlayWrite({}, sites, path)
    names = [c.get("name") if isinstance(c, dict) else None for c in listed]
    order = layers.container_order()
    if names != order[:len(names)] or container not in order:
        raise EditError(f"the patch lists containers {names} in another order than the workload "
                        f"({order}); a strategic-merge patch reorders containers to its own order, so add "
                        f"{container} to it by hand", source=path)
    items = [{"name": n} for n in order[len(names):order.index(container)]] + [{"name": container, **_nested(fields)}]
    new = _append_container(text, path, doc_index, spec_path, items)
    return OverlayWrite({path: new}, [], path)


def _nested(fields: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dotted, value in fields.items():
        node = out
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return out


def _dump(data: Any, indent: int = 2) -> str:
    yaml = YAML()
    yaml.indent(mapping=indent, sequence=indent + 2, offset=indent)
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def _new_patch(layers: OverlayLayers, container: str, fields: dict[str, str], read) -> OverlayWrite:
    base = layers.base_doc()
    # A strategic-merge patch puts the containers it lists first, in its order: name the ones before
    # this container too, so the rendered order (which JSON 6902 ops rely on) stays as it is.
    order = layers.container_order()
    before = order[:order.index(container)] if container in order else []
    inner: dict[str, Any] = {"containers": [{"name": n} for n in before] + [{"name": container, **_nested(fields)}]}
    for key in reversed(pod_spec_path(layers.defn.kind)):
        inner = {key: inner}
    doc = {"apiVersion": base.get("apiVersion", "apps/v1"), "kind": layers.defn.kind,
           "metadata": _metadata(base, layers.defn.name), **inner}
    name = PATCH_NAME.format(workload=layers.defn.name)
    path = f"{layers.overlay}/{name}"
    shared = ", ".join(layers.base_sharers()) or "other overlays"
    header = (f"# Resources of {layers.defn.kind} {layers.defn.name} in this overlay only, written by "
              f"finops-operator\n# ({layers.defn.path} is shared with {shared}).\n")
    text = header + _dump(doc)
    kfile = layers.index.kustomizations[layers.overlay].path
    ktext = read(kfile)
    return OverlayWrite({path: text, kfile: add_patch_entry(ktext, kfile, name)}, [], path)


def _metadata(base: dict, name: str) -> dict[str, str]:
    """name, and the namespace when the base sets one (a patch without it would not match)."""
    meta = base.get("metadata") if isinstance(base.get("metadata"), dict) else {}
    return {"name": name, **({"namespace": meta["namespace"]} if isinstance(meta.get("namespace"), str) else {})}


def add_patch_entry(text: str, path: str, name: str) -> str:
    """The kustomization with ``- path: name`` appended to its ``patches:`` (created when missing)."""
    docs = yamledit.compose(text, path)
    root = docs[0].node if docs else None
    if not isinstance(root, MappingNode):
        raise EditError("not a YAML mapping; cannot add a patch", source=path)
    pair = yamledit.get_pair(root, "patches")
    before = yamledit.load_data(text, path)[0]
    if pair is None:
        at = yamledit._content_line_end(text, yamledit._last_end(root))
        new = text[:at] + f"\npatches:\n  - path: {name}" + text[at:]
    else:
        seq = pair[1]
        if not isinstance(seq, SequenceNode) or seq.flow_style or not seq.value:
            raise EditError("`patches:` is not a block list; add the patch by hand", source=path, field="patches")
        first = seq.value[0]
        line_start = text.rfind("\n", 0, first.start_mark.index) + 1
        dash = text.index("-", line_start)
        pad = " " * (dash - line_start)
        at = yamledit._content_line_end(text, yamledit._last_end(seq))
        new = text[:at] + f"\n{pad}- path: {name}" + text[at:]
    after = yamledit.load_data(new, path)[0]
    expected = dict(before)
    expected["patches"] = list(before.get("patches") or []) + [{"path": name}]
    if yamledit._stringify(after) != yamledit._stringify(expected):
        raise EditError("adding the patch entry changed more than `patches:`", source=path)
    return new


def _append_container(text: str, path: str, doc_index: int, spec_path: list[str], items: list[dict]) -> str:
    """Append ``items`` (``- name: ...`` with resources) to the patch's containers list."""
    doc = next(d for d in yamledit.compose(text, path) if d.index == doc_index)
    seq = yamledit.get_path(doc.node, spec_path + ["containers"])
    if not isinstance(seq, SequenceNode) or seq.flow_style or not seq.value:
        raise EditError("containers is not a block list; add the container by hand", source=path)
    first = seq.value[0]
    line_start = text.rfind("\n", 0, first.start_mark.index) + 1
    dash = text.index("-", line_start) - line_start      # the column of the list's dashes
    step = yamledit.indent_step(doc.node)
    item = _dump(items, step).rstrip("\n").split("\n")
    lead = len(item[0]) - len(item[0].lstrip(" "))          # the dump indents a top-level list: undo it
    lines = [" " * dash + line[lead:] if line else line for line in item]
    at = yamledit._content_line_end(text, yamledit._last_end(seq))
    new = text[:at] + "\n" + "\n".join(lines) + text[at:]
    data = yamledit.load_data(new, path)[doc_index]
    for key in spec_path:
        data = data[key]
    if data["containers"][-len(items):] != items:
        raise EditError(f"could not add container {items[-1]['name']} to the patch", source=path)
    return new


def edit_embedded(text: str, path: str, keypath: list[Any], edit: Callable[[str], str]) -> str:
    """Apply ``edit`` to the document held in the block scalar at ``keypath`` and write it back."""
    docs = yamledit.compose(text, path)
    node = yamledit.get_path(docs[0].node, [str(k) for k in keypath]) if docs else None
    if node is None:   # get_path takes mapping keys; walk sequences by index
        node = docs[0].node
        for key in keypath:
            node = node.value[key] if isinstance(node, SequenceNode) else yamledit.get(node, str(key))
    if not isinstance(node, ScalarNode) or node.style != "|":
        raise EditError(f"{'.'.join(map(str, keypath))} is not a literal block (|); edit it by hand", source=path)
    new_inner = edit(node.value)
    header_end = text.index("\n", node.start_mark.index) + 1
    lines = text[header_end:].split("\n")
    indent = next((len(l) - len(l.lstrip(" ")) for l in lines if l.strip()), 0)
    last = 0
    for n, line in enumerate(lines):
        if line.strip() and len(line) - len(line.lstrip(" ")) < indent:
            break
        if line.strip():
            last = n + 1
    region_end = header_end + len("\n".join(lines[:last]))
    body = "\n".join((" " * indent + l) if l else l for l in new_inner.rstrip("\n").split("\n"))
    new = text[:header_end] + body + text[region_end:]
    check = yamledit.load_data(new, path)[0]
    for key in keypath:
        check = check[key]
    if check.rstrip("\n") != new_inner.rstrip("\n"):
        raise EditError("the inline patch did not round-trip", source=path)
    return new


def describe_overlay(layers: OverlayLayers, where: str) -> str:
    sharers = layers.base_sharers()
    shared = f" ({PurePosixPath(layers.defn.path).parent}/ is shared with {', '.join(sharers)})" if sharers else ""
    return f"added a patch to {layers.overlay}{shared}: {where}"
