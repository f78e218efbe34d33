"""One run of a policy against live systems: the operator's loop without kopf.

    sync PRs -> inventory -> usage -> prices -> costs -> verify merged -> scan -> ledger -> publish

The kopf handlers call :func:`run_policy` from a timer; the integration tests
call it directly with real Prometheus, moto, git and the GitHub emulator. Every
stage is isolated: a failing stage is recorded in ``RunReport.errors`` and the
stages that do not depend on it still run (publishing never runs on missing
data). The ``costs`` stage (cost allocation of the window) is optional: when it
fails the run goes on at list prices and the failure is a warning
(``RunReport.warnings``), not an error. Nothing here imports kopf.
"""
from __future__ import annotations

import logging
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Protocol

from .actuation.proof import Prover
from .actuation.providers import Provider, PullRequestRef
from .costrun import allocate_window_and_rates
from .detectors import REGISTRY, Skip, type_spec
from .errors import FinOpsError
from .gitops.deploymap import DeployPolicy
from .guardrails import GuardrailContext
from .ledger import Ledger, Opportunity, OpportunityState
from .models import ClusterState, Finding, Window
from .models.costs import Allocation, Bill, UsageHours
from .pipeline import ScanResult, propose, scan
from .pricing.allocation import Rates, cluster_rates
from .pricing.catalog import PriceBook
from .pricing.live import Pricing, book_for_state
from .settings import Mode, PolicySettings

log = logging.getLogger(__name__)


class StateReader(Protocol):
    def __call__(self, window: Window) -> ClusterState: ...


class CostReader(Protocol):
    """Usage hours of the window and the cluster's bill for it (None: price the window with the price book)."""

    def __call__(self, window: Window) -> tuple[UsageHours, Bill | None]: ...


@dataclass
class GitTarget:
    """Where change sets go (from the FinOpsPolicy's ``spec.git``)."""

    base_branch: str = "main"
    labels: list[str] = field(default_factory=lambda: ["finops"])
    reviewers: list[str] = field(default_factory=list)
    draft: bool = False


@dataclass
class Published:
    change_set: str
    ref: PullRequestRef | None
    error: str | None = None


@dataclass
class RunReport:
    started: datetime
    result: ScanResult | None = None
    published: list[Published] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)     # stage -> message
    permanent: dict[str, bool] = field(default_factory=dict)  # stage -> the error's class says a retry cannot help
    changed: list[Opportunity] = field(default_factory=list)
    warnings: dict[str, str] = field(default_factory=dict)   # stage -> message: failed, the run went on without it
    allocation: Allocation | None = None      # the window's cost allocation (the costs stage)
    bill: Bill | None = None                  # the bill it was reconciled with (None: price book only)
    rates: Rates | None = None                # effective rates from the allocation's inputs (None: list rates)
    usage: UsageHours | None = None           # the hourly usage allocated (team health: used vs requested)

    @property
    def ok(self) -> bool:
        return not self.errors

    def fail(self, stage: str, exc: BaseException) -> None:
        """Record a failed stage. A FinOpsError's class decides whether it is permanent; anything else is a
        bug, which a retry would only repeat (the next scheduled run still comes)."""
        known = isinstance(exc, FinOpsError)
        self.errors[stage] = str(exc) if known else f"{type(exc).__name__}: {exc}"
        self.permanent[stage] = exc.permanent if known else True

    def warn(self, stage: str, exc: BaseException) -> None:
        """Record a failed optional stage: the run went on without it and stays ok."""
        self.warnings[stage] = str(exc) if isinstance(exc, FinOpsError) else f"{type(exc).__name__}: {exc}"


@dataclass
class LoopDeps:
    read_state: StateReader                   # inventory + usage for a window (sources merged)
    provider: Provider | None = None          # None: findings only (no git target)
    checkout: Callable[[str], Path] | None = None   # base branch -> directory holding its files
    prices: PriceBook | Pricing | None = None   # None: the bundled book of the state's region
    approved: Callable[[], frozenset[str]] = lambda: frozenset()
    prover: Prover | None = None              # proves edits by rendering; the operator's wiring always sets one
    deploy: DeployPolicy | None = None        # the policy's repository and spec.git.paths (gitops.deploymap)
    read_costs: CostReader | None = None      # None: no cost allocation; right-sizing priced at list rates


def export_tree(repo: Path, ref: str, dest: Path | None = None) -> Path:
    """The files of ``ref`` in a fresh directory (``git archive``): edits read the base, never a work tree."""
    dest = dest or Path(tempfile.mkdtemp(prefix="finops-base-"))
    archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", ref],
                             check=True, capture_output=True, timeout=120).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True, capture_output=True, timeout=120)
    return dest


