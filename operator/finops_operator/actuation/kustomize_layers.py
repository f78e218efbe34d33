"""Which Kustomize layer sets a container's resource field in one overlay, and whether that overlay owns it.

    layers = OverlayLayers.of(index, defn, overlay)
    site = layers.setter(container, "resources.requests.cpu")   # the last layer that sets it, or None

Kustomize builds an overlay as: the resources (bases, recursively built the same
way), then each component's patches, then the kustomization's own patches
(``patchesStrategicMerge``, ``patches``, ``patchesJson6902``, in that order).
The last layer that sets a field decides its rendered value; an edit belongs in
that layer when the overlay owns it (no other overlay builds it), else in a patch
of the overlay itself (:mod:`.kustomize_patch`).

JSON 6902 ops address containers by index: the index is taken from the base's
container list, with ``add .../containers/-`` appending. An op on one container
never hides the others.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import EditError
from .locate import Chain, Definition, Patch, RepoIndex, pod_spec_path
from . import yamledit


@dataclass(slots=True)
class Site:
    """One place a field is (or would be) written: ``keys`` below the mapping at ``owner``."""

    path: str                          # file to edit
    doc: int
    owner: list[Any]                   # key path to the mapping that holds keys[0]
    keys: list[str]
    what: str                          # "Kustomize patch overlays/prod/api-resources.yaml"
    owned: bool = True                 # only this overlay builds it
    embedded: list[Any] | None = None  # key path of a block scalar (inline patch) holding the document
    value: Any = None                  # the value the layer sets now (None: not set)
    kdir: str = ""                     # kustomization directory of the layer (the definition's for a base)


@dataclass
class OverlayLayers:
    index: RepoIndex
    defn: Definition
    overlay: str
    chain: Chain
    layers: list[tuple[Patch, int, Any]] = field(default_factory=list)   # patch, doc number, parsed doc

    @classmethod
    def of(cls, index: RepoIndex, defn: Definition, chain: Chain) -> "OverlayLayers":
        found = cls(index, defn, chain.dirs[0], chain)
        for kdir in reversed(chain.dirs):
            k = index.kustomizations[kdir]
            patches = [p for comp in k.components if comp in index.kustomizations
                       for p in index.kustomizations[comp].patches] + list(k.patches)
            for patch in patches:
                for i, doc in enumerate(_patch_docs(index, patch)):
                    found.layers.append((patch, i, doc))
        return found

    # ------------------------------------------------------------------ ownership

    def owns_dir(self, kdir: str) -> bool:
        return self.index.roots(kdir) == {self.overlay}

    def owns_patch(self, patch: Patch) -> bool:
        dirs = {k.dir for k in self.index.kustomizations.values()
                for p in k.patches if p.path == patch.path and p.inline == patch.inline}
        return all(self.owns_dir(d) for d in dirs | {patch.kustomization})

    def base_sharers(self) -> list[str]:
        """Other overlays that build the definition's file."""
        roots = {c.dirs[0] for c in self.index.chains(self.defn.path)}
        included = {r for k in self.index.kustomizations.values() for r in k.resources + k.components}
        return sorted(r for r in roots if r not in included and r != self.overlay)

    def sharers(self, site: Site) -> list[str]:
        if site.kdir == "":
            return self.base_sharers()
        return sorted(self.index.roots(site.kdir) - {self.overlay})

    # ------------------------------------------------------------------ containers

    def base_doc(self) -> dict:
        doc = self.index.load(self.defn.path)[self.defn.doc]
        for key in self.defn.prefix:
            doc = doc[key]
        return doc

    def container_names(self) -> list[str]:
        spec: Any = self.base_doc()
        for key in pod_spec_path(self.defn.kind):
            spec = spec.get(key) if isinstance(spec, dict) else None
        listed = spec.get("containers") if isinstance(spec, dict) else None
        return [c.get("name") for c in listed or [] if isinstance(c, dict)]

    def container_order(self) -> list[str]:
        """Container names as the overlay renders them: the base's, then those its 6902 ops append."""
        names = self.container_names()
        suffix = "/" + "/".join(pod_spec_path(self.defn.kind)) + "/containers/-"
        for patch, _, doc in self.layers:
            if isinstance(doc, list) and self._targets(patch, doc):
                names += [op["value"].get("name") for op in doc if isinstance(op, dict) and op.get("op") == "add"
                          and op.get("path") == suffix and isinstance(op.get("value"), dict)]
        return names

    def _targets(self, patch: Patch, doc: Any) -> bool:
        ref_kind, ref_name = self.defn.kind, self.defn.name
        if patch.target:
            return patch.target.get("name") in (None, ref_name) and patch.target.get("kind") in (None, ref_kind)
        if not isinstance(doc, dict):
            return False
        meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        return doc.get("kind", ref_kind) == ref_kind and meta.get("name", ref_name) == ref_name

    # ------------------------------------------------------------------ the field's setter

    def setter(self, container: str, field_name: str) -> Site | None:
        """The last layer that sets ``field_name`` of ``container`` (None: no layer sets it)."""
        keys = field_name.split(".")
        names = self.container_names()
        found = self._base_site(container, keys)
        base_prefix = pod_spec_path(self.defn.kind)
        for patch, i, doc in self.layers:
            if not self._targets(patch, doc):
                continue
            if isinstance(doc, list):
                hit = _json6902_site(doc, base_prefix, names, container, keys)
                if hit is not None:
                    (owner, site_keys), value = hit
                    found = self._patch_site(patch, i, owner, site_keys, value)
            elif isinstance(doc, dict):
                smp = _smp_site(doc, base_prefix, container, keys)
                if smp is not None:
                    found = self._patch_site(patch, i, smp[0], keys, smp[1])
        return found

    def _base_site(self, container: str, keys: list[str]) -> Site | None:
        doc = self.base_doc()
        spec_path = pod_spec_path(self.defn.kind)
        spec: Any = doc
        for key in spec_path:
            spec = spec.get(key) if isinstance(spec, dict) else None
        for list_key in ("containers", "initContainers"):
            for n, c in enumerate((spec or {}).get(list_key) or []):
                if isinstance(c, dict) and c.get("name") == container:
                    value = _get(c, keys)
                    owner = list(self.defn.prefix) + spec_path + [list_key, n]
                    site = Site(self.defn.path, self.defn.doc, owner, keys, self.defn.path,
                                owned=not self.base_sharers(), value=value, kdir="")
                    return site if value is not None else None
        return None

    def _patch_site(self, patch: Patch, i: int, owner: list[Any], keys: list[str], value: Any) -> Site:
        owned = self.owns_patch(patch)
        if patch.inline is not None:
            return Site(patch.path, 0, owner, keys, f"inline patch {patch.inline + 1} of {patch.path}", owned,
                        [patch.key, patch.inline, "patch"], value, patch.kustomization)
        return Site(patch.path, i, owner, keys, f"Kustomize patch {patch.path}", owned, None, value,
                    patch.kustomization)


