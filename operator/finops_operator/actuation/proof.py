"""Prove a change set's edits by rendering, before they are committed.

    proof = Prover().prove(repo_root, edits, findings, locations=...)
    proof.ok              # nothing failed
    proof.failures        # finding id -> why its edit is not proven (re-plan without it)
    proof.lines           # one line per entry point, for the PR body and the JSON

The repository is copied twice into a scratch directory (never the checkout):
one copy gets the edits' ``before`` texts, the other their ``after`` texts.
Every entry point that reads a touched file (:mod:`.entrypoints`) is rendered in
both with the real tools (:mod:`.rendertools`) and the objects compared
(:mod:`.proofdiff`):

* In the entry point that deploys a finding's workload, exactly the intended
  fields of the intended container change, to the intended values; nothing
  else in that object or any other object changes.
* Every other entry point renders the same objects, or the proof says
  "also changes <entry point>" - a failure unless shared edits are allowed
  (``Prover(allow_shared=True)``, the policy's say-so), in which case the line
  goes into the PR body.
* Terraform: each edited file adds nothing ``tofu fmt`` would change (lines it
  would already change before the edit are tolerated) and parses with
  python-hcl2.

A renderer that is missing or fails refuses the change with its message.
"""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FinOpsError, ProofError
from ..models import FileEdit, Finding
from .fluxhelm import expand
from .entrypoints import EntryPoint, HelmRelease, entry_points
from .proofdiff import Intent, ObjectChange, ObjectKey, diff, objects
from .proofjudge import Judgement, judge
from .proofterraform import check_terraform
from .rendertools import RenderTools


@dataclass
class EntryResult:
    """The verdict on one entry point."""

    entry: EntryPoint
    line: str                                  # "rendered overlays/prod: 2 fields changed, as intended"
    failed: bool = False
    findings: set[str] = field(default_factory=set)   # finding ids this entry point fails


@dataclass
class Proof:
    entries: list[EntryResult] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)      # finding id -> reason

    @property
    def ok(self) -> bool:
        return not self.failures and not any(e.failed for e in self.entries)

    @property
    def lines(self) -> list[str]:
        return [e.line for e in self.entries]


@dataclass
class Rendered:
    """Both renderings of one entry point and what changed between them."""

    entry: EntryPoint
    before: str
    after: str
    changes: list[ObjectChange]
    before_objects: dict[ObjectKey, dict] = field(default_factory=dict)
    after_objects: dict[ObjectKey, dict] = field(default_factory=dict)


@dataclass
class Prover:
    """Renders and compares; ``allow_shared`` lets an edit change other entry points (listed, not refused)."""

    tools: RenderTools = field(default_factory=RenderTools.from_environment)
    allow_shared: bool = False

    def prove(self, repo_root: Path, edits: list[FileEdit], findings: list[Finding], *,
              locations: dict[str, str] | None = None) -> Proof:
        if not edits:
            return Proof()
        with tempfile.TemporaryDirectory(prefix="finops-proof-") as scratch:
            before, after = Path(scratch) / "before", Path(scratch) / "after"
            _copy(Path(repo_root), before, edits, "before")
            _copy(Path(repo_root), after, edits, "after")
            touched = {e.path for e in edits}
            entries = _deployed_releases(_merge(entry_points(before, touched), entry_points(after, touched)),
                                         findings)
            return self._prove_entries(entries, before, after, edits, findings, locations or {})

    def _prove_entries(self, entries: list[EntryPoint], before: Path, after: Path, edits: list[FileEdit],
                       findings: list[Finding], locations: dict[str, str]) -> Proof:
        proof = Proof()
        intents = [i for i in (Intent.of(f) for f in findings) if i is not None]
        renders: list[Rendered] = []
        for entry in entries:
            if entry.kind == "terraform":
                self._terraform(proof, entry, before, after, findings, locations)
                continue
            try:
                renders.append(self._render(entry, before, after))
            except FinOpsError as exc:
                _fail(proof, entry, f"rendered {entry.label}: refused: {exc}",
                      _owners(entry, findings, locations, intents))
        verdict = judge(renders, intents, allow_shared=self.allow_shared)
        self._record(proof, verdict, renders, findings, locations, intents)
        order = {entry.key: index for index, entry in enumerate(entries)}
        proof.entries.sort(key=lambda result: order[result.entry.key])
        return proof

    def _render(self, entry: EntryPoint, before: Path, after: Path) -> Rendered:
        if entry.errors:
            raise ProofError("; ".join(entry.errors))
        texts = []
        for side, root in (("before", before), ("after", after)):
            try:
                texts.append(self._render_one(entry, root))
            except ProofError as exc:
                raise ProofError(f"{exc} (the {side} rendering)") from None
        old = objects(texts[0], namespace=entry.namespace, source=f"{entry.label} before")
        new = objects(texts[1], namespace=entry.namespace, source=f"{entry.label} after")
        return Rendered(entry, texts[0], texts[1], diff(old, new), old, new)

    def _render_one(self, entry: EntryPoint, root: Path) -> str:
        if entry.kind == "manifest":
            path = root / entry.path
            return path.read_text() if path.is_file() else ""
        if entry.kind == "kustomize":
            return expand(self.tools.kustomize_build(root / entry.path, enable_helm=entry.enable_helm), root,
                          self.tools)
        release = entry.release
        assert release is not None
        values = [root / v for v in release.values if (root / v).is_file()]
        return self.tools.helm_template(root / entry.path, release=release.name, namespace=release.namespace,
                                        values=values, set_values=release.set_values)

    def _terraform(self, proof: Proof, entry: EntryPoint, before: Path, after: Path, findings: list[Finding],
                   locations: dict[str, str]) -> None:
        old, new = before / entry.path, after / entry.path
        try:
            line = check_terraform(self.tools, entry.path, old.read_text() if old.is_file() else None,
                                   new.read_text() if new.is_file() else None, cwd=after)
        except FinOpsError as exc:
            _fail(proof, entry, f"checked {entry.path}: refused: {exc}", _owners(entry, findings, locations, []))
            return
        proof.entries.append(EntryResult(entry, line))

    def _record(self, proof: Proof, verdict: Judgement, renders: list[Rendered], findings: list[Finding],
                locations: dict[str, str], intents: list[Intent]) -> None:
        for rendered in renders:
            outcome = verdict.entries[rendered.entry.key]
            if not outcome.problems:
                proof.entries.append(EntryResult(rendered.entry, outcome.line))
                continue
            owners = outcome.owners or _owners(rendered.entry, findings, locations, intents)
            _fail(proof, rendered.entry, outcome.line, owners)
        for finding_id, reason in verdict.unproven.items():
            proof.failures.setdefault(finding_id, reason)


