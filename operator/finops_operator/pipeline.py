"""The money loop, end to end on plain data.

    ClusterState -> detectors -> guardrails -> plan -> edits -> rendered change sets

One function, :func:`scan`, shared by the CLI (snapshot files, local repos)
and the operator (live cluster, Prometheus, GitHub). It does no network I/O:
the caller brings the state (from a snapshot or the sources) and writes the
result (branches, PRs, SavingsOpportunity objects).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from .actuation.edits import plan_edits
from .actuation.locate import RepoIndex
from .actuation.plan import Plan, plan_change_sets
from .actuation.proof import Prover
from .actuation.render import render_body
from .detectors import run_all
from .detectors.base import DetectorResult, Skip
from .errors import EditError, FinOpsError
from .gitops.deploymap import DeployPolicy, assign_sources
from .guardrails import GuardrailContext, evaluate
from .models import ChangeSet, ClusterState, Decision, Finding, Verdict
from .pricing.allocation import Rates
from .pricing.catalog import PriceBook
from .settings import Mode, PolicySettings


def utcnow() -> datetime:
    """Test seam: the pipeline's idea of now."""
    return datetime.now(timezone.utc)


@dataclass
class ScanResult:
    state: ClusterState
    findings: list[Finding]
    skipped: list[Skip]
    decisions: dict[str, Decision]
    plan: Plan
    timings: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    prepared: bool = False                                    # edits were planned against a repository
    unwritten: dict[str, str] = field(default_factory=dict)   # allowed finding id -> why no branch writes it

    @property
    def change_sets(self) -> list[ChangeSet]:
        return self.plan.change_sets

    def verdict_of(self, finding: Finding) -> Verdict:
        return self.decisions[finding.id].verdict

    @property
    def monthly_savings(self) -> float:
        """Savings of every finding the guardrails allow (planned or deferred)."""
        return sum(f.monthly_savings for f in self.findings if self.verdict_of(f) == Verdict.ALLOW)

    @property
    def written_savings(self) -> float:
        """Savings of what the change sets write (allowed, edited and proven)."""
        return sum(cs.monthly_savings for cs in self.change_sets)

    @property
    def potential_savings(self) -> float:
        """Savings of every finding, whatever the guardrails said."""
        return sum(f.monthly_savings for f in self.findings)


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def lap(self, name: str, started: float) -> float:
        now = time.perf_counter()
        self.timings[name] = round(now - started, 4)
        return now


def scan(state: ClusterState, settings: PolicySettings, *, prices: PriceBook | None = None,
         repo_root: Path | None = None, context: GuardrailContext | None = None,
         existing: dict[str, str] | None = None, prover: Prover | None = None,
         deploy: DeployPolicy | None = None, rates: Rates | None = None) -> ScanResult:
    """Detect, decide, plan and (when a repo is given) prepare the edits of every change set.

    ``existing`` (finding id -> change set id of its open PR, ``Ledger.open_change_sets``)
    lets change sets that already have a PR through the open-PR limit: they update it.
    ``prover`` proves each change set's edits by rendering (:mod:`.actuation.proof`); the CLI
    and the operator always pass one, tests of other stages may leave it out.
    ``deploy`` (the policy's repository, ``spec.git.paths``, the CLI's ``--entry-point``) and the
    state's controller records decide which entry point deploys each workload (:mod:`.gitops.deploymap`).
    ``rates`` (``allocation.effective_rates``: what the bill says a core and a GiB cost) price right-sizing;
    without them the price book's list-price rates do.
    """
    prices = prices or PriceBook.for_region(state.region)     # the bundled book of the cluster's region
    return _run(state, settings, lambda: run_all(state, settings, prices, rates=rates), repo_root=repo_root,
                context=context, existing=existing, prover=prover, deploy=deploy)


def propose(state: ClusterState, findings: list[Finding], settings: PolicySettings, *,
            repo_root: Path | None = None, context: GuardrailContext | None = None,
            existing: dict[str, str] | None = None, prover: Prover | None = None,
            deploy: DeployPolicy | None = None) -> ScanResult:
    """:func:`scan` for findings built elsewhere (a Budget's FreezeGrowth): guardrails, plan, edits and proof.

    The same stages, settings and guardrail context as a scan; no detector runs.
    """
    return _run(state, settings, lambda: DetectorResult(list(findings)), repo_root=repo_root, context=context,
                existing=existing, prover=prover, deploy=deploy)