def sync_pull_requests(ledger: Ledger, provider: Provider, now: datetime) -> list[Opportunity]:
    """Move Proposed opportunities to Merged or Rejected from their PR's state (one call per branch)."""
    changed: list[Opportunity] = []
    by_branch: dict[str, list[Opportunity]] = {}
    for opp in ledger.opportunities:
        if opp.state == OpportunityState.PROPOSED and opp.branch:
            by_branch.setdefault(opp.branch, []).append(opp)
    for branch, opps in sorted(by_branch.items()):
        ref = provider.status(branch)
        if ref is None:
            continue
        for opp in opps:
            if ref.state == "merged":
                changed.append(ledger.merged(opp.id, ref.merged_at or now))
            elif ref.state == "closed":
                changed.append(ledger.closed(opp.id, now))
    return changed


def realized_savings(opp: Opportunity, state: ClusterState, rates: Rates) -> float | None:
    """Savings measured on the cluster as it is now, or None while the change is not live yet.

    Each finding type declares its own rule (``realized_savings`` of its detector class).
    """
    try:
        spec = type_spec(opp.type)
    except KeyError:
        return None                                   # a type this operator version does not know
    return spec.realized_savings(opp, state, rates)


def verify_merged(ledger: Ledger, state: ClusterState, prices: PriceBook, now: datetime,
                  settle: timedelta, rates: Rates | None = None) -> list[str]:
    """Verify merged opportunities at ``rates`` (the bill's effective rates when given, else list prices)."""
    verified = []
    rates = rates or cluster_rates(state, prices)
    for opp in ledger.opportunities:
        if opp.state != OpportunityState.MERGED:
            continue
        realized = realized_savings(opp, state, rates)
        if realized is not None and ledger.verify(opp.id, realized, now, settle):
            verified.append(opp.id)
    return verified


def guardrail_context(ledger: Ledger, now: datetime, *, approved: frozenset[str] = frozenset(),
                      mode: Mode = Mode.PULL_REQUEST) -> GuardrailContext:
    """What the guardrails need from the ledger: today's proposals, open PRs, and what humans rejected."""
    return GuardrailContext(now=now, changes_today=ledger.changes_on(now.date(), now.tzinfo),
                            open_prs=ledger.open_prs(), approved=approved, mode=mode,
                            proposed=ledger.proposed_ids(), rejected=ledger.rejected())


def detectors_that_ran(skipped: list[Skip], settings: PolicySettings, prices: PriceBook) -> frozenset[str]:
    """Detectors enabled by the policy that did not fail (a Skip with target ``*`` is a failed detector).

    Only their opportunities may be superseded when not found again: a disabled or
    failing detector says nothing about what it did not look at.
    """
    failed = {s.detector for s in skipped if s.target == "*"}
    return frozenset(name for name, cls in REGISTRY.items() if cls(settings, prices).enabled and name not in failed)


def run_policy(name: str, settings: PolicySettings, ledger: Ledger, deps: LoopDeps, *, now: datetime,
               history: timedelta, step_seconds: int, git: GitTarget | None = None,
               settle: timedelta = timedelta(days=7)) -> RunReport:
    """One full run of a policy; mutates ``ledger``; never raises for a failing stage."""
    report = RunReport(started=now)
    if deps.provider is not None:
        _stage(report, "pullRequests", lambda: report.changed.extend(sync_pull_requests(ledger, deps.provider, now)))
    window = Window(now - history, now, step_seconds)
    state = _stage(report, "inventory", lambda: deps.read_state(window))
    if state is None:
        return report                                   # no data: no findings, no PRs
    prices = _stage(report, "prices", lambda: book_for_state(deps.prices, state.region, state.nodes))
    if prices is None:
        return report                                   # no price for this region: a ConfigError naming the fix
    if deps.read_costs is not None:
        _costs(report, deps.read_costs, cost_window(window), state, prices, settings)
    rates = report.rates
    report.verified = _stage(report, "verify",
                             lambda: verify_merged(ledger, state, prices, now, settle, rates=rates)) or []
    git = git or GitTarget()
    ran: set[str] = set()

    def detect(repo_root: Path | None, context: GuardrailContext, existing: dict[str, str]) -> ScanResult:
        result = scan(state, settings, prices=prices, repo_root=repo_root, context=context, existing=existing,
                      prover=deps.prover, deploy=deps.deploy, rates=rates)
        ran.update(detectors_that_ran(result.skipped, settings, prices))
        return result

    _plan_and_publish(report, ledger, deps, settings, git, now, detect, covered=lambda opp: opp.detector in ran)
    return report