def _fail(proof: Proof, entry: EntryPoint, line: str, owners: set[str]) -> None:
    proof.entries.append(EntryResult(entry, line, failed=True, findings=set(owners)))
    for finding_id in sorted(owners):
        proof.failures.setdefault(finding_id, f"proof failed: {line}")


def _owners(entry: EntryPoint, findings: list[Finding], locations: dict[str, str],
            intents: list[Intent]) -> set[str]:
    """Findings to blame for a failure no object names: those edited in the entry point's files, else all."""
    located = {f.id for f in findings if locations.get(f.id, "").rsplit(":", 1)[0] in entry.inputs}
    if located:
        return located
    if entry.kind == "terraform":
        infra = {f.id for f in findings if Intent.of(f) is None}
        if infra:
            return infra
    return {f.id for f in findings}


def _merge(*lists: Iterable[EntryPoint]) -> list[EntryPoint]:
    """Entry points of both copies (an edit may add a patch to a kustomization), inputs united."""
    merged: dict[tuple[str, str, str], EntryPoint] = {}
    for entries in lists:
        for entry in entries:
            if entry.key in merged:
                merged[entry.key].inputs |= entry.inputs
                merged[entry.key].errors = merged[entry.key].errors or entry.errors
            else:
                merged[entry.key] = entry
    return sorted(merged.values(), key=lambda e: (e.kind != "kustomize", e.kind, e.label))


def _deployed_releases(entries: list[EntryPoint], findings: list[Finding]) -> list[EntryPoint]:
    """Helm releases as the findings' DeploySource says this cluster renders them (values, namespace).

    Without one, a chart's releases are guessed from its ``values-*.yaml`` files with no namespace;
    with one, the guesses for that chart give way to the release that is deployed here.
    """
    wanted: dict[tuple, HelmRelease] = {}
    for finding in findings:
        deploy, ref = finding.edit.deploy, finding.target.workload
        if deploy is not None and deploy.kind == "helm" and ref is not None and deploy.release \
                and not deploy.kustomization:      # a Flux HelmRelease is rendered through its Kustomization
            release = HelmRelease(deploy.release, ref.namespace, deploy.values_files)
            wanted[(deploy.entry_point, release)] = release
    if not wanted:
        return entries
    charts = {path for path, _ in wanted}
    out = [e for e in entries if not (e.kind == "helm" and e.path in charts and e.release is not None
                                      and e.release.namespace is None)]
    for (path, _), release in wanted.items():
        template = next((e for e in entries if e.kind == "helm" and e.path == path), None)
        entry = EntryPoint("helm", path, set(template.inputs) | set(release.values) if template else set(release.values),
                           release=release, namespace=release.namespace)
        if template is not None and all(e.key != entry.key for e in out):
            out.append(entry)
    return sorted(out, key=lambda e: (e.kind != "kustomize", e.kind, e.label))


def _copy(root: Path, dest: Path, edits: list[FileEdit], side: str) -> None:
    """The repository at ``root`` (without .git) with each edit's ``side`` text written in."""
    shutil.copytree(root, dest, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    base = dest.resolve()
    for edit in edits:
        target = (dest / edit.path).resolve()
        if base not in target.parents:
            raise ProofError(f"edit path {edit.path} leaves the repository; refused", source=edit.path)
        text = edit.before if side == "before" else edit.after
        if text is None:
            target.unlink(missing_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
