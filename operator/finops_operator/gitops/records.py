"""GitOps controller records (Argo CD, Flux) as typed data, and the join to live workloads.

    records = parse_records({"Application": [...], "Kustomization": [...], "HelmRelease": [...]})
    record = owner_of(workload, records)      # the record that deploys it, or None

Joins, as the controllers label what they apply:

* Argo CD: annotation ``argocd.argoproj.io/tracking-id``
  (``<app>:<group>/<kind>:<namespace>/<name>``, ``<app>`` may be ``<app-ns>_<app>``),
  else the ``app.kubernetes.io/instance`` label naming an Application.
  ApplicationSet-generated Applications are Applications (owned by the set).
* Flux: labels ``helm.toolkit.fluxcd.io/name`` + ``/namespace`` (a HelmRelease),
  else ``kustomize.toolkit.fluxcd.io/name`` + ``/namespace`` (a Kustomization).

A malformed record is skipped with a warning naming it; it never stops the others.
"""
from __future__ import annotations

import logging
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from .. import safeio
from ..models import Workload

log = logging.getLogger(__name__)

ARGO_TRACKING = "argocd.argoproj.io/tracking-id"
INSTANCE_LABEL = "app.kubernetes.io/instance"
FLUX_HELM_NAME, FLUX_HELM_NS = "helm.toolkit.fluxcd.io/name", "helm.toolkit.fluxcd.io/namespace"
FLUX_KS_NAME, FLUX_KS_NS = "kustomize.toolkit.fluxcd.io/name", "kustomize.toolkit.fluxcd.io/namespace"

Obj = dict[str, Any]


@dataclass(frozen=True)
class ControllerRecord:
    """One Application / Kustomization / HelmRelease: where it renders from, in repository terms."""

    controller: str                        # argocd | flux
    kind: str                              # Application | Kustomization | HelmRelease
    namespace: str
    name: str
    path: str | None                       # repository-relative directory (None: not a path in a git source)
    source_kind: str = ""                  # helm | kustomize | plain | "" (the repository decides)
    repo_url: str | None = None            # Argo CD: spec.source.repoURL (Flux: via sourceRef, not read)
    revision: str | None = None
    values_files: tuple[str, ...] = ()     # repository-relative, in order
    parameters: tuple[str, ...] = ()       # helm "key=value"
    release: str | None = None
    destination_namespace: str | None = None
    labels: dict[str, str] = field(default_factory=dict, compare=False)
    problem: str | None = None             # why it cannot be used (remote chart, path leaving the repo, ...)

    @property
    def label(self) -> str:
        return f"{self.controller} {self.kind} {self.namespace}/{self.name}"


def normalise_path(raw: Any) -> tuple[str | None, str | None]:
    """(repository-relative directory, problem) of a controller's ``path``; ``.`` for the root."""
    if not isinstance(raw, str) or not raw.strip():
        return None, "has no path"
    path = posixpath.normpath(raw.strip().removeprefix("./")) if raw.strip() not in (".", "./") else "."
    problem = safeio.relpath_problem(path)
    return (None, f"path {raw!r} {problem}") if problem else (path, None)


def _join(base: str, ref: str) -> tuple[str | None, str | None]:
    return normalise_path(posixpath.join(base, ref) if base != "." else ref)


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _argo(obj: Obj) -> list[ControllerRecord]:
    meta, spec = _meta(obj), _dict(obj.get("spec"))
    dest = _dict(spec.get("destination")).get("namespace")
    sources = [spec["source"]] if isinstance(spec.get("source"), dict) else \
        [s for s in spec.get("sources") or [] if isinstance(s, dict)]
    refs = {s.get("ref"): s.get("repoURL") for s in sources if isinstance(s.get("ref"), str)}
    out = []
    for src in sources:
        if "path" not in src:
            continue          # a chart from a Helm repository, or a `ref:` values-only source
        path, problem = normalise_path(src.get("path"))
        helm, kustomize = _dict(src.get("helm")), _dict(src.get("kustomize"))
        kind = "helm" if helm or "chart" in src else "kustomize" if kustomize else \
            "plain" if "directory" in src else ""
        values: list[str] = []
        for ref in helm.get("valueFiles") or []:
            if not isinstance(ref, str):
                continue
            if ref.startswith("$"):      # $values/path: a file of the `ref: values` source
                name, _, rest = ref[1:].partition("/")
                target, bad = normalise_path(rest) if refs.get(name) == src.get("repoURL") else (None, None)
            else:
                target, bad = _join(path or ".", ref)
            if target:
                values.append(target)
            problem = problem or (f"helm.valueFiles {ref!r}: {bad}" if bad else None)
        params = tuple(f"{p['name']}={p.get('value', '')}" for p in helm.get("parameters") or []
                       if isinstance(p, dict) and isinstance(p.get("name"), str))
        out.append(ControllerRecord(
            "argocd", "Application", str(meta.get("namespace") or ""), str(meta.get("name")), path, kind,
            repo_url=src.get("repoURL") if isinstance(src.get("repoURL"), str) else None,
            revision=str(src["targetRevision"]) if src.get("targetRevision") else None,
            values_files=tuple(values), parameters=params,
            release=str(helm.get("releaseName") or meta.get("name")) if kind == "helm" else None,
            destination_namespace=dest if isinstance(dest, str) else None,
            labels=dict(meta.get("labels") or {}), problem=problem))
    return out


