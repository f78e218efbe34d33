"""Edit a container's resources in the values of a Flux HelmRelease, in the layer of this cluster's overlay.

    files, location, notes = edit_flux_release(index, finding, read, deploy, tools)

``deploy`` is the DeploySource of a Flux HelmRelease (``kind == "helm"``, the chart
in ``entry_point``, ``kustomization`` the path of the Flux Kustomization that
applies it: this cluster's overlay). The overlay is rendered with ``kustomize
build``, its HelmRelease's values merged as Flux merges them
(:mod:`.fluxhelm`), and the values key of the container is found by rendering the
chart with marker values (:func:`.helmkeys.find_key`). Each field is then written
where this cluster's value comes from, last writer first:

1. ``spec.values`` of the HelmRelease: the overlay's patch of it, or the base
   manifest when only this overlay builds it;
2. else the values file a ``configMapGenerator`` (``files: [values.yaml=<file>]``)
   feeds into ``valuesFrom``, when the generator is this overlay's;
3. otherwise (the value comes from a layer other overlays share, or only from the
   chart's defaults) ``spec.values`` of this overlay's patch of the HelmRelease,
   which is added (``finops-values-<name>.yaml``, listed in ``patches:``) when the
   overlay has none. A shared base is edited only with ``allow_shared``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import yaml

from ..errors import EditError, FinOpsError, SourceNotFound
from ..models import DeploySource, Finding
from . import manifests
from .fluxhelm import FluxRelease, effective_values, flux_releases, render_release
from .helmkeys import _get, find_key
from .kustomize_layers import OverlayLayers
from .kustomize_patch import _dump, add_patch_entry
from .locate import Definition, Patch, RepoIndex
from .rendertools import RenderTools

PATCH_NAME = "finops-values-{name}.yaml"
VALUES = ["spec", "values"]


class _Keyed:
    """The release as :func:`.helmkeys.find_key` asks for it."""

    def __init__(self, index: RepoIndex, release: FluxRelease):
        self.index, self.flux = index, release
        self.chart, self.name = release.chart, release.release

    def effective(self) -> dict:
        return effective_values(self.flux, self.index.root)

    def render(self, tools: RenderTools, namespace: str, extra: dict) -> str:
        return render_release(self.flux, self.index.root, tools, extra)


@dataclass
class _Site:
    """Where a value is set: ``prefix + keys`` in document ``doc`` of ``path``."""

    path: str
    doc: int
    prefix: list[str]
    what: str
    owned: bool
    value: Any


def _release(index: RepoIndex, deploy: DeploySource, tools: RenderTools) -> tuple[FluxRelease, list[dict]]:
    overlay = deploy.kustomization
    objs = [d for d in yaml.safe_load_all(tools.kustomize_build(index.root / overlay)) if isinstance(d, dict)]
    chart = deploy.entry_point.strip("/")
    found = [r for r in flux_releases(objs) if r.chart == chart and (deploy.release in (None, r.release))]
    if len(found) != 1:
        raise SourceNotFound(f"kustomize build {overlay} renders {len(found)} HelmReleases of chart {chart} "
                             f"(release {deploy.release}); expected one", source=overlay)
    if found[0].problems:
        raise EditError(f"HelmRelease {found[0].name}: {'; '.join(found[0].problems)}", source=overlay)
    return found[0], objs


def _definition(index: RepoIndex, name: str, overlay: str) -> tuple[Definition, Any]:
    patch_files = {p.path for k in index.kustomizations.values() for p in k.patches}
    for rel in index.yaml_files:
        if rel in patch_files:
            continue
        for i, doc in enumerate(index.load(rel) or []):
            meta = doc.get("metadata") if isinstance(doc, dict) and isinstance(doc.get("metadata"), dict) else {}
            if isinstance(doc, dict) and doc.get("kind") == "HelmRelease" and meta.get("name") == name:
                chain = next((c for c in index.chains(rel) if c.dirs[0] == overlay), None)
                if chain is not None:
                    return Definition(rel, i, [], "HelmRelease", name, meta.get("namespace")), chain
    raise SourceNotFound(f"no manifest of HelmRelease {name} is built by {overlay}", source=overlay)


def _values_site(layers: OverlayLayers, keys: list[str]) -> _Site | None:
    """The last layer that sets ``spec.values.<keys>`` of the HelmRelease (None: none does)."""
    base = layers.base_doc()
    found = None
    of = f"spec.values of HelmRelease {layers.defn.name}"
    if _get(base, VALUES + keys) is not None:
        found = _Site(layers.defn.path, layers.defn.doc, VALUES, f"{layers.defn.path} ({of})",
                      not layers.base_sharers(), _get(base, VALUES + keys))
    for patch, i, doc in layers.layers:
        if not layers._targets(patch, doc):
            continue
        if isinstance(doc, list):
            if any(isinstance(op, dict) and str(op.get("path", "")).startswith("/spec/values") for op in doc):
                raise EditError(f"a JSON 6902 patch sets spec.values of HelmRelease {layers.defn.name}; "
                                "edit its values by hand", source=patch.path)
            continue
        if patch.inline is None and isinstance(doc, dict) and _get(doc, VALUES + keys) is not None:
            found = _Site(patch.path, i, VALUES, f"Kustomize patch {patch.path} ({of})", layers.owns_patch(patch),
                          _get(doc, VALUES + keys))
    return found


def _generated_site(index: RepoIndex, layers: OverlayLayers, hr: dict, keys: list[str]) -> _Site | None:
    """The values file a configMapGenerator feeds into the last valuesFrom that sets ``keys``."""
    refs = [r for r in (hr.get("spec") or {}).get("valuesFrom") or [] if isinstance(r, dict)]
    for ref in reversed(refs):
        value_key = str(ref.get("valuesKey") or "values.yaml")
        for kdir in layers.chain.dirs:
            doc = (index.load(index.kustomizations[kdir].path) or [{}])[0]
            gens = doc.get("configMapGenerator" if ref.get("kind") == "ConfigMap" else "secretGenerator") or []
            for gen in gens:
                if not isinstance(gen, dict) or gen.get("name") != ref.get("name"):
                    continue
                for item in gen.get("files") or []:
                    key, _, file = str(item).rpartition("=")
                    if (key or PurePosixPath(file).name) != value_key:
                        continue
                    rel = str(PurePosixPath(kdir) / file)
                    data = (index.load(rel) or [None])[0]
                    if _get(data, keys) is not None:
                        return _Site(rel, 0, [], f"values file {rel} ({ref['kind']} {ref['name']} in valuesFrom)",
                                     layers.owns_dir(kdir), _get(data, keys))
    return None


def _overlay_patch(index: RepoIndex, layers: OverlayLayers, read) -> tuple[str, int] | None:
    """(path, document) of a strategic-merge patch of the overlay itself that targets the HelmRelease."""
    own = f"{layers.overlay}/{PATCH_NAME.format(name=layers.defn.name)}"
    for patch in index.kustomizations[layers.overlay].patches + [Patch(own, layers.overlay)]:
        if patch.inline is not None or patch.key == "patchesJson6902":
            continue
        try:
            docs = list(yaml.safe_load_all(read(patch.path)))
        except (FinOpsError, OSError, yaml.YAMLError):
            continue
        for i, doc in enumerate(docs):
            if isinstance(doc, dict) and layers._targets(patch, doc):
                return patch.path, i
    return None


def _new_patch(layers: OverlayLayers, read, keys: list[str], value: str) -> dict[str, str]:
    base = layers.base_doc()
    meta = base.get("metadata") or {}
    namespace = {"namespace": meta["namespace"]} if meta.get("namespace") else {}
    nested: Any = value
    for key in reversed(keys):
        nested = {key: nested}
    doc = {"apiVersion": base.get("apiVersion"), "kind": "HelmRelease",
           "metadata": {"name": layers.defn.name, **namespace},
           "spec": {"values": nested}}
    name = PATCH_NAME.format(name=layers.defn.name)
    shared = ", ".join(layers.base_sharers()) or "other overlays"
    text = (f"# Helm values of HelmRelease {layers.defn.name} in this overlay only, written by finops-operator\n"
            f"# ({layers.defn.path} is shared with {shared}).\n") + _dump(doc)
    kfile = layers.index.kustomizations[layers.overlay].path
    return {f"{layers.overlay}/{name}": text, kfile: add_patch_entry(read(kfile), kfile, name)}


def _site_of(layers: OverlayLayers, hr: dict, keys: list[str], allow_shared: bool, change) -> _Site | None:
    """Where this cluster's value of ``keys`` is set (checked against the cluster); None: set it in a patch."""
    site = _values_site(layers, keys) or _generated_site(layers.index, layers, hr, keys)
    if site is not None and not manifests.same_value(change, site.value):
        raise manifests.disagree(site.path, change, str(site.value), ".".join(keys))
    if site is not None and not (site.owned or allow_shared) and change.after is None:
        raise EditError(f"{'.'.join(keys)} of HelmRelease {layers.defn.name} is set in {site.what}, which other "
                        "overlays share; remove it there by hand", source=site.path)
    return site if site is not None and (site.owned or allow_shared) else None


