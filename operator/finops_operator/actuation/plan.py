"""Group allowed findings into change sets (one branch and one PR each), within the blast radius.

    findings + decisions  ->  groups (groupBy)  ->  split by blast radius  ->  open-PR budget  ->  Plan

* Only findings whose decision is ALLOW are planned.
* Each finding type declares its grouping (``Detector.grouping``, see
  :mod:`..detectors.base`). Workload findings are grouped by ``settings.group_by``:
  ``namespace`` (``rightsize-<namespace>``), ``team`` (``rightsize-<team>``) or
  ``type`` (``rightsize-cpu`` / ``rightsize-memory``). Cluster infrastructure is
  always grouped by type and kept apart, under the id its type declares
  (``node-groups``, ``orphan-volumes``); a finding with a ``group`` (FreezeGrowth:
  its budget) goes to ``<id>-<group>`` (``freeze-growth-finance-payments``).
* A group is split into parts of at most ``maxWorkloadsPerPr`` distinct
  workloads (all containers of a workload stay in one PR) and
  ``maxNamespacesPerPr`` namespaces. Infra targets (a node group, a volume)
  count as one "workload" each and have no namespace; a namespace target is
  one "workload" in its namespace. Parts are filled in
  sorted (namespace, workload) order and numbered ``<base>``, ``<base>-2``,
  ``<base>-3``: the same findings give the same ids on every run, so branches
  are stable. Splitting adds a ``blast-radius`` reason to the change set's
  decisions.
* Change sets are ordered by monthly savings (largest first, then id). New PRs
  fit in ``maxOpenPrs - open_prs``; a change set whose id already has an open
  PR (a value of ``existing``: finding id -> change set id of its open PR, from
  the ledger) updates that PR and needs no new slot. Change sets over the
  budget are not planned: their findings go to ``Plan.deferred`` with the
  reason and wait for the next run.
* ``Mode.DryRun`` still plans (so the CLI can show what would happen);
  ``Plan.dry_run`` tells the actuator not to write anything.

Pure: no I/O, no clock.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from ..detectors import type_spec
from ..models import ChangeSet, Decision, Finding, Reason, TargetKind, Verdict
from ..settings import Mode, PolicySettings

_MAX_SLUG = 48


@dataclass
class Plan:
    """What to publish now, and what waits."""

    change_sets: list[ChangeSet] = field(default_factory=list)
    deferred: dict[str, str] = field(default_factory=dict)   # finding id -> why it waits
    dry_run: bool = False

    @property
    def monthly_savings(self) -> float:
        return sum(cs.monthly_savings for cs in self.change_sets)


@dataclass
class _Group:
    base: str                    # change set id of the first part
    label: str                   # for reasons: "payments", "team payments", "CPU", "node groups"
    scope: str | None            # for titles: "in payments"; None when grouped by type or infra
    units: dict[str, list[Finding]] = field(default_factory=dict)   # workload/target key -> findings


def slug(text: str) -> str:
    """A branch-safe id part: lowercase letters, digits and dashes; long names keep a short hash."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "none"
    if len(cleaned) <= _MAX_SLUG:
        return cleaned
    digest = hashlib.sha256(text.encode()).hexdigest()[:6]
    return f"{cleaned[:_MAX_SLUG - 7].rstrip('-')}-{digest}"


def unit_key(finding: Finding) -> str:
    """The blast-radius unit: the workload of a container, else the target itself."""
    target = finding.target
    if target.kind == TargetKind.CONTAINER:
        if target.workload is not None:
            return target.workload.key
        return f"{target.namespace}/-/{target.name}"
    return f"{target.kind.value}/{target.name}"


def _namespace(finding: Finding) -> str | None:
    target = finding.target
    if target.kind == TargetKind.NAMESPACE:
        return target.namespace or target.name
    if target.kind != TargetKind.CONTAINER:
        return None
    return target.namespace or (target.workload.namespace if target.workload else None)


def _group_of(finding: Finding, group_by: str) -> tuple[str, str, str | None]:
    """(base id, label, title scope) for a finding."""
    grouping = type_spec(finding.type).grouping
    if grouping.change_set and finding.group:      # a type grouped by its own key (FreezeGrowth: the budget)
        return f"{grouping.change_set}-{slug(finding.group)}", f"{grouping.label} of {finding.group}", finding.group
    if grouping.change_set:
        return grouping.change_set, grouping.label, None
    if group_by == "type":
        return slug(finding.type.value), grouping.label, None
    if group_by == "team":
        team = finding.team or _namespace(finding) or "unassigned"
        return f"rightsize-{slug(team)}", f"team {team}", f"team {team}"
    namespace = _namespace(finding) or "cluster"
    return f"rightsize-{slug(namespace)}", namespace, namespace


def _groups(findings: list[Finding], group_by: str) -> list[_Group]:
    groups: dict[str, _Group] = {}
    for finding in findings:
        base, label, scope = _group_of(finding, group_by)
        group = groups.setdefault(base, _Group(base, label, scope))
        group.units.setdefault(unit_key(finding), []).append(finding)
    return [groups[key] for key in sorted(groups)]


