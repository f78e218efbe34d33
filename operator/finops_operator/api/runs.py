"""One operator run of a FinOpsPolicy, and what it reports: the status to write and the events to post.

:func:`execute_run` is blocking (the handlers call it with ``asyncio.to_thread``):
load the ledger from SavingsOpportunity objects -> wire the sources ->
:func:`~finops_operator.reconcile.run_policy` -> save the changed opportunities.
It never raises for a failing stage; everything lands in :class:`RunOutcome`.

:func:`run_status` and :func:`run_events` are pure: they turn an outcome into
the policy's ``status`` and the Events. A failure is transient or permanent
as the class of the error raised at its source says (``FinOpsError.permanent``,
kept through ``RunReport.permanent``); messages are never parsed to decide:

* transient (Prometheus down, GitHub 5xx, the API timing out): retried on the
  next timer tick after an exponential backoff (``retry_delay``), recorded in
  the Ready condition's message and in ``nextRunTime``;
* permanent (a Secret the operator may not read, a 401 from GitHub, a base
  branch that does not exist): Ready=False with the fix in the message, and no
  retry before the next scheduled run (no hot loop).
"""
from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..actuation.plan import open_pr_limit
from ..config import DEFAULT_CLUSTER_NAME
from ..errors import DataSourceError, FinOpsError
from ..ledger import Ledger
from ..reconcile import LoopDeps, RunReport, run_policy
from ..scrub import scrub
from .conditions import condition, merge_conditions, timestamp
from ..money import decimal_string, usd
from .opportunities import object_name, read_ledger
from .policy import PolicySpec
from .store import OpportunityStore, SaveResult

log = logging.getLogger(__name__)
STATE_KEYS = {"Detected": "detected", "Blocked": "blocked", "NeedsApproval": "needsApproval",
              "Proposed": "proposed", "Merged": "merged", "Verified": "verified", "Rejected": "rejected",
              "Superseded": "superseded"}
SOURCE_STAGES = ("inventory", "setup/datasource")
GIT_STAGES = ("pullRequests", "checkout", "publish")
MAX_OBJECT_EVENTS = 10


@dataclass
class RunOutcome:
    policy: PolicySpec
    started: datetime
    seconds: float = 0.0
    report: RunReport | None = None
    ledger: Ledger | None = None
    saved: SaveResult | None = None
    errors: dict[str, str] = field(default_factory=dict)       # stage -> message
    permanent: dict[str, bool] = field(default_factory=dict)   # stage -> permanent?
    namespaces: list[str] | None = None
    calls: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)   # SavingsOpportunity name -> why it was skipped
    repaired: list[str] = field(default_factory=list)          # ignored annotation values (rewritten on save)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def transient(self) -> bool:
        """Failed, and worth retrying soon (no stage failed for a reason a retry cannot fix)."""
        return bool(self.errors) and not any(self.permanent.values())


PolicyRun = Callable[[PolicySpec, Ledger, LoopDeps], RunReport]


def scan_run(now: datetime) -> PolicyRun:
    """The policy's own run: :func:`~finops_operator.reconcile.run_policy` with its settings."""
    def run(policy: PolicySpec, ledger: Ledger, deps: LoopDeps) -> RunReport:
        return run_policy(policy.name, policy.settings, ledger, deps, now=now, history=policy.prometheus.history,
                          step_seconds=policy.prometheus.step_seconds,
                          git=policy.git.target() if policy.git else None)
    return run


def is_permanent(exc: BaseException) -> bool:
    """Whether retrying cannot help, as the error's class says (:attr:`FinOpsError.permanent`); a bug is permanent."""
    return exc.permanent if isinstance(exc, FinOpsError) else True


def retry_delay(attempt: int, *, base: float = 60.0, cap: float = 3600.0) -> timedelta:
    """Exponential backoff: base, 2 x base, 4 x base ... capped (attempt counts from 1).

    The exponent is bounded before the power is taken: ``attempt`` comes from an annotation anyone
    who may edit the policy can write, and 2 ** 10**20 would hold the GIL (the whole operator) forever.
    """
    return timedelta(seconds=min(cap, base * 2 ** min(max(0, attempt - 1), 32)))


def _record(outcome: RunOutcome, stage: str, exc: BaseException) -> None:
    outcome.errors[stage] = str(exc)
    outcome.permanent[stage] = is_permanent(exc)


