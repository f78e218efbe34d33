"""Edit one container finding in the layer that belongs to this cluster.

    out = edit_container(index, finding, read, allow_shared=False)
    out.files      # path -> new text
    out.location   # "path:line" of the first value written
    out.notes      # what a reviewer should know ("added a patch to overlays/prod (base/ is shared with ...)")

Kustomize (a definition built by an overlay): each changed field is written where
the overlay gets it from (:mod:`.kustomize_layers`): a strategic-merge patch, a
JSON 6902 op (file or inline), the base when only this overlay builds it. A value
that comes from a base or component other overlays share goes into a patch of this
overlay (:mod:`.kustomize_patch`), unless the policy allows shared-base edits
(``spec.gitops.sharedBaseEdits: Allow``); then the shared file is edited and the
note names the other overlays that change.

Helm releases (``DeploySource.kind == "helm"``) go to :mod:`.helmkeys`. Plain
manifests and source hints keep the one-target path of :mod:`.manifests`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from ..errors import EditError, FinOpsError
from ..models import Finding
from . import fluxedit, helmkeys, manifests
from .kustomize_layers import OverlayLayers, Site
from .kustomize_patch import edit_embedded, overlay_patch
from .locate import Ambiguous, Chain, Definition, RepoIndex


@dataclass
class ContainerEdit:
    files: dict[str, str] = field(default_factory=dict)
    location: str | None = None
    notes: list[str] = field(default_factory=list)

    def read_through(self, read: Callable[[str], str]) -> Callable[[str], str]:
        return lambda path: self.files[path] if path in self.files else read(path)


def edit_container(index: RepoIndex, finding: Finding, read: Callable[[str], str], *,
                   allow_shared: bool = False) -> ContainerEdit:
    for change in finding.changes:
        if change.field not in manifests.RESOURCE_FIELDS:
            raise EditError(f"unsupported field {change.field!r} (expected one of "
                            f"{sorted(manifests.RESOURCE_FIELDS)})")
    deploy = finding.edit.deploy
    ref = finding.target.workload
    hinted = bool((finding.edit.source_hint or "").strip())
    if deploy is not None and deploy.kind == "helm" and deploy.kustomization and not hinted:    # a Flux HelmRelease
        return _as_edit(fluxedit.edit_flux_release(index, finding, read, deploy, allow_shared=allow_shared))
    if deploy is not None and deploy.kind == "helm" and not (finding.edit.source_hint or "").strip():
        return _as_edit(helmkeys.edit_release(index, finding, read, deploy))
    layered = None if (finding.edit.source_hint or "").strip() or ref is None else _overlay_of(index, finding)
    if layered is not None:
        return _edit_layers(OverlayLayers.of(index, *layered), finding, read, allow_shared)
    inflated = None if (finding.edit.source_hint or "").strip() or ref is None or index.definitions.get(
        (ref.kind, ref.name)) else helmkeys.inflated_release(index, ref, deploy.entry_point if deploy else None)
    if inflated is not None:      # a chart a kustomization inflates (helmCharts): its values file and inline values
        return _as_edit(helmkeys.edit_release(index, finding, read, inflated))
    target = manifests.resolve_container(index, finding)
    return _edit_target(target, finding, read)


def _as_edit(out: tuple[dict[str, str], str | None, list[str]]) -> ContainerEdit:
    return ContainerEdit(*out)


def _edit_target(target: manifests.YamlTarget, finding: Finding, read) -> ContainerEdit:
    text = read(target.path)
    first = None
    for change in finding.changes:
        try:
            text, line = manifests.apply_change(text, target, change)
        except FinOpsError as exc:
            raise exc.located(source=target.path) from None
        first = first or line
    return ContainerEdit({target.path: text}, f"{target.path}:{first}", [f"edited {target.what}"] + target.notes)


def _overlay_of(index: RepoIndex, finding: Finding) -> tuple[Definition, Chain] | None:
    """The definition and the overlay chain that deploy the finding's workload here; None: not Kustomize."""
    ref = finding.target.workload
    deploy = finding.edit.deploy
    entry = _norm(deploy.entry_point) if deploy is not None and deploy.kind == "kustomize" else None
    if deploy is None:      # the only candidate entry point, or a refusal naming them (gitops.deploymap)
        chosen = manifests.deploying_entry(index, ref, None)
        entry = chosen.path if chosen is not None and chosen.kind == "kustomize" else None
    found: list[tuple[Definition, Chain]] = []
    for defn in index.definitions.get((ref.kind, ref.name), []):
        namespaces, _ = index.namespaces_of(defn)
        included = {r for k in index.kustomizations.values() for r in k.resources + k.components}
        for chain in index.chains(defn.path):
            if chain.dirs[0] in included:
                continue
            if entry is not None and chain.dirs[0] == entry:
                found.append((defn, chain))
            elif entry is None and (chain.namespace or defn.namespace) == ref.namespace:
                found.append((defn, chain))
    overlays = sorted({c.dirs[0] for _, c in found})
    if len(overlays) > 1:
        raise Ambiguous(f"{ref.kind} {ref.namespace}/{ref.name} is deployed by several overlays: "
                        f"{', '.join(overlays)}; name this cluster's overlay in the policy's spec.git.paths "
                        "or annotate the workload with finops.dev/source: <overlay directory>")
    return found[0] if found else None


