"""The money loop, end to end on plain data.

    ClusterState -> detectors -> guardrails -> plan -> edits -> rendered change sets

One function, :func:`scan`, shared by the CLI (snapshot files, local repos)
and the operator (live cluster, Prometheus, GitHub). It does no network I/O:
the caller brings the state (from a snapshot or the sources) and writes the
result (branches, PRs, SavingsOpportunity objects).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .actuation.edits import plan_edits
from .actuation.plan import Plan, plan_change_sets
from .actuation.render import render_body
from .detectors import run_all
from .detectors.base import Skip
from .errors import EditError
from .guardrails import GuardrailContext, evaluate
from .models import ChangeSet, ClusterState, Decision, Finding, Verdict
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
         existing: dict[str, str] | None = None) -> ScanResult:
    """Detect, decide, plan and (when a repo is given) prepare the edits of every change set.

    ``existing`` (finding id -> change set id of its open PR, ``Ledger.open_change_sets``)
    lets change sets that already have a PR through the open-PR limit: they update it.
    """
    timer = _Timer()
    t = time.perf_counter()
    prices = prices or PriceBook.load()
    context = context or GuardrailContext(now=utcnow())
    detected = run_all(state, settings, prices)
    t = timer.lap("detect", t)
    decisions = evaluate(detected.findings, settings.guardrails, context, settings.mode)
    t = timer.lap("guardrails", t)
    plan = plan_change_sets(detected.findings, decisions, settings, open_prs=context.open_prs,
                            existing=existing)
    t = timer.lap("plan", t)
    result = ScanResult(state, detected.findings, detected.skipped, decisions, plan)
    if repo_root is not None:
        _prepare_change_sets(result, repo_root, cluster=state.cluster, now=context.now,
                             dry_run=settings.mode == Mode.DRY_RUN)
        timer.lap("edit", t)
    result.timings = timer.timings
    return result


def _prepare_change_sets(result: ScanResult, repo_root: Path, *, cluster: str, now: datetime,
                         dry_run: bool) -> None:
    """Fill edits, skipped reasons and PR text; a change set with nothing to edit is dropped."""
    kept: list[ChangeSet] = []
    for cs in result.plan.change_sets:
        try:
            edited = plan_edits(repo_root, cs.findings)
        except EditError as exc:
            # A file this change set needs is broken: nothing of it is written.
            result.errors.append(f"{cs.id}: {exc}")
            continue
        cs.edits = edited.edits
        cs.skipped = dict(edited.skipped)
        cs.notes = {fid: list(notes) for fid, notes in edited.notes.items()}
        if not cs.edits:
            result.errors.extend(f"{cs.id}: {reason}" for reason in cs.skipped.values())
            continue
        cs.body = render_body(cs, cluster=cluster, generated_at=now, dry_run=dry_run)
        kept.append(cs)
    result.plan.change_sets = kept