def _get(data: Any, keys: list[str]) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _patch_docs(index: RepoIndex, patch: Patch) -> list[Any]:
    if patch.inline is None:
        docs = index.load(patch.path)
        if docs is None:
            raise index.errors.get(patch.path) or EditError("cannot read patch", source=patch.path)
        return docs
    entry = index.load(patch.path)[0][patch.key][patch.inline]
    return yamledit.load_data(entry["patch"], f"{patch.path} ({patch.key}[{patch.inline}].patch)")


def _smp_site(doc: dict, spec_path: list[str], container: str, keys: list[str]) -> tuple[list[Any], Any] | None:
    spec: Any = doc
    for key in spec_path:
        spec = spec.get(key) if isinstance(spec, dict) else None
    for list_key in ("containers", "initContainers"):
        listed = spec.get(list_key) if isinstance(spec, dict) else None
        for n, c in enumerate(listed if isinstance(listed, list) else []):
            if isinstance(c, dict) and c.get("name") == container:
                value = _get(c, keys[:-1])
                if isinstance(value, dict) and keys[-1] in value:
                    return spec_path + [list_key, n], value[keys[-1]]
    return None


def _json6902_site(ops: list, spec_path: list[str], names: list[str], container: str,
                   keys: list[str]) -> tuple[tuple[list[Any], list[str]], Any] | None:
    """The op that sets the field last: ``((owner, keys), value)`` with owner = [op number, ...]."""
    names = list(names)
    prefix = "/" + "/".join(spec_path) + "/containers/"
    found = None
    for n, op in enumerate(ops):
        if not isinstance(op, dict) or not isinstance(op.get("path"), str):
            continue
        path, kind = op["path"], op.get("op")
        if path == prefix + "-" and kind == "add" and isinstance(op.get("value"), dict):
            names.append(op["value"].get("name"))
            if op["value"].get("name") == container and _get(op["value"], keys) is not None:
                found = (([n, "value"] + keys[:-1], keys[-1:]), _get(op["value"], keys))
            continue
        if container not in names or not path.startswith(prefix + str(names.index(container)) + "/"):
            continue
        rest = path[len(prefix + str(names.index(container)) + "/"):].split("/")
        if kind in ("add", "replace") and rest == keys:
            found = (([n], ["value"]), op.get("value"))
        elif kind in ("add", "replace") and keys[:len(rest)] == rest and isinstance(op.get("value"), dict):
            inner = _get(op["value"], keys[len(rest):])
            found = (([n, "value"] + keys[len(rest):-1], keys[-1:]), inner) if inner is not None else found
        elif kind == "remove" and keys[:len(rest)] == rest:
            found = None
    return found