def execute_run(policy: PolicySpec, api_client: Any, *, now: datetime, workdir: Path,
                approved: frozenset[str] = frozenset(), build=None, cluster: str = DEFAULT_CLUSTER_NAME,
                region: str = "us-east-1", run: PolicyRun | None = None) -> RunOutcome:
    """Run the policy once and persist its ledger. Blocking; never raises for a failing stage.

    ``cluster`` and ``region`` come from the operator's configuration (``memo.config``). ``run`` replaces the
    scan (:func:`~finops_operator.reconcile.run_policy`) with another use of the policy's ledger and wiring
    (a Budget's FreezeGrowth, ``reconcile.propose_findings``; its release): the same load, save and errors.
    """
    from .wiring import build_deps
    build = build or functools.partial(build_deps, cluster=cluster, default_region=region)
    began = time.monotonic()
    outcome = RunOutcome(policy=policy, started=now)
    store = OpportunityStore(api_client, namespace=policy.namespace, policy=policy.name, policy_uid=policy.uid)
    try:
        objects = store.list_objects()
        read = read_ledger(objects)
        approved = approved | store.approved(objects)
    except FinOpsError as exc:
        _record(outcome, "ledger", exc)
        outcome.seconds = time.monotonic() - began
        return outcome
    ledger = read.ledger
    outcome.unreadable = {name: str(exc) for name, exc in read.unreadable.items()}
    outcome.repaired = [str(w) for w in read.warnings]
    for name, message in outcome.unreadable.items():
        log.warning("skipping unreadable SavingsOpportunity %s: %s", name, message)
    try:
        wiring = build(policy, api_client, workdir=workdir, approved=lambda: approved)
    except FinOpsError as exc:
        _record(outcome, "setup/datasource" if isinstance(exc, DataSourceError) else "setup", exc)
        outcome.seconds = time.monotonic() - began
        return outcome
    outcome.namespaces = wiring.namespaces
    run = run or scan_run(now)
    try:
        report = run(policy, ledger, wiring.deps)
    except FinOpsError as exc:
        _record(outcome, "run", exc)
        outcome.seconds = time.monotonic() - began
        return outcome
    outcome.report, outcome.ledger, outcome.calls = report, ledger, wiring.reader.calls
    outcome.errors.update(report.errors)
    outcome.permanent.update(report.permanent)
    findings = {f.id: f for f in report.result.findings} if report.result else {}
    # An unreadable object is left as it is for a person to fix or delete: never overwritten.
    keep = [o for o in report.changed if object_name(policy.name, o.id) not in outcome.unreadable]
    outcome.saved = store.save(keep, findings)
    if outcome.saved.failed:
        outcome.errors["ledger"] = "; ".join(f"{k}: {v}" for k, v in sorted(outcome.saved.failed.items()))[:4000]
        outcome.permanent["ledger"] = False
    outcome.seconds = time.monotonic() - began
    return outcome


# --------------------------------------------------------------------------- status and events


def verdict_counts(report: RunReport | None) -> dict[str, int]:
    if report is None or report.result is None:
        return {}
    return dict(Counter(d.verdict.value for d in report.result.decisions.values()))


def _stage_group(stage: str) -> str:
    if stage in SOURCE_STAGES or stage.startswith("setup/datasource"):
        return "data"
    if stage.split("/")[0] in GIT_STAGES:
        return "git"
    return "other"


def _summary(outcome: RunOutcome) -> str:
    report = outcome.report
    if report is None or report.result is None:
        return "no findings (the run stopped before the scan)"
    verdicts = verdict_counts(report)
    savings = report.result.monthly_savings
    published = [p for p in report.published if p.ref is not None]
    text = (f"{len(report.result.findings)} findings ({verdicts.get('allow', 0)} allowed, "
            f"{verdicts.get('require-approval', 0)} need approval, {verdicts.get('deny', 0)} blocked), "
            f"{usd(savings)}/month allowed")
    if report.allocation is not None:
        text += f"; {_allocation_summary(report)}"
    if "costs" in report.warnings:
        text += f"; no cost allocation (savings at list prices): {report.warnings['costs']}"
    if outcome.unreadable:
        text += (f"; {len(outcome.unreadable)} unreadable SavingsOpportunity skipped: "
                 + "; ".join(list(outcome.unreadable.values())[:3]))
    if published:
        text += "; published " + ", ".join(f"{p.ref.branch} ({p.ref.state})" for p in published)
    return text


def _allocation_summary(report: RunReport) -> str:
    allocation = report.allocation
    assert allocation is not None
    text = f"{usd(allocation.total)} allocated over {allocation.end - allocation.start}"
    if allocation.bill_total is not None:
        text += f" (bill {usd(allocation.bill_total)}, residual {usd(allocation.residual)})"
    return text


