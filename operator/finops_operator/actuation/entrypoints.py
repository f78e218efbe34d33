"""Which entry points of a GitOps repository render a set of touched files.

    entry_points(tree, touched)  ->  [EntryPoint]   (sorted by kind, then path)

An entry point is what a GitOps controller renders and applies:

* **kustomize**: a directory with a ``kustomization.yaml`` / ``.yml`` /
  ``Kustomization`` that no other kustomization in the repository includes (a
  base or a component is rendered through the overlays that use it). Its inputs
  are followed through ``resources``, ``bases``, ``components``, ``patches``,
  ``patchesStrategicMerge``, ``patchesJson6902``, generators' files, ``crds``,
  ``helmCharts`` (the chart under ``helmGlobals.chartHome``, ``valuesFile``,
  ``additionalValuesFiles``) and file references of ``replacements``,
  ``transformers``, ``generators`` and ``validators``. A path that leaves the
  repository, or a remote resource or chart, is an error of that entry point:
  the proof renders without network.
* **helm**: a local chart (``Chart.yaml``) not inflated by a kustomization,
  one entry point per release. Releases come from Argo CD ``Application``
  manifests in the repository whose source ``path`` is the chart (release name,
  destination namespace, ``valueFiles``, ``parameters``); without one, one
  release per ``values-*.yaml`` beside the chart's ``values.yaml`` (or the
  chart's defaults alone), named after the chart. A release's inputs are the
  chart's files except the values files of other releases.
* **manifest**: a touched YAML file that no kustomization or chart includes
  (plain manifests applied as a directory); it is its own rendering.
* **terraform**: each touched ``.tf`` / ``.tfvars`` file.

Reads the files of ``tree`` (a copy of the repository); runs nothing.
"""
from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
YAML_SUFFIXES = (".yaml", ".yml", ".json")
TERRAFORM_SUFFIXES = (".tf", ".tfvars")
MAX_FILES = 50_000
MAX_YAML_BYTES = 2_000_000
_SKIP_DIRS = {".git", ".terraform", "node_modules"}


@dataclass(frozen=True)
class HelmRelease:
    """How one release of a local chart is rendered (``helm template NAME CHART -f ... --set ...``)."""

    name: str
    namespace: str | None = None
    values: tuple[str, ...] = ()          # repository-relative values files, in order
    set_values: tuple[str, ...] = ()      # "key=value" parameters


@dataclass
class EntryPoint:
    kind: str                             # kustomize | helm | manifest | terraform
    path: str                             # repository-relative directory or file
    inputs: set[str] = field(default_factory=set)     # repository-relative files it renders from
    release: HelmRelease | None = None
    enable_helm: bool = False             # kustomize: helmCharts present in its build
    namespace: str | None = None          # objects without a namespace land here (Argo CD destination)
    errors: list[str] = field(default_factory=list)   # why it cannot be rendered here

    @property
    def label(self) -> str:
        if self.kind == "helm" and self.release is not None:
            values = ", ".join(posixpath.basename(v) for v in self.release.values) or "chart defaults"
            return f"{self.path} (release {self.release.name}, {values})"
        return self.path

    @property
    def key(self) -> tuple[str, str, str]:
        release = self.release
        return (self.kind, self.path, repr((release.name, release.namespace, release.values)) if release else "")


class _Tree:
    """The files of a repository copy, as repository-relative POSIX paths."""

    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self.files: list[str] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in sorted(filenames):
                self.files.append(name if rel == "." else f"{rel}/{name}")
                if len(self.files) > MAX_FILES:
                    raise ValueError(f"more than {MAX_FILES} files under {root}; too many to prove edits")
        self.file_set = set(self.files)

    def is_dir(self, rel: str) -> bool:
        return (self.root / rel).is_dir()

    def under(self, directory: str) -> set[str]:
        prefix = "" if directory in ("", ".") else directory.rstrip("/") + "/"
        return {f for f in self.files if f.startswith(prefix)}

    def load_all(self, rel: str) -> list[Any]:
        path = self.root / rel
        if not path.is_file() or path.stat().st_size > MAX_YAML_BYTES:
            return []
        try:
            return [d for d in yaml.safe_load_all(path.read_text(errors="replace")) if d is not None]
        except yaml.YAMLError:
            return []


def _is_remote(ref: str) -> bool:
    return "://" in ref or ref.startswith(("git@", "github.com/", "gitlab.com/", "bitbucket.org/")) \
        or "?ref=" in ref or ".git//" in ref


def _join(base: str, ref: str) -> str | None:
    """``ref`` relative to the directory ``base``, normalised; None when it leaves the repository."""
    if posixpath.isabs(ref):
        return None
    joined = posixpath.normpath(posixpath.join(base or ".", ref))
    if joined == ".." or joined.startswith("../"):
        return None
    return "" if joined == "." else joined


def kustomization_file(tree: _Tree, directory: str) -> str | None:
    for name in KUSTOMIZATION_FILES:
        rel = name if directory in ("", ".") else f"{directory}/{name}"
        if rel in tree.file_set:
            return rel
    return None


