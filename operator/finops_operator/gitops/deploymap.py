"""Decide which entry point of the repository deploys each live workload in this cluster.

    assign_sources(state.workloads, catalogue, policy, records)   # sets Workload.source

The rules, in order; the first that decides wins and is recorded as ``DeploySource.rule``:

1. ``argocd`` / ``flux``: the controller's own record in the cluster
   (:mod:`.records`), when it renders from a path of the policy's repository.
   Argo CD Applications of another ``repoURL`` do not count.
2. ``policy-paths``: the policy's ``spec.git.paths`` (or the CLI's ``--entry-point``)
   leave exactly one of the workload's candidate entry points.
3. ``annotation``: the ``finops.dev/source`` annotation names a file or directory of
   exactly one candidate.

A *candidate* is an entry point (a root kustomization, a Helm release of a local
chart, a directory of plain manifests) that renders the workload's kind and name in
its namespace: entry points, not files. With no rule and several candidates,
nothing is chosen and the editor refuses with :func:`ambiguity` (candidates + fix).
"""
from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass, field

from .. import safeio
from ..models import DeploySource, Workload, WorkloadRef
from .records import ControllerRecord, applied_by, owner_of, same_repository

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RepoEntry:
    """An entry point of the repository, as :mod:`finops_operator.actuation.entrypoints` finds them."""

    path: str                              # repository-relative directory
    kind: str                              # kustomize | helm | plain
    inputs: frozenset[str] = frozenset()   # files it renders from
    release: str | None = None             # helm
    values: tuple[str, ...] = ()           # helm: values files, in order
    namespace: str | None = None           # where it deploys, when the repository says

    @property
    def label(self) -> str:
        if self.kind == "helm":
            values = ", ".join(self.values) or "chart defaults"
            return f"{self.path} (release {self.release}, values {values})"
        return self.path


@dataclass(frozen=True)
class Placement:
    """Entry point ``entry`` renders the workload defined in ``file`` into ``namespace`` (None: not said)."""

    entry: str
    file: str
    namespace: str | None


@dataclass
class Catalogue:
    entries: list[RepoEntry] = field(default_factory=list)
    placements: dict[tuple[str, str], list[Placement]] = field(default_factory=dict)   # (kind, name) ->
    release_files: dict[str, set[str]] = field(default_factory=dict)   # HelmRelease release -> files with its values

    def at(self, path: str) -> list[RepoEntry]:
        return [e for e in self.entries if e.path == path]


@dataclass(frozen=True)
class DeployPolicy:
    """What the policy (or the CLI) says about this cluster's files."""

    repository: str | None = None          # spec.git.repository (owner/name or clone URL); None: any
    paths: tuple[str, ...] = ()            # spec.git.paths
    entry_point: str | None = None         # --entry-point (a directory, or a Helm values file)


# --------------------------------------------------------------------------- candidates


def _helm_matches(entry: RepoEntry, name: str) -> bool:
    names = {n for n in (entry.release, posixpath.basename(entry.path)) if n}
    return any(name == n or name.startswith(n + "-") for n in names)


def candidates(catalogue: Catalogue, ref: WorkloadRef) -> list[RepoEntry]:
    """Entry points that render ``ref`` in its namespace (else those that leave the namespace open)."""
    strong: dict[tuple, RepoEntry] = {}
    weak: dict[tuple, RepoEntry] = {}
    places = catalogue.placements.get((ref.kind, ref.name), [])
    for place in places:
        for entry in catalogue.at(place.entry):
            if entry.kind == "helm":
                continue
            ns = place.namespace or entry.namespace
            bucket = strong if ns == ref.namespace else weak if ns is None else None
            if bucket is not None:
                bucket[(entry.path, entry.release)] = entry
    if not places:       # Helm templates are not parsed: releases whose name fits the workload's
        for entry in catalogue.entries:
            if entry.kind == "helm" and _helm_matches(entry, ref.name):
                bucket = strong if entry.namespace == ref.namespace else weak if entry.namespace is None else None
                if bucket is not None:
                    bucket[(entry.path, entry.release, entry.values)] = entry
    found = strong or weak
    return [found[k] for k in sorted(found, key=repr)]