def _split(group: _Group, max_workloads: int, max_namespaces: int) -> list[list[str]]:
    """Greedy parts over sorted units, within both limits."""
    def order(key: str) -> tuple[str, str]:
        return (_namespace(group.units[key][0]) or "", key)

    parts: list[list[str]] = []
    namespaces: set[str] = set()
    for key in sorted(group.units, key=order):
        namespace = _namespace(group.units[key][0])
        over_namespaces = namespace is not None and namespace not in namespaces and len(namespaces) >= max_namespaces
        if not parts or len(parts[-1]) >= max_workloads or over_namespaces:
            parts.append([])
            namespaces = set()
        parts[-1].append(key)
        if namespace is not None:
            namespaces.add(namespace)
    return parts


def _finding_order(finding: Finding) -> tuple[str, str, str, str]:
    return (unit_key(finding), finding.target.name, finding.type.value, finding.id)


def change_set_title(findings: list[Finding], scope: str | None, part: int = 1, parts: int = 1) -> str:
    """'Right-size CPU and memory of 3 workloads in payments', 'Consolidate 1 node group (part 1 of 2)'."""
    units = len({unit_key(f) for f in findings})
    suffix = f" (part {part} of {parts})" if parts > 1 else ""
    groupings = [type_spec(f.type).grouping for f in findings]
    infra = next((g for g in groupings if g.change_set), None)
    if infra is not None:
        where = f" (budget {scope})" if scope else ""
        return f"{infra.verb} {_count(units, infra.noun)}{where}{suffix}"
    kinds = sorted({g.label for g in groupings}, key=lambda k: (k != "CPU", k))
    where = f" in {scope}" if scope else ""
    return f"Right-size {' and '.join(kinds)} of {_count(units, 'workload')}{where}{suffix}"


def edited_title(cs: ChangeSet) -> str:
    """The change set's title counting only the findings that were edited (not ``cs.skipped``)."""
    edited = [f for f in cs.findings if f.id not in cs.skipped] or cs.findings
    return change_set_title(edited, cs.scope, cs.part, cs.parts)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _change_sets(group: _Group, decisions: dict[str, Decision], settings: PolicySettings) -> list[ChangeSet]:
    limits = settings.guardrails
    parts = _split(group, limits.max_workloads_per_pr, limits.max_namespaces_per_pr)
    result = []
    for index, keys in enumerate(parts, start=1):
        findings = sorted((f for key in keys for f in group.units[key]), key=_finding_order)
        cs_id = group.base if index == 1 else f"{group.base}-{index}"
        chosen = {}
        for finding in findings:
            decision = decisions[finding.id]
            reasons = list(decision.reasons)
            if len(parts) > 1:
                reasons.append(_split_reason(group, index, len(parts), settings))
            chosen[finding.id] = Decision(finding.id, decision.verdict, reasons)
        result.append(ChangeSet(id=cs_id, title=change_set_title(findings, group.scope, index, len(parts)),
                                findings=findings, decisions=chosen, scope=group.scope, part=index,
                                parts=len(parts)))
    return result


def _split_reason(group: _Group, index: int, parts: int, settings: PolicySettings) -> Reason:
    limits = settings.guardrails
    namespaces = {_namespace(fs[0]) for fs in group.units.values()} - {None}
    spread = f" across {len(namespaces)} namespaces" if namespaces else ""
    return Reason("blast-radius", Verdict.ALLOW,
                  f"PR {index} of {parts} for {group.label}: {len(group.units)} workloads{spread}; at most "
                  f"{limits.max_workloads_per_pr} workloads and {limits.max_namespaces_per_pr} namespaces per PR "
                  "(guardrails.maxWorkloadsPerPr, maxNamespacesPerPr)")


def plan_change_sets(findings: list[Finding], decisions: dict[str, Decision], settings: PolicySettings, *,
                     open_prs: int, existing: dict[str, str] | None = None) -> Plan:
    """Group the ALLOW findings into change sets; defer what does not fit the open-PR budget."""
    plan = Plan(dry_run=settings.mode == Mode.DRY_RUN)
    allowed: dict[str, Finding] = {}
    for finding in findings:
        decision = decisions.get(finding.id)
        if decision is None:
            plan.deferred[finding.id] = "no guardrail decision for this finding; run the guardrails first"
        elif decision.verdict == Verdict.ALLOW:
            allowed.setdefault(finding.id, finding)
    candidates = [cs for group in _groups(list(allowed.values()), settings.group_by)
                  for cs in _change_sets(group, decisions, settings)]
    candidates.sort(key=lambda cs: (-cs.monthly_savings, cs.id))
    _fit_open_prs(plan, candidates, settings, open_prs=open_prs, existing=existing or {})
    return plan


def open_pr_limit(settings: PolicySettings) -> int:
    """How many pull requests a policy may have open at once (guardrails.maxOpenPrs): the one place it is read."""
    return settings.guardrails.max_open_prs


def _fit_open_prs(plan: Plan, candidates: list[ChangeSet], settings: PolicySettings, *,
                  open_prs: int, existing: dict[str, str]) -> None:
    limit = open_pr_limit(settings)
    has_pr = set(existing.values())
    slots = max(0, limit - max(0, open_prs))
    for cs in candidates:
        if cs.id in has_pr:
            plan.change_sets.append(cs)
        elif slots > 0:
            plan.change_sets.append(cs)
            slots -= 1
        else:
            for finding in cs.findings:
                plan.deferred[finding.id] = (
                    f"open PR limit {limit} reached ({open_prs} open before this run); change set {cs.id} "
                    "waits for the next run (guardrails.maxOpenPrs)")