@dataclass
class _Kustomization:
    directory: str
    file: str
    files: set[str] = field(default_factory=set)       # files it reads directly
    dirs: set[str] = field(default_factory=set)        # kustomization directories it includes
    charts: set[str] = field(default_factory=set)      # local chart directories it inflates
    errors: list[str] = field(default_factory=list)


def _file_refs(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, reference) of every path a kustomization names, except resources/components/bases."""
    refs: list[tuple[str, str]] = []

    def add(name: str, value: Any) -> None:
        if isinstance(value, str) and "\n" not in value and value.strip():
            refs.append((name, value.strip()))

    for key in ("patches", "patchesJson6902"):
        for item in doc.get(key) or []:
            if isinstance(item, dict):
                add(key, item.get("path"))
    for item in doc.get("patchesStrategicMerge") or []:
        add("patchesStrategicMerge", item)
    for key in ("configMapGenerator", "secretGenerator"):
        for gen in doc.get(key) or []:
            if not isinstance(gen, dict):
                continue
            for item in list(gen.get("files") or []) + list(gen.get("envs") or []) + [gen.get("env")]:
                if isinstance(item, str):
                    add(key, item.split("=", 1)[-1])
    for key in ("crds", "transformers", "generators", "validators"):
        for item in doc.get(key) or []:
            add(key, item)
    for item in doc.get("replacements") or []:
        if isinstance(item, dict):
            add("replacements", item.get("path"))
    openapi = doc.get("openapi")
    if isinstance(openapi, dict):
        add("openapi", openapi.get("path"))
    return refs


def _parse_kustomization(tree: _Tree, directory: str, file: str) -> _Kustomization:
    k = _Kustomization(directory, file, files={file})
    docs = tree.load_all(file)
    doc = docs[0] if docs and isinstance(docs[0], dict) else None
    if doc is None:
        k.errors.append(f"{file} is not a YAML mapping")
        return k
    for key in ("resources", "bases", "components"):
        for ref in doc.get(key) or []:
            _add_ref(tree, k, key, ref, directory_ok=True)
    for key, ref in _file_refs(doc):
        _add_ref(tree, k, key, ref, directory_ok=False)
    _add_charts(tree, k, doc)
    return k


def _add_ref(tree: _Tree, k: _Kustomization, key: str, ref: Any, *, directory_ok: bool) -> None:
    if not isinstance(ref, str):
        return
    if _is_remote(ref):
        k.errors.append(f"{k.file}: {key}: {ref} is remote; the proof renders without network "
                        "(vendor it into the repository)")
        return
    target = _join(k.directory, ref)
    if target is None:
        k.errors.append(f"{k.file}: {key}: {ref} leaves the repository; refused")
        return
    if directory_ok and tree.is_dir(target):
        k.dirs.add(target)
    else:
        k.files.add(target)


def _add_charts(tree: _Tree, k: _Kustomization, doc: dict[str, Any]) -> None:
    charts = [c for c in doc.get("helmCharts") or [] if isinstance(c, dict)]
    if not charts:
        return
    globals_ = doc.get("helmGlobals") if isinstance(doc.get("helmGlobals"), dict) else {}
    home = _join(k.directory, str(globals_.get("chartHome") or "charts"))
    for chart in charts:
        name = str(chart.get("name") or "")
        local = _join(home, name) if home is not None and name else None
        if local is None or f"{local}/Chart.yaml" not in tree.file_set:
            k.errors.append(f"{k.file}: helmCharts: chart {name or '?'} is not in the repository "
                            f"(looked in {local or home}); the proof renders local charts only")
            continue
        k.charts.add(local)
        for key in ("valuesFile", "additionalValuesFiles"):
            values = chart.get(key)
            for ref in values if isinstance(values, list) else [values]:
                if ref:
                    _add_ref(tree, k, f"helmCharts.{key}", ref, directory_ok=False)


def _closure(start: str, graph: dict[str, _Kustomization]) -> tuple[set[str], set[str], list[str]]:
    """(files, chart dirs, errors) of a kustomization and everything it includes."""
    files: set[str] = set()
    charts: set[str] = set()
    errors: list[str] = []
    seen: set[str] = set()
    stack = [start]
    while stack:
        directory = stack.pop()
        if directory in seen:
            continue
        seen.add(directory)
        k = graph.get(directory)
        if k is None:
            errors.append(f"{directory or '.'} is included as a kustomization but has no kustomization.yaml")
            continue
        files |= k.files
        charts |= k.charts
        errors.extend(k.errors)
        stack.extend(sorted(k.dirs))
    return files, charts, errors


def _kustomize_entries(tree: _Tree, apps: dict[str, list[HelmRelease]]) -> tuple[list[EntryPoint], set[str], set[str]]:
    """(root entry points, files any kustomization reads, chart dirs inflated by kustomize)."""
    graph: dict[str, _Kustomization] = {}
    for rel in tree.files:
        name = posixpath.basename(rel)
        if name in KUSTOMIZATION_FILES:
            directory = posixpath.dirname(rel)
            if kustomization_file(tree, directory) == rel:
                graph[directory] = _parse_kustomization(tree, directory, rel)
    included = {d for k in graph.values() for d in k.dirs}
    entries, read, inflated = [], set(), set()
    for directory in sorted(graph):
        files, charts, errors = _closure(directory, graph)
        for chart in charts:
            files |= tree.under(chart)
        read |= files
        inflated |= charts
        if directory in included:
            continue
        namespace = next((r.namespace for r in apps.get(directory, []) if r.namespace), None)
        entries.append(EntryPoint("kustomize", directory or ".", files, enable_helm=bool(charts),
                                  namespace=namespace, errors=errors))
    return entries, read, inflated


def argo_sources(tree: _Tree) -> dict[str, list[HelmRelease]]:
    """Argo CD Applications in the repository: source path -> how each renders it."""
    found: dict[str, list[HelmRelease]] = {}
    for rel in tree.files:
        if not rel.endswith((".yaml", ".yml")):
            continue
        for doc in tree.load_all(rel):
            if not (isinstance(doc, dict) and doc.get("kind") == "Application"
                    and str(doc.get("apiVersion", "")).startswith("argoproj.io/")):
                continue
            spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
            sources = spec.get("sources") or [spec.get("source")]
            destination = spec.get("destination") if isinstance(spec.get("destination"), dict) else {}
            name = str((doc.get("metadata") or {}).get("name") or "release")
            for source in sources:
                if isinstance(source, dict) and isinstance(source.get("path"), str):
                    path = _join("", source["path"])
                    if path is not None:
                        found.setdefault(path, []).append(_release(path, source, name, destination))
    return found


def _release(path: str, source: dict[str, Any], app: str, destination: dict[str, Any]) -> HelmRelease:
    helm = source.get("helm") if isinstance(source.get("helm"), dict) else {}
    values = []
    for ref in helm.get("valueFiles") or []:
        target = _join(path, str(ref)) if not str(ref).startswith("$") else None
        if target is not None:
            values.append(target)
    params = tuple(f"{p['name']}={p.get('value', '')}" for p in helm.get("parameters") or []
                   if isinstance(p, dict) and p.get("name"))
    namespace = destination.get("namespace")
    return HelmRelease(str(helm.get("releaseName") or app), str(namespace) if namespace else None,
                       tuple(values), params)


def _chart_name(tree: _Tree, chart: str) -> str:
    docs = tree.load_all(f"{chart}/Chart.yaml")
    name = docs[0].get("name") if docs and isinstance(docs[0], dict) else None
    return str(name or posixpath.basename(chart) or "release")


def _is_values(rel: str, chart: str) -> bool:
    name = posixpath.basename(rel)
    return posixpath.dirname(rel) == chart and name.startswith("values") and name.endswith((".yaml", ".yml"))


def _helm_entries(tree: _Tree, apps: dict[str, list[HelmRelease]], inflated: set[str]) -> list[EntryPoint]:
    entries = []
    charts = sorted(posixpath.dirname(f) for f in tree.files if posixpath.basename(f) == "Chart.yaml")
    for chart in charts:
        if chart in inflated:
            continue
        files = tree.under(chart)
        releases = apps.get(chart) or _default_releases(tree, chart, files)
        defaults = _join(chart, "values.yaml")
        common = {f for f in files if not _is_values(f, chart)} | ({defaults} & files)
        for release in releases:
            entries.append(EntryPoint("helm", chart or ".", common | set(release.values), release=release,
                                      namespace=release.namespace))
    return entries


def _default_releases(tree: _Tree, chart: str, files: set[str]) -> list[HelmRelease]:
    name = _chart_name(tree, chart)
    envs = sorted(f for f in files if _is_values(f, chart) and posixpath.basename(f).startswith("values-"))
    if not envs:
        return [HelmRelease(name)]
    return [HelmRelease(name, None, (f,)) for f in envs]


def entry_points(root: Path, touched: set[str]) -> list[EntryPoint]:
    """The entry points of the repository copy at ``root`` that read any of ``touched``."""
    tree = _Tree(root)
    apps = argo_sources(tree)
    kustomize, read, inflated = _kustomize_entries(tree, apps)
    helm = _helm_entries(tree, apps, inflated)
    chart_files = {f for e in helm for f in tree.under(e.path if e.path != "." else "")}
    result = [e for e in kustomize + helm if e.inputs & touched]
    for rel in sorted(touched):
        if rel.endswith(TERRAFORM_SUFFIXES):
            result.append(EntryPoint("terraform", rel, {rel}))
        elif rel.endswith(YAML_SUFFIXES) and rel not in read and rel not in chart_files \
                and rel in tree.file_set and posixpath.basename(rel) not in KUSTOMIZATION_FILES:
            # (a file absent from this copy is a new patch in the other one, read by a kustomization there)
            result.append(EntryPoint("manifest", rel, {rel}))
    return result
