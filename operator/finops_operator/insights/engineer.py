"""Engineer insights: what to fix (opportunities with their PRs), cost spikes and their driver, under-requested
containers (OOM kills, CPU throttling)."""
from __future__ import annotations

from ..ledger import OPEN, OpportunityState
from ..models.insights import Category, Evidence, Insight, Persona, Priority
from ..models.spend import AnomalyKind
from ..models.usage import ContainerKey
from ..money import signed_usd, usd
from ..units import format_memory
from .common import DAYS_PER_MONTH, by_impact, by_severity, insight_id, midnight, percent
from .data import InsightData

ENGINEER = Persona.ENGINEER
OPEN_STATES = OPEN - {OpportunityState.BLOCKED}   # open and actionable: a guardrail-blocked one is not
THROTTLED = 0.10                 # a container throttled in more than 10% of its CFS periods is under-requested


def fixes(data: InsightData) -> list[Insight]:
    """One insight per open opportunity (idle or over-requested resource) with the PR that fixes it, if any."""
    out = []
    for opp in data.opportunities:
        if opp.state not in OPEN_STATES or opp.estimated_monthly_savings <= 0:
            continue
        where = f"{opp.target}" + (f" in {opp.namespace}" if opp.namespace and opp.namespace not in opp.target else "")
        if opp.pr_url:
            fix = f"Review and merge {opp.pr_url}" + (f" (PR #{opp.pr_number})" if opp.pr_number else "") + "."
        elif opp.state.value == "NeedsApproval":
            fix = "Approve it: the guardrails need a person's approval before the pull request opens."
        else:
            fix = "The operator opens the pull request on its next run (within the guardrails)."
        text = (f"{opp.type} on {where}: {usd(opp.estimated_monthly_savings)}/month "
                f"(confidence {opp.confidence:.0%}, risk {opp.risk:.0%}; {opp.state.value}).")
        evidence = [Evidence("SavingsOpportunity", opp.id)]
        if opp.pr_url:
            evidence.append(Evidence("PullRequest", f"#{opp.pr_number}" if opp.pr_number else opp.pr_url, opp.pr_url))
        out.append(Insight(insight_id("engineer.fixes", opp.id), ENGINEER,
                           f"{opp.type}: {opp.target} ({usd(opp.estimated_monthly_savings)}/month)", text,
                           by_impact(opp.estimated_monthly_savings), Category.COST_OPTIMIZATION,
                           impact=opp.estimated_monthly_savings, recommendation=fix, confidence=opp.confidence,
                           generator="engineer.fixes", created=data.now, team=opp.team or data.team,
                           metadata={"state": opp.state.value, "pr_url": opp.pr_url, "type": opp.type,
                                     "namespace": opp.namespace},
                           evidence=tuple(evidence)))
    return out


def spikes(data: InsightData) -> list[Insight]:
    """Cost spikes and upward level shifts, with the namespace / workload / service that moved most."""
    out = []
    for a in data.anomalies:
        if a.actual <= a.expected or a.kind is AnomalyKind.DIP:
            continue
        delta = a.actual - a.expected
        when = a.start.isoformat() + (f" to {a.end.isoformat()}" if a.end != a.start else "")
        text = (f"{a.kind.value} {when}: {usd(a.actual)} a day against {usd(a.expected)} expected "
                f"({signed_usd(delta)}, +{percent(delta, a.expected):.0f}%).")
        if a.driver:
            text += f" Likely cause: {a.driver} moved {signed_usd(a.driver_delta or 0.0)}."
        lasting = a.kind is AnomalyKind.LEVEL_SHIFT
        evidence = (Evidence(*_driver_evidence(a.driver)),) if a.driver else ()
        out.append(Insight(insight_id("engineer.spikes", f"{a.start}:{a.kind.value}"), ENGINEER,
                           f"Cost {a.kind.value} on {a.start.isoformat()}" + (f": {a.driver}" if a.driver else ""),
                           text, by_severity(a.severity, a.kind), Category.ANOMALY,
                           impact=delta * DAYS_PER_MONTH if lasting else None,
                           recommendation=(f"Check what was deployed to {a.driver} on {a.start.isoformat()}."
                                           if a.driver else "Break the spend down by namespace to find the driver."),
                           generator="engineer.spikes", created=midnight(a.start), team=data.team,
                           metadata={"expected": a.expected, "actual": a.actual, "severity": a.severity.value,
                                     "driver": a.driver, "driver_delta": a.driver_delta, "excess": delta},
                           evidence=evidence))
    return out


def _driver_evidence(driver: str) -> tuple[str, str]:
    """'namespace search' -> ('Namespace', 'search'); 'workload shop/Deployment/web' -> ('Workload', ...)."""
    kind, _, name = driver.partition(" ")
    return (kind.capitalize() or "Driver", name or driver)


def under_requested(data: InsightData) -> list[Insight]:
    """Containers OOM-killed in the window, or throttled in more than :data:`THROTTLED` of their CPU periods."""
    if data.state is None:
        return []
    out = []
    for w in data.state.workloads:
        for c in w.containers:
            key = f"{w.ref}/{c.name}"
            usage = data.state.usage.get(ContainerKey(w.ref, c.name))
            throttled = usage.cpu_throttled_ratio if usage is not None else None
            if c.oom_kills > 0:
                peak = usage.memory.max if usage is not None and usage.memory is not None else None
                request = c.resources.memory_request
                text = (f"{key} was OOM-killed {c.oom_kills} time(s) in the window; memory request "
                        f"{format_memory(request) if request else 'none'}"
                        + (f", peak usage {format_memory(int(peak))}." if peak else "."))
                out.append(_under(data, w, key, "oom", text, Priority.HIGH,
                                  "Raise the memory request and limit above the peak (a memory right-sizing PR "
                                  "proposes it).", {"oom_kills": c.oom_kills, "memory_request": request,
                                                    "memory_peak": peak}))
            elif throttled is not None and throttled > THROTTLED:
                text = (f"{key} was CPU-throttled in {throttled:.0%} of its CFS periods; CPU request "
                        f"{c.resources.cpu_request or 0:g} cores, limit {c.resources.cpu_limit or 0:g} cores.")
                out.append(_under(data, w, key, "throttled", text,
                                  Priority.MEDIUM if throttled > 0.25 else Priority.LOW,
                                  "Raise or remove the CPU limit; latency suffers while it throttles.",
                                  {"throttled_ratio": throttled}))
    return out


def _under(data: InsightData, w: object, key: str, what: str, text: str, priority: Priority, fix: str,
           meta: dict[str, object]) -> Insight:
    title = f"{'OOM-killed' if what == 'oom' else 'CPU-throttled'}: {key}"
    return Insight(insight_id("engineer.under-requested", f"{key}:{what}"), ENGINEER, title, text, priority,
                   Category.EFFICIENCY, recommendation=fix, generator="engineer.under-requested", created=data.now,
                   team=getattr(w, "team", None), metadata=meta, evidence=(Evidence("Workload", str(getattr(w, "ref"))),))


GENERATORS = {"engineer.fixes": fixes, "engineer.spikes": spikes, "engineer.under-requested": under_requested}