def _within(entry: RepoEntry, path: str) -> bool:
    path = path.strip("/") or "."
    return path == "." or entry.path == path or entry.path.startswith(path + "/") or path in entry.values


def ambiguity(ref: WorkloadRef, found: list[RepoEntry]) -> str:
    """The refusal when nothing says which candidate is this cluster's: the candidates and the fix."""
    return (f"{ref.kind} {ref.namespace}/{ref.name} is deployed by {len(found)} entry points of the repository: "
            f"{'; '.join(e.label for e in found)}; nothing says which one is this cluster's. Fix: name it in the "
            "FinOpsPolicy, `spec.git.paths: [<one of them>]` (finops scan: `--entry-point <one of them>`), or "
            f"annotate the workload `{safeio.SOURCE_HINT_KEY}: <one of them>`")


# --------------------------------------------------------------------------- rules


def _from_record(record: ControllerRecord, records: list[ControllerRecord], catalogue: Catalogue,
                 policy: DeployPolicy) -> DeploySource | None:
    if record.problem or record.path is None:
        log.info("%s does not name files of the repository (%s)", record.label, record.problem or "no path")
        return None
    if record.controller == "argocd" and policy.repository and not same_repository(record.repo_url, policy.repository):
        return None
    entries = catalogue.at(record.path)
    kind = record.source_kind or (entries[0].kind if entries else "plain")
    inline: tuple[str, ...] = ()
    parent = None
    if record.kind == "HelmRelease":        # values also live in the HelmRelease manifests its Kustomization applies
        parent = applied_by(record, records)
        inline = tuple(f for e in (catalogue.at(parent.path) if parent and parent.path else []) for f in sorted(e.inputs)
                       if _holds_release(catalogue, f, record))
    return DeploySource(record.path, record.controller, kind if kind in ("kustomize", "helm", "plain") else "plain",
                        values_files=record.values_files, release=record.release, revision=record.revision,
                        inline_values=inline, kustomization=parent.path if parent else None)


def _holds_release(catalogue: Catalogue, rel: str, record: ControllerRecord) -> bool:
    return any(rel in catalogue.release_files.get(name, ()) for name in {record.release, record.name} if name)


def _source(entry: RepoEntry, rule: str) -> DeploySource:
    return DeploySource(entry.path, rule, entry.kind, values_files=entry.values, release=entry.release)


def decide(workload: Workload, catalogue: Catalogue, policy: DeployPolicy,
           records: list[ControllerRecord] = ()) -> DeploySource | None:
    """The DeploySource of one workload by the rules above, or None (no rule decides)."""
    record = owner_of(workload, list(records))
    if record is not None:
        found = _from_record(record, list(records), catalogue, policy)
        if found is not None:
            return found
    found = candidates(catalogue, workload.ref)
    chosen = [p for p in ((policy.entry_point,) if policy.entry_point else policy.paths) if p]
    if chosen and found:
        inside = [e for e in found if any(_within(e, p) for p in chosen)]
        if len(inside) == 1:
            return _source(inside[0], "policy-paths")
    hint = workload.annotations.get(safeio.SOURCE_HINT_KEY, "").strip()
    if hint and found:
        path, _, problem = safeio.split_source_hint(hint)
        if problem is None:
            named = [e for e in found if _within(e, path) or path in e.inputs]
            if len(named) == 1:
                return _source(named[0], "annotation")
    return None


def assign_sources(workloads: list[Workload], catalogue: Catalogue, policy: DeployPolicy,
                   records: list[ControllerRecord] = ()) -> dict[str, int]:
    """Set ``Workload.source`` of every workload a rule decides; returns how many each rule decided.

    A source already set (by a snapshot or a caller that knows) stands.
    """
    counts: dict[str, int] = {}
    for workload in workloads:
        workload.source = workload.source or decide(workload, catalogue, policy, records)
        if workload.source is not None:
            counts[workload.source.rule] = counts.get(workload.source.rule, 0) + 1
    return counts


__all__ = ["Catalogue", "DeployPolicy", "Placement", "RepoEntry", "ambiguity", "assign_sources", "candidates",
           "decide"]