def edit_flux_release(index: RepoIndex, finding: Finding, read, deploy: DeploySource,
                      tools: RenderTools | None = None, *,
                      allow_shared: bool = False) -> tuple[dict[str, str], str | None, list[str]]:
    if not deploy.kustomization:
        raise EditError(f"the DeploySource of {finding.target.workload} names no Flux Kustomization that applies "
                        f"HelmRelease {deploy.release}; map the workload by its Flux labels")
    tools = tools or RenderTools.from_environment()
    release, objs = _release(index, deploy, tools)
    ref, container = finding.target.workload, finding.target.name
    keypath = find_key(_Keyed(index, release), tools, ref, container)
    key = ".".join(keypath + ("resources",))
    defn, chain = _definition(index, release.name, deploy.kustomization)
    layers = OverlayLayers.of(index, defn, chain)
    hr = next(o for o in objs if o.get("kind") == "HelmRelease" and o["metadata"].get("name") == release.name)
    effective = effective_values(release, index.root)
    files: dict[str, str] = {}
    current = lambda path: files[path] if path in files else read(path)
    location, notes = None, []
    for change in finding.changes:
        keys = list(keypath) + change.field.split(".")
        site = _site_of(layers, hr, keys, allow_shared, change)
        if site is None and not manifests.same_value(change, _get(effective, keys)):
            raise manifests.disagree(deploy.kustomization, change, str(_get(effective, keys)), ".".join(keys))
        if site is not None:
            path, doc, prefix = site.path, site.doc, site.prefix
            note = f"edited {site.what}; key {key}"
            if not site.owned:
                note += f", which {', '.join(layers.base_sharers())} also build: the change applies there too"
        else:
            patch = _overlay_patch(index, layers, current)
            if patch is None:
                added = _new_patch(layers, current, keys, change.after)
                files.update(added)
                location = location or f"{next(iter(added))}:1"
                notes.append(f"added a patch to {layers.overlay} ({layers.defn.path} is shared with "
                             f"{', '.join(layers.base_sharers()) or 'other overlays'}; key {key})")
                continue
            path, doc, prefix = patch[0], patch[1], VALUES
            note = f"edited Kustomize patch {path} (spec.values of HelmRelease {release.name}); key {key}"
        try:
            new, line = manifests.apply_keys(current(path), path, doc, [], prefix + keys, change)
        except FinOpsError as exc:
            raise exc.located(source=path) from None
        files[path] = new
        location = location or f"{path}:{line}"
        if note not in notes:
            notes.append(note)
    return files, location, notes