def _flux_kustomization(obj: Obj) -> list[ControllerRecord]:
    meta, spec = _meta(obj), _dict(obj.get("spec"))
    source = _dict(spec.get("sourceRef"))
    path, problem = normalise_path(spec.get("path") or "./")
    if source.get("kind") != "GitRepository":
        problem = f"sourceRef is a {source.get('kind') or 'missing kind'}, not a GitRepository"
    target = spec.get("targetNamespace")
    return [ControllerRecord("flux", "Kustomization", str(meta.get("namespace") or ""), str(meta.get("name")),
                             path, "kustomize", destination_namespace=target if isinstance(target, str) else None,
                             labels=dict(meta.get("labels") or {}), problem=problem)]


def _flux_helmrelease(obj: Obj) -> list[ControllerRecord]:
    meta, spec = _meta(obj), _dict(obj.get("spec"))
    chart = _dict(_dict(spec.get("chart")).get("spec"))
    source = _dict(chart.get("sourceRef"))
    problem = None
    if source.get("kind") != "GitRepository":
        origin = source.get("kind") or ("chartRef" if spec.get("chartRef") else "source it does not name")
        problem = f"its chart comes from a {origin}, not from a GitRepository path"
    path, bad = normalise_path(chart.get("chart"))
    values = []
    for ref in chart.get("valuesFiles") or []:
        target, _ = normalise_path(ref) if isinstance(ref, str) else (None, None)
        if target:
            values.append(target)
    name = str(meta.get("name"))
    target_ns = spec.get("targetNamespace") if isinstance(spec.get("targetNamespace"), str) else None
    release = spec.get("releaseName") or (f"{target_ns}-{name}" if target_ns else name)
    return [ControllerRecord("flux", "HelmRelease", str(meta.get("namespace") or ""), name, path, "helm",
                             values_files=tuple(values), release=str(release),
                             destination_namespace=target_ns or str(meta.get("namespace") or "") or None,
                             labels=dict(meta.get("labels") or {}), problem=problem or bad)]


_PARSERS = {"Application": _argo, "Kustomization": _flux_kustomization, "HelmRelease": _flux_helmrelease}


def parse_records(objects: dict[str, list[Obj]]) -> list[ControllerRecord]:
    """Controller objects by kind (Application, Kustomization, HelmRelease) -> records."""
    out: list[ControllerRecord] = []
    for kind, parse in _PARSERS.items():
        for obj in objects.get(kind) or []:
            try:
                out.extend(parse(obj))
            except (AttributeError, KeyError, TypeError, ValueError) as exc:
                log.warning("%s %s skipped: %s", kind, _meta(obj).get("name"), exc)
    return out


_TRACKING = re.compile(r"^(?P<app>[^:]+):(?P<group>[^/]*)/(?P<kind>[^:]+):(?P<ns>[^/]*)/(?P<name>.+)$")


def owner_of(workload: Workload, records: list[ControllerRecord]) -> ControllerRecord | None:
    """The record whose controller applied ``workload`` (the join described in the module docstring)."""
    by_key = {(r.kind, r.namespace, r.name): r for r in records}
    apps = {}
    for r in records:
        if r.kind == "Application":
            apps.setdefault(r.name, r)
            apps.setdefault(f"{r.namespace}_{r.name}", r)
    tracking = _TRACKING.match(workload.annotations.get(ARGO_TRACKING, ""))
    if tracking and tracking["kind"] == workload.ref.kind and tracking["name"] == workload.ref.name \
            and tracking["app"] in apps:
        return apps[tracking["app"]]
    labels = workload.labels
    for name_key, ns_key, kind in ((FLUX_HELM_NAME, FLUX_HELM_NS, "HelmRelease"),
                                   (FLUX_KS_NAME, FLUX_KS_NS, "Kustomization")):
        if labels.get(name_key):
            found = by_key.get((kind, labels.get(ns_key, ""), labels[name_key]))
            if found is not None:
                return found
    instance = labels.get(INSTANCE_LABEL)
    return apps.get(instance) if instance else None


def applied_by(record: ControllerRecord, records: list[ControllerRecord]) -> ControllerRecord | None:
    """The Flux Kustomization that applied a HelmRelease (its kustomize.toolkit.fluxcd.io labels)."""
    name = record.labels.get(FLUX_KS_NAME)
    return next((r for r in records if r.kind == "Kustomization" and r.name == name
                 and r.namespace == record.labels.get(FLUX_KS_NS, "")), None) if name else None


def same_repository(url: str | None, repository: str | None) -> bool:
    """Whether a controller's ``repoURL`` is the policy's repository (``owner/name`` or a clone URL)."""
    if not url or not repository:
        return False
    a, b = _canonical(url), _canonical(repository)
    if b.count("/") == 1 and "." not in b.split("/")[0]:      # owner/name (GitHub)
        return a == b or a.endswith("/" + b)
    return a == b


def _canonical(url: str) -> str:
    text = url.strip().lower().rstrip("/").removesuffix(".git")
    text = re.sub(r"^[a-z0-9+.-]+://", "", text)
    text = re.sub(r"^[^@/]+@", "", text)
    scp = re.match(r"^([^/:]+):(?!\d+/)(.+)$", text)      # git@host:org/repo (not host:port/...)
    if scp:
        text = f"{scp[1]}/{scp[2]}"
    return re.sub(r"^([^/:]+):\d+/", r"\1/", text)