def _conditions(outcome: RunOutcome, *, generation: int, next_at: datetime, retry: tuple[int, datetime] | None
                ) -> list[dict[str, Any]]:
    policy = outcome.policy
    data_errors = {s: m for s, m in outcome.errors.items() if _stage_group(s) == "data"}
    git_errors = {s: m for s, m in outcome.errors.items() if _stage_group(s) == "git"}
    calls = ", ".join(f"{k}: {v} requests" for k, v in sorted(outcome.calls.items())) or "not reached"
    out = []
    if data_errors:
        out.append(condition("DataSourcesReady", False, "DataSourceUnavailable",
                             "; ".join(f"{s}: {m}" for s, m in data_errors.items()), generation=generation))
    elif outcome.report is not None:
        warnings = outcome.report.warnings
        message = calls + "".join(f"; {s} (optional, skipped this run): {m}" for s, m in warnings.items())
        out.append(condition("DataSourcesReady", True, "DataSourcesReachable", message, generation=generation))
    if policy.git is None or policy.settings.mode.value == "DryRun":
        out.append(condition("PullRequestsReady", True, "DryRun",
                             "mode DryRun: findings are recorded as SavingsOpportunity objects, no pull requests "
                             "are opened", generation=generation))
    elif git_errors:
        out.append(condition("PullRequestsReady", False, "PullRequestsFailed",
                             "; ".join(f"{s}: {m}" for s, m in git_errors.items()), generation=generation))
    elif outcome.report is not None and outcome.report.result is not None:
        published = [p.ref for p in outcome.report.published if p.ref is not None]
        message = (f"{len(published)} change sets published to {policy.git.repository}: "
                   + ", ".join(f"{r.url} ({r.state})" for r in published)) if published else \
            f"nothing to publish to {policy.git.repository} this run"
        out.append(condition("PullRequestsReady", True, "PullRequestsUpToDate", message, generation=generation))
    out.append(_ready(outcome, generation=generation, next_at=next_at, retry=retry))
    return out


def _ready(outcome: RunOutcome, *, generation: int, next_at: datetime, retry: tuple[int, datetime] | None
           ) -> dict[str, Any]:
    if outcome.ok:
        return condition("Ready", True, "RunSucceeded",
                         f"last run {timestamp(outcome.started)}: {_summary(outcome)}; next run {timestamp(next_at)}",
                         generation=generation)
    failed = "; ".join(f"{s}: {m}" for s, m in outcome.errors.items())
    if retry is not None:
        attempt, at = retry
        return condition("Ready", False, "TransientError",
                         f"{failed}; retry {attempt} at {timestamp(at)} (exponential backoff)", generation=generation)
    return condition("Ready", False, "PermanentError",
                     f"{failed}; not retried before the next scheduled run at {timestamp(next_at)} - fix the cause, "
                     f"then annotate the policy finops.dev/run-now=<any new value> to run at once",
                     generation=generation)


def run_status(outcome: RunOutcome, previous: dict[str, Any] | None, *, now: datetime, next_at: datetime,
               retry: tuple[int, datetime] | None = None) -> dict[str, Any]:
    """The policy status after a run (a merge patch). ``retry``: (attempt, when) of a scheduled retry."""
    previous = previous or {}
    generation = outcome.policy.generation
    status: dict[str, Any] = {
        "observedGeneration": generation, "lastRunTime": timestamp(outcome.started),
        "lastRunDurationSeconds": round(outcome.seconds),
        "nextRunTime": timestamp(min(next_at, retry[1]) if retry else next_at),
        "scopeErrors": [{"scope": scrub(s, limit=256), "message": scrub(m, limit=4096)}
                        for s, m in list(outcome.errors.items())[:32]],
        "conditions": merge_conditions(previous.get("conditions"),
                                       _conditions(outcome, generation=generation, next_at=next_at, retry=retry),
                                       now=now),
    }
    report = outcome.report
    if report is not None and report.result is not None:
        status["findings"] = len(report.result.findings)
        state = report.result.state
        status["namespacesScanned"] = len(outcome.namespaces) if outcome.namespaces is not None else \
            len({w.ref.namespace for w in state.workloads})
    if outcome.ledger is not None:
        totals = outcome.ledger.totals()["total"]
        status["opportunities"] = {STATE_KEYS[k]: v for k, v in totals["counts"].items() if k in STATE_KEYS}
        status["estimatedMonthlySavings"] = decimal_string(totals["estimated_open"])
        status["openPullRequests"] = outcome.ledger.open_prs()
    return status