def _run(state: ClusterState, settings: PolicySettings, detect: Callable[[], DetectorResult], *,
         repo_root: Path | None, context: GuardrailContext | None, existing: dict[str, str] | None,
         prover: Prover | None, deploy: DeployPolicy | None) -> ScanResult:
    timer = _Timer()
    t = time.perf_counter()
    context = context or GuardrailContext(now=utcnow())
    index = None
    if repo_root is not None:
        index = RepoIndex(repo_root)
        assign_sources(state.workloads, index.catalogue(), deploy or DeployPolicy(), state.controllers)
        t = timer.lap("sources", t)
    detected = detect()
    t = timer.lap("detect", t)
    decisions = evaluate(detected.findings, settings.guardrails, context, settings.mode)
    t = timer.lap("guardrails", t)
    plan = plan_change_sets(detected.findings, decisions, settings, open_prs=context.open_prs,
                            existing=existing)
    t = timer.lap("plan", t)
    result = ScanResult(state, detected.findings, detected.skipped, decisions, plan)
    if repo_root is not None:
        if prover is not None and prover.allow_shared != settings.gitops.allow_shared:
            prover = replace(prover, allow_shared=settings.gitops.allow_shared)   # the policy decides
        _prepare_change_sets(result, repo_root, cluster=state.cluster, now=context.now,
                             dry_run=settings.mode == Mode.DRY_RUN, prover=prover,
                             allow_shared=settings.gitops.allow_shared, index=index)
        timer.lap("edit", t)
    result.timings = timer.timings
    return result


def _prepare_change_sets(result: ScanResult, repo_root: Path, *, cluster: str, now: datetime,
                         dry_run: bool, prover: Prover | None = None, allow_shared: bool = False,
                         index: RepoIndex | None = None) -> None:
    """Fill edits, skipped reasons, proof and PR text; a change set with nothing proven to edit is dropped."""
    kept: list[ChangeSet] = []
    for cs in result.plan.change_sets:
        errors = len(result.errors)
        if _edit_and_prove(result, cs, repo_root, prover, allow_shared, index):
            cs.body = render_body(cs, cluster=cluster, generated_at=now, dry_run=dry_run)
            kept.append(cs)
        else:
            why = "; ".join(e.removeprefix(f"{cs.id}: ") for e in result.errors[errors:]) or "nothing to edit"
            result.unwritten.update({f.id: cs.skipped.get(f.id, why) for f in cs.findings})
            continue
        result.unwritten.update(cs.skipped)
    result.plan.change_sets = kept
    result.unwritten.update(result.plan.deferred)
    result.prepared = True


def _edit_and_prove(result: ScanResult, cs: ChangeSet, repo_root: Path, prover: Prover | None,
                    allow_shared: bool = False, index: RepoIndex | None = None) -> bool:
    """Plan the edits; while the proof refuses findings, plan again without them. False: drop ``cs``."""
    refused: dict[str, str] = {}
    while True:
        try:
            edited = plan_edits(repo_root, [f for f in cs.findings if f.id not in refused],
                                allow_shared=allow_shared, index=index)
        except EditError as exc:
            # A file this change set needs is broken: nothing of it is written.
            result.errors.append(f"{cs.id}: {exc}")
            return False
        cs.edits = edited.edits
        cs.skipped = {**edited.skipped, **refused}
        cs.notes = {fid: list(notes) for fid, notes in edited.notes.items() if fid not in refused}
        if not cs.edits:
            # one line per reason: a workload's CPU and memory findings share theirs
            result.errors.extend(f"{cs.id}: {reason}" for reason in dict.fromkeys(cs.skipped.values()))
            return False
        if prover is None:
            return True
        try:
            proof = prover.prove(repo_root, cs.edits, [f for f in cs.findings if f.id not in cs.skipped],
                                 locations=edited.locations)
        except FinOpsError as exc:
            result.errors.append(f"{cs.id}: not proven, nothing written: {exc}")
            return False
        cs.proof = proof.lines
        newly = {fid: reason for fid, reason in proof.failures.items() if fid not in cs.skipped}
        if proof.ok:
            return True
        if not newly:
            result.errors.append(f"{cs.id}: not proven, nothing written: " + "; ".join(proof.lines))
            return False
        refused.update(newly)