def _norm(path: str) -> str:
    return str(PurePosixPath(path.strip("/"))) if path.strip("/") else "."


def _edit_layers(layers: OverlayLayers, finding: Finding, read, allow_shared: bool) -> ContainerEdit:
    out = ContainerEdit()
    current = out.read_through(read)
    container = finding.target.name
    pending: dict[str, str] = {}
    shared_notes: set[str] = set()
    for change in finding.changes:
        site = layers.setter(container, change.field)
        if site is not None and not manifests.same_value(change, site.value):
            raise manifests.disagree(site.path, change, str(site.value), change.field)
        if site is not None and (site.owned or allow_shared):
            _write(out, current, site, change)
            if not site.owned:
                shared_notes.add(f"edited {site.what}, which {', '.join(layers.sharers(site))} also build: "
                                 "the change applies there too (spec.gitops.sharedBaseEdits: Allow)")
            else:
                shared_notes.add(f"edited {site.what}")
        elif change.after is None:
            if site is not None:
                raise EditError(f"{change.field} of container {container} is set in {site.what}, which other "
                                f"overlays share; remove it there by hand or allow shared-base edits",
                                source=site.path)
        else:
            pending[change.field] = change.after
            if site is not None:
                shared_notes.add(_shared_note(layers, site))
            elif layers.base_sharers():
                shared_notes.add(f"added a patch to {layers.overlay} ({_dir(layers.defn.path)} is shared with "
                                 f"{', '.join(layers.base_sharers())})")
    if pending:
        write = overlay_patch(layers, container, pending, current)
        out.files.update(write.files)
        for site in write.sites:
            change = next(c for c in finding.changes if c.field == ".".join(site.keys))
            _write(out, current, site, change)
        out.location = out.location or write.location(out.files, container)
    out.notes = sorted(shared_notes)
    return out


def _dir(path: str) -> str:
    return str(PurePosixPath(path).parent) + "/"


def _shared_note(layers: OverlayLayers, site: Site) -> str:
    where = _dir(site.path) if site.kdir == "" else site.kdir + "/"
    return f"added a patch to {layers.overlay} ({where} is shared with {', '.join(layers.sharers(site))})"


def _write(out: ContainerEdit, read, site: Site, change) -> None:
    text = read(site.path)
    lines: list[int] = []

    def edit(inner: str) -> str:
        new, line = manifests.apply_keys(inner, site.path, site.doc, site.owner, site.keys, change)
        lines.append(line)
        return new

    try:
        if site.embedded is not None:
            new = edit_embedded(text, site.path, site.embedded, edit)
            line = _embedded_line(text, site) + lines[0]
        else:
            new = edit(text)
            line = lines[0]
    except FinOpsError as exc:
        raise exc.located(source=site.path) from None
    out.files[site.path] = new
    out.location = out.location or f"{site.path}:{line}"


def _embedded_line(text: str, site: Site) -> int:
    """Line of the block scalar's header (inner line numbers count from the line after it)."""
    from . import yamledit
    node = yamledit.compose(text, site.path)[0].node
    for key in site.embedded:
        node = node.value[key] if isinstance(key, int) else yamledit.get(node, key)
    return yamledit.line_of(text, node.start_mark.index)