def run_events(outcome: RunOutcome) -> list[tuple[str, str, str]]:
    """(type, reason, message): one summary per run, one Warning per failing stage."""
    events = []
    for stage, message in outcome.errors.items():
        kind = "permanent" if outcome.permanent.get(stage) else "transient"
        events.append(("Warning", f"{stage.split('/')[0].capitalize()}Failed", f"{stage} ({kind}): {message}"))
    for stage, message in (outcome.report.warnings.items() if outcome.report is not None else ()):
        events.append(("Warning", f"{stage.capitalize()}Skipped", f"{stage} (the run went on without it): {message}"))
    for name, message in list(outcome.unreadable.items())[:MAX_OBJECT_EVENTS]:
        events.append(("Warning", "OpportunityUnreadable",
                       f"SavingsOpportunity {name} skipped (fix or delete it; it is not overwritten): {message}"))
    for message in outcome.repaired[:MAX_OBJECT_EVENTS]:
        events.append(("Warning", "OpportunityRepaired", message))
    saved = outcome.saved
    stored = f"; SavingsOpportunities: {len(saved.created)} created, {len(saved.updated)} updated" if saved else ""
    if outcome.ok:
        events.insert(0, ("Normal", "RunSucceeded", f"{_summary(outcome)}{stored} ({outcome.seconds:.1f}s)"))
    else:
        failed = f"{len(outcome.errors)} stage(s) failed: {', '.join(outcome.errors)}"
        events.insert(0, ("Warning", "RunFailed", f"{failed}; {_summary(outcome)}{stored}"))
    return events


_FINDING_SERIES: dict[str, set[tuple[str, str]]] = {}


def forget_metrics(namespace: str, name: str) -> None:
    """The policy was deleted: remove its per-policy series that describe its last run."""
    from .. import metrics
    policy = f"{namespace}/{name}"
    metrics.forget_allocation(policy)
    metrics.forget_ledger(policy)
    for type_, verdict in _FINDING_SERIES.pop(policy, set()):
        metrics.FINDINGS.remove(policy, type_, verdict)
    for gauge in (metrics.SAVINGS, metrics.LAST_SUCCESS):
        try:
            gauge.remove(policy)
        except KeyError:                       # never set (no successful run yet)
            pass


def _record_policy_gauges(outcome: RunOutcome, policy: str) -> None:
    """The ledger by state, open pull requests against their limit, and the schedule's interval."""
    from .. import metrics
    if outcome.ledger is not None:
        metrics.export_ledger(policy, outcome.ledger)
    metrics.OPEN_PR_LIMIT.labels(policy=policy).set(open_pr_limit(outcome.policy.settings))
    following = outcome.policy.next_run(outcome.started)
    interval = outcome.policy.next_run(following) - following
    metrics.SCHEDULE_INTERVAL.labels(policy=policy).set(interval.total_seconds())


def record_metrics(outcome: RunOutcome, *, finished: datetime | None = None) -> None:
    """Update the operator's own Prometheus metrics (finops_operator.metrics) for one run."""
    from .. import metrics
    policy = f"{outcome.policy.namespace}/{outcome.policy.name}"
    metrics.RUNS.labels(policy=policy, result="success" if outcome.ok else "error").inc()
    if outcome.ok:
        end = finished or outcome.started + timedelta(seconds=outcome.seconds)
        metrics.LAST_SUCCESS.labels(policy=policy).set(end.timestamp())
    metrics.RUN_SECONDS.labels(policy=policy).observe(outcome.seconds)
    for stage in outcome.errors:
        metrics.ERRORS.labels(policy=policy, stage=stage.split("/")[0]).inc()
        if _stage_group(stage) == "data":
            metrics.DATASOURCE_ERRORS.labels(policy=policy, stage=stage.split("/")[0]).inc()
    _record_policy_gauges(outcome, policy)
    for source, count in outcome.calls.items():
        metrics.QUERIES.labels(policy=policy, source=source).inc(count)
    report = outcome.report
    if report is not None and report.allocation is not None:
        metrics.export_allocation(policy, report.allocation, bill=report.bill)
    if report is None or report.result is None:
        return
    counts = Counter((f.type.value, report.result.verdict_of(f).value) for f in report.result.findings)
    for key in _FINDING_SERIES.get(policy, set()) - set(counts):
        metrics.FINDINGS.labels(policy=policy, type=key[0], verdict=key[1]).set(0)
    for (type_, verdict), count in counts.items():
        metrics.FINDINGS.labels(policy=policy, type=type_, verdict=verdict).set(count)
    _FINDING_SERIES[policy] = set(counts) | _FINDING_SERIES.get(policy, set())
    metrics.SAVINGS.labels(policy=policy).set(report.result.monthly_savings)
    for published in report.published:
        if published.ref is not None:
            action = "created" if published.ref.created else "updated"
            metrics.PULL_REQUESTS.labels(policy=policy, action=action).inc()