def propose_findings(settings: PolicySettings, ledger: Ledger, deps: LoopDeps,
                     findings_of: Callable[[ClusterState], list[Finding]], *, now: datetime, history: timedelta,
                     step_seconds: int, git: GitTarget | None = None) -> RunReport:
    """A run for findings built elsewhere (a Budget's FreezeGrowth) instead of a scan; mutates ``ledger``.

    The same stages as :func:`run_policy` minus detection: PR sync, inventory (``findings_of(state)``
    builds the findings from it), checkout, the guardrail context from the ledger, ``pipeline.propose``
    (guardrails, plan, edits, proof), ``ledger.observe`` (superseding nothing else) and publishing.
    """
    report = RunReport(started=now)
    if deps.provider is not None:
        _stage(report, "pullRequests", lambda: report.changed.extend(sync_pull_requests(ledger, deps.provider, now)))
    state = _stage(report, "inventory", lambda: deps.read_state(Window(now - history, now, step_seconds)))
    if state is None:
        return report
    findings = _stage(report, "findings", lambda: findings_of(state))
    if not findings:
        return report

    def detect(repo_root: Path | None, context: GuardrailContext, existing: dict[str, str]) -> ScanResult:
        return propose(state, findings, settings, repo_root=repo_root, context=context, existing=existing,
                       prover=deps.prover, deploy=deps.deploy)

    _plan_and_publish(report, ledger, deps, settings, git or GitTarget(), now, detect, covered=lambda opp: False)
    return report


Planner = Callable[[Path | None, GuardrailContext, dict[str, str]], ScanResult]


def _plan_and_publish(report: RunReport, ledger: Ledger, deps: LoopDeps, settings: PolicySettings, git: GitTarget,
                      now: datetime, detect: Planner, *, covered: Callable[[Opportunity], bool]) -> None:
    """checkout -> guardrail context -> ``detect`` (scan or propose) -> ledger -> publish: one path for both."""
    repo_root = None
    if deps.checkout is not None and settings.mode != Mode.DRY_RUN:
        repo_root = _stage(report, "checkout", lambda: deps.checkout(git.base_branch))
    context = guardrail_context(ledger, now, approved=deps.approved(), mode=settings.mode)
    if repo_root is not None and deps.provider is not None:
        # the open-PR limit is planning's (actuation.plan); the forge's count covers a lost ledger
        context.open_prs = max(context.open_prs, _open_count(deps.provider))
    result = _stage(report, "scan", lambda: detect(repo_root, context, ledger.open_change_sets()))
    if result is None:
        return
    report.result = result
    report.changed.extend(ledger.observe(result.findings, result.decisions, now, covered=covered))
    if deps.provider is not None and repo_root is not None and settings.mode != Mode.DRY_RUN:
        _publish(report, ledger, deps.provider, result, git, now)


COST_WINDOW = timedelta(days=7)


def cost_window(window: Window) -> Window:
    """The part of the run's window the costs stage allocates: the last :data:`COST_WINDOW` at most.

    A week holds every weekday (the rates right-sizing uses) and the hourly gauges need only the recent
    hours; allocating a 90-day history window would cost Prometheus as much again as the scan itself
    (6 requests per day), on every run. Budgets keep their own daily history (api/spendstore.py)."""
    return Window(max(window.start, window.end - COST_WINDOW), window.end, window.step_seconds)


def _costs(report: RunReport, read_costs: CostReader, window: Window, state: ClusterState, book: PriceBook,
           settings: PolicySettings) -> None:
    """Allocate the window's cost and derive the rates right-sizing and verification price with.

    A failure is a warning: the scan still runs, at list rates (cost data is an addition, not a precondition).
    """
    def allocate() -> tuple[Allocation, Bill | None, Rates, UsageHours]:
        usage, bill = read_costs(window)
        allocation, rates = allocate_window_and_rates(usage, state.nodes, book, bill, settings.allocation)
        return allocation, bill, rates, usage

    done = _stage(report, "costs", allocate, optional=True)
    if done is not None:                                 # all or nothing: never a half-priced run
        report.allocation, report.bill, report.rates, report.usage = done


def _publish(report: RunReport, ledger: Ledger, provider: Provider, result: ScanResult, git: GitTarget,
             now: datetime) -> None:
    for cs in result.change_sets:
        try:
            ref = provider.publish(cs, base_branch=git.base_branch, labels=git.labels, reviewers=git.reviewers,
                                   draft=git.draft)
        except FinOpsError as exc:
            report.published.append(Published(cs.id, None, str(exc)))
            report.fail(f"publish/{cs.id}", exc)
            continue
        report.published.append(Published(cs.id, ref))
        if ref.state in ("open", "pushed"):
            for finding in cs.findings:
                if finding.id not in cs.skipped:
                    report.changed.append(ledger.proposed(finding.id, ref.url, ref.number, ref.branch, cs.id, now))


def _open_count(provider: Provider) -> int:
    """Open PRs on the forge; 0 when it cannot be asked (the ledger's count stands; publishing reports the cause)."""
    try:
        return provider.open_count()
    except FinOpsError as exc:
        log.warning("cannot count open pull requests, using the ledger's count: %s", exc)
        return 0


def _stage(report: RunReport, name: str, fn, *, optional: bool = False):
    """``fn()``, or None with the failure recorded: an error, or a warning for an ``optional`` stage."""
    record = report.warn if optional else report.fail
    try:
        return fn()
    except FinOpsError as exc:
        record(name, exc)
    except Exception as exc:  # an unexpected bug in one stage must not kill the operator
        log.exception("stage %s failed", name)
        record(name, exc)
    return None
