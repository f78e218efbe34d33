"""RepoIndex: one walk over a GitOps repository, remembering where things are defined.

It records workloads in plain YAML (multi-document files and ``kind: List``),
Kustomize kustomizations (namespace, resources, patches), Helm values (files next to
a Chart.yaml, files and ``valuesObject`` of Argo CD Applications, ``spec.values`` of
Flux HelmReleases), PersistentVolumes and Terraform files. Helm templates are never
parsed: they are not YAML. Files that fail to parse are kept in ``errors`` so that a
finding which needs one can name it; nobody else is bothered (the error is logged).

Every read goes through :mod:`..safeio`: nothing outside the repository is read (a
symlink that leaves it is refused), only regular files of at most
``safeio.MAX_MANIFEST_BYTES``, UTF-8 only, YAML within the alias and depth budget.
Files refused that way are listed in :attr:`RepoIndex.rejected`.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .. import safeio
from ..errors import EditError, SourceNotFound, UnreadableFile
from ..gitops.deploymap import Catalogue, Placement, RepoEntry
from . import yamledit

log = logging.getLogger(__name__)

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet"}
SKIP_DIRS = {".git", ".terraform", "node_modules", "__pycache__"}
KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


class Ambiguous(SourceNotFound):
    """Defined in several places and nothing says which one to edit."""


def pod_spec_path(kind: str) -> list[str]:
    """Key path from a workload document to its pod spec."""
    if kind == "CronJob":
        return ["spec", "jobTemplate", "spec", "template", "spec"]
    return ["spec", "template", "spec"]


@dataclass(slots=True)
class Definition:
    """A workload document: ``prefix`` leads from the document root to it (``items.N`` in a List)."""

    path: str
    doc: int
    prefix: list[Any]
    kind: str
    name: str
    namespace: str | None


@dataclass(slots=True)
class Patch:
    path: str                      # the patch file (repo-relative); inline: the kustomization file
    kustomization: str             # directory of the kustomization that applies it
    target: dict[str, str] = field(default_factory=dict)   # kustomize `target:` selector
    key: str = "patches"           # patches | patchesStrategicMerge | patchesJson6902
    inline: int | None = None      # index of an inline `patch: |` entry in the kustomization's list


@dataclass(slots=True)
class Kustomization:
    dir: str
    path: str
    namespace: str | None
    resources: list[str]           # repo-relative files or directories
    patches: list[Patch]           # in the order kustomize applies them
    inline_patches: int = 0
    components: list[str] = field(default_factory=list)   # repo-relative component directories


@dataclass(slots=True)
class ValuesSource:
    """A place Helm values live: a file, or a mapping inside an Application/HelmRelease."""

    path: str
    doc: int
    prefix: list[Any]              # key path to the values mapping inside the document
    namespace: str | None          # None: not known (values file without an Application)
    release: str | None
    chart: str | None
    chart_dir: str | None = None   # the chart's directory, when known (kustomize helmCharts)


@dataclass(slots=True)
class Chain:
    """A kustomization path that includes a resource: outermost first, with the namespace it sets."""

    dirs: list[str]
    namespace: str | None


class RepoIndex:
    """Built once per scan by walking ``root`` (skips .git); read-only afterwards."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.texts: dict[str, str] = {}
        self.data: dict[str, list[Any]] = {}
        self.errors: dict[str, EditError | UnreadableFile] = {}
        self.yaml_files: list[str] = []
        self.tf_files: list[str] = []
        self.definitions: dict[tuple[str, str], list[Definition]] = {}
        self.kustomizations: dict[str, Kustomization] = {}
        self.values: list[ValuesSource] = []
        self.pvs: dict[str, list[Definition]] = {}
        self.chart_dirs: set[str] = set()
        self.app_namespaces: dict[str, str] = {}   # directory -> Argo CD destination namespace
        self._chains: dict[str, list[Chain]] = {}
        self._catalogue: Catalogue | None = None
        self._walk()
        self._index()

    # ------------------------------------------------------------------ walking

    def _walk(self) -> None:
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            rel_dir = PurePosixPath(Path(dirpath).relative_to(self.root).as_posix())
            if "Chart.yaml" in filenames:
                self.chart_dirs.add(str(rel_dir))
            for name in sorted(filenames):
                rel = str(rel_dir / name) if str(rel_dir) != "." else name
                if name.endswith((".yaml", ".yml")) or name == "Kustomization":
                    self.yaml_files.append(rel)
                elif name.endswith((".tf", ".tfvars")):
                    self.tf_files.append(rel)
                else:
                    continue
                problem = safeio.file_problem(self.root, rel)
                if problem is not None:
                    log.warning("refusing to read %s", problem)
                    self.errors[rel] = problem

    def is_helm_template(self, rel: str) -> bool:
        parts = PurePosixPath(rel).parts
        return any(str(PurePosixPath(*parts[:i])) in self.chart_dirs and parts[i] == "templates"
                   for i in range(1, len(parts)))

    def text(self, rel: str) -> str:
        """Text of repository file ``rel`` (UnreadableFile when :mod:`..safeio` refuses it)."""
        if rel not in self.texts:
            if isinstance(self.errors.get(rel), UnreadableFile):
                raise self.errors[rel]
            self.texts[rel] = safeio.read_text_bounded(self.root, rel)
        return self.texts[rel]

    def is_file(self, rel: str) -> bool:
        """Whether ``rel`` names a file inside the repository (False for paths that leave it)."""
        try:
            return safeio.inside(self.root, rel).is_file()
        except UnreadableFile:
            return False

    @property
    def rejected(self) -> list[UnreadableFile]:
        """Files refused before parsing (outside the repository, too big, not text, YAML bombs)."""
        return [e for e in self.errors.values() if isinstance(e, UnreadableFile)]

    def check_all(self) -> list[UnreadableFile]:
        """Read every YAML and Terraform file once; return the ones refused (for a strict CLI)."""
        for rel in self.tf_files:
            if rel not in self.errors:
                try:
                    self.text(rel)
                except UnreadableFile as exc:
                    self.errors[rel] = exc
        for rel in self.yaml_files:
            if not self.is_helm_template(rel):
                self.load(rel)
            elif rel not in self.errors:
                try:   # never parsed (not YAML), but `helm template` reads it: same bounds
                    self.text(rel)
                except UnreadableFile as exc:
                    self.errors[rel] = exc
        return self.rejected

    def load(self, rel: str) -> list[Any] | None:
        """Parsed documents of a YAML file, or None (error recorded) when it is malformed."""
        if rel in self.data:
            return self.data[rel]
        if rel in self.errors:
            return None
        try:
            docs = yamledit.load_data(self.text(rel), rel)
        except (EditError, UnreadableFile) as exc:
            log.warning("ignoring unreadable YAML %s", exc)
            self.errors[rel] = exc
            return None
        self.data[rel] = docs
        return docs

    # ------------------------------------------------------------------ indexing

    def _index(self) -> None:
        for rel in self.yaml_files:
            if self.is_helm_template(rel):
                continue
            docs = self.load(rel)
            for i, doc in enumerate(docs or []):
                if isinstance(doc, dict):
                    self._index_doc(rel, i, [], doc)
        for rel in self.yaml_files:
            if PurePosixPath(rel).name.startswith("values") and str(PurePosixPath(rel).parent) in self.chart_dirs:
                if not any(v.path == rel for v in self.values):
                    chart = str(PurePosixPath(rel).parent)
                    self.values.append(ValuesSource(rel, 0, [], None, None, PurePosixPath(chart).name))
        patch_files = {p.path for k in self.kustomizations.values() for p in k.patches if p.inline is None}
        for key, defs in list(self.definitions.items()):   # a patch is not a definition
            kept = [d for d in defs if d.path not in patch_files]
            if kept:
                self.definitions[key] = kept
            else:
                del self.definitions[key]

    def _index_doc(self, rel: str, i: int, prefix: list[Any], doc: dict) -> None:
        kind = doc.get("kind")
        meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        name = meta.get("name")
        name_ok = isinstance(name, str)
        if kind == "List" and isinstance(doc.get("items"), list):
            for j, item in enumerate(doc["items"]):
                if isinstance(item, dict):
                    self._index_doc(rel, i, prefix + ["items", j], item)
        elif PurePosixPath(rel).name in KUSTOMIZATION_NAMES or kind in ("Kustomization",) and "resources" in doc:
            self._index_kustomization(rel, doc)
        elif kind in WORKLOAD_KINDS and name_ok:
            ns = meta.get("namespace")
            self.definitions.setdefault((kind, name), []).append(
                Definition(rel, i, prefix, kind, name, ns if isinstance(ns, str) else None))
        elif kind == "PersistentVolume" and name_ok:
            self.pvs.setdefault(name, []).append(Definition(rel, i, prefix, kind, name, None))
        elif kind == "Application" and isinstance(doc.get("spec"), dict):
            self._index_argo(rel, i, doc)
        elif kind == "HelmRelease" and isinstance(doc.get("spec"), dict):
            spec = doc["spec"]
            ns = spec.get("targetNamespace") or meta.get("namespace")
            chart = ((spec.get("chart") or {}).get("spec") or {}).get("chart") if isinstance(spec.get("chart"), dict) else None
            if isinstance(spec.get("values"), dict):
                self.values.append(ValuesSource(rel, i, ["spec", "values"], ns, spec.get("releaseName") or name,
                                                chart))

    def _index_kustomization(self, rel: str, doc: dict) -> None:
        base = PurePosixPath(rel).parent
        refs = lambda key: [self._join(base, r) for r in (doc.get(key) or []) if isinstance(r, str) and "://" not in r]
        patches: list[Patch] = []
        inline = 0
        for key in ("patchesStrategicMerge", "patches", "patchesJson6902"):   # kustomize's order
            for i, entry in enumerate(doc.get(key) or []):
                target = entry.get("target") if isinstance(entry, dict) and isinstance(entry.get("target"), dict) else {}
                if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                    patches.append(Patch(self._join(base, entry["path"]), str(base), target, key))
                elif isinstance(entry, str) and "\n" not in entry:
                    patches.append(Patch(self._join(base, entry), str(base), {}, key))
                else:
                    inline += 1
                    if isinstance(entry, dict) and isinstance(entry.get("patch"), str):
                        patches.append(Patch(rel, str(base), target, key, i))
        ns = doc.get("namespace")
        ns = ns if isinstance(ns, str) else None
        self.kustomizations[str(base)] = Kustomization(str(base), rel, ns, refs("resources") + refs("bases"),
                                                       patches, inline, refs("components"))
        self._index_helm_charts(rel, base, doc, ns)

    def _index_helm_charts(self, rel: str, base: PurePosixPath, doc: dict, ns: str | None) -> None:
        """``helmCharts`` entries: the values file, then the inline values (later wins)."""
        home = (doc.get("helmGlobals") or {}).get("chartHome") if isinstance(doc.get("helmGlobals"), dict) else None
        for i, chart in enumerate(doc.get("helmCharts") or []):
            if not isinstance(chart, dict) or not isinstance(chart.get("name"), str):
                continue
            release = chart.get("releaseName") or chart["name"]
            where = chart.get("namespace") or ns
            files = [chart.get("valuesFile")] + list(chart.get("additionalValuesFiles") or [])
            for vf in files:
                if isinstance(vf, str) and "://" not in vf:
                    self.values.append(ValuesSource(self._join(base, vf), 0, [], where, release, chart["name"],
                                                    self._join(base, f"{home or 'charts'}/{chart['name']}")))
            if isinstance(chart.get("valuesInline"), dict):
                self.values.append(ValuesSource(rel, 0, ["helmCharts", i, "valuesInline"], where, release,
                                                chart["name"], self._join(base, f"{home or 'charts'}/{chart['name']}")))

    def _index_argo(self, rel: str, i: int, doc: dict) -> None:
        spec = doc["spec"]
        ns = (spec.get("destination") or {}).get("namespace") if isinstance(spec.get("destination"), dict) else None
        sources = [("source", spec["source"])] if isinstance(spec.get("source"), dict) else []
        sources += [(j, s) for j, s in enumerate(spec.get("sources") or []) if isinstance(s, dict)]
        for key, src in sources:
            path = src.get("path")
            helm = src.get("helm") if isinstance(src.get("helm"), dict) else {}
            release = helm.get("releaseName") or (doc.get("metadata") or {}).get("name")
            chart = PurePosixPath(path).name if isinstance(path, str) else src.get("chart")
            if isinstance(path, str) and ns:
                self.app_namespaces[str(PurePosixPath(path))] = ns
            prefix = ["spec", "source"] if key == "source" else ["spec", "sources", key]
            for vf in helm.get("valueFiles") or []:
                if not isinstance(vf, str):
                    continue
                target = vf.split("/", 1)[1] if vf.startswith("$") and "/" in vf else \
                    str(self._join(PurePosixPath(path or "."), vf))
                self.values.append(ValuesSource(target, 0, [], ns, release, chart))
            if isinstance(helm.get("valuesObject"), dict):
                self.values.append(ValuesSource(rel, i, prefix + ["helm", "valuesObject"], ns, release, chart))

    @staticmethod
    def _join(base: PurePosixPath, ref: str) -> str:
        parts: list[str] = []
        for part in (base / ref).parts:
            if part == "..":
                if parts:
                    parts.pop()
            elif part != ".":
                parts.append(part)
        return "/".join(parts) or "."

    # ------------------------------------------------------------------ kustomize chains

    def chains(self, rel: str) -> list[Chain]:
        """Every kustomization path that includes file ``rel``, with the namespace it ends up in."""
        if not self._chains and self.kustomizations:
            for kdir in self.kustomizations:
                self._expand(kdir, [], None, set())
        return self._chains.get(rel, [])

    def _expand(self, kdir: str, outer: list[str], outer_ns: str | None, seen: set[str]) -> None:
        if kdir in seen:
            return
        k = self.kustomizations[kdir]
        dirs = outer + [kdir]
        ns = outer_ns or k.namespace
        for res in k.resources + k.components:
            if res in self.kustomizations:
                self._expand(res, dirs, ns, seen | {kdir})
            else:
                self._chains.setdefault(res, []).append(Chain(dirs, ns))

    def namespaces_of(self, defn: Definition) -> tuple[set[str], list[Chain]]:
        """Namespaces a definition is deployed to (empty set: unknown, matches any)."""
        if defn.namespace:
            return {defn.namespace}, self.chains(defn.path)
        chains = self.chains(defn.path)
        found = {c.namespace for c in chains if c.namespace}
        for directory, ns in self.app_namespaces.items():
            if defn.path.startswith(directory.rstrip("/") + "/"):
                found.add(ns)
        return found, chains

    def roots(self, kdir: str) -> set[str]:
        """Top-level kustomizations (overlays) whose build includes kustomization ``kdir``."""
        self.chains("")
        included = {r for k in self.kustomizations.values() for r in k.resources + k.components}
        found = {c.dirs[0] for chains in self._chains.values() for c in chains
                 if kdir in c.dirs and c.dirs[0] not in included}
        return found or {kdir}

    def patches_for(self, chain: Chain) -> list[Patch]:
        """Patches of every kustomization along a chain, outermost first."""
        return [p for d in chain.dirs for p in self.kustomizations[d].patches]

    # ------------------------------------------------------------------ entry points

    def catalogue(self) -> Catalogue:
        """The repository's entry points (:mod:`.entrypoints`) and which of them render each workload."""
        if self._catalogue is None:
            self._catalogue = self._build_catalogue()
        return self._catalogue

    def _build_catalogue(self) -> Catalogue:
        from .entrypoints import entry_points
        plain: dict[str, set[str]] = {}
        entries: list[RepoEntry] = []
        for e in entry_points(self.root, set(self.yaml_files)):
            if e.kind == "manifest":
                plain.setdefault(str(PurePosixPath(e.path).parent), set()).update(e.inputs)
            elif e.kind in ("kustomize", "helm"):
                release = e.release
                entries.append(RepoEntry(e.path, e.kind, frozenset(e.inputs), release.name if release else None,
                                         release.values if release else (), e.namespace))
        entries += [RepoEntry(d, "plain", frozenset(files)) for d, files in sorted(plain.items())]
        placements: dict[tuple[str, str], list[Placement]] = {}
        for key, defs in self.definitions.items():
            for defn in defs:
                chains = self.chains(defn.path)
                for entry in entries:
                    if defn.path not in entry.inputs or entry.kind == "helm":
                        continue
                    ns = defn.namespace or next((c.namespace for c in chains
                                                 if c.dirs[0] == entry.path and c.namespace), None)
                    placements.setdefault(key, []).append(Placement(entry.path, defn.path, ns))
        releases: dict[str, set[str]] = {}
        for v in self.values:
            if v.prefix == ["spec", "values"] and v.release:
                releases.setdefault(v.release, set()).add(v.path)
        return Catalogue(entries, placements, releases)

    def entry(self, path: str) -> RepoEntry | None:
        """The (first) entry point at ``path``."""
        return next(iter(self.catalogue().at(path)), None)

    def malformed_mentioning(self, needle: str) -> list[EditError]:
        """Unparsable files whose text mentions ``needle`` (probably where the workload is)."""
        found = []
        for rel, err in self.errors.items():
            try:
                if needle in self.text(rel):
                    found.append(err)
            except UnreadableFile:
                continue
        return found
