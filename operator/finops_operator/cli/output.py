"""How a scan looks to a person (rich tables) and to a machine (JSON)."""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..actuation.plan import edited_title
from ..models import Finding, Verdict
from ..money import usd
from ..pipeline import ScanResult

_VERDICT_STYLE = {Verdict.ALLOW: "green", Verdict.REQUIRE_APPROVAL: "yellow", Verdict.DENY: "red"}


def _changes_text(finding: Finding) -> str:
    parts = []
    for change in finding.changes:
        field = change.field.removeprefix("resources.")
        parts.append(f"{field}: {change.before or '—'} → {change.after or 'removed'}")
    return "\n".join(parts)


def _target_text(finding: Finding) -> str:
    target = finding.target
    if target.workload:
        return f"{target.workload.namespace}/{target.workload.name}\n[dim]{target.workload.kind} · {target.name}[/]"
    return f"{target.name}\n[dim]{target.kind.value}[/]"


def findings_table(result: ScanResult, *, limit: int | None = None) -> Table:
    table = Table(title="Findings", show_lines=True, header_style="bold")
    table.add_column("Target", overflow="fold")
    table.add_column("Type")
    table.add_column("Change", overflow="fold")
    table.add_column("$/month", justify="right")
    table.add_column("Conf.", justify="right")
    table.add_column("Risk", justify="right")
    table.add_column("Decision")
    ordered = sorted(result.findings, key=lambda f: (-abs(f.monthly_savings), f.id))
    for finding in ordered[:limit] if limit else ordered:
        decision = result.decisions[finding.id]
        style = _VERDICT_STYLE[decision.verdict]
        why = next((r.message for r in decision.reasons if r.verdict == decision.verdict
                    and decision.verdict != Verdict.ALLOW), "")
        verdict = decision.verdict.value
        if decision.verdict == Verdict.ALLOW and finding.id in result.unwritten:
            verdict, why = "allow, not written", result.unwritten[finding.id]
        table.add_row(_target_text(finding), finding.type.value, _changes_text(finding),
                      usd(finding.monthly_savings), f"{finding.confidence:.0%}", f"{finding.risk:.0%}",
                      f"[{style}]{escape(verdict)}[/]" + (f"\n[dim]{escape(why)}[/]" if why else ""))
    return table


def change_sets_table(result: ScanResult) -> Table:
    table = Table(title="Change sets (one branch / pull request each)", header_style="bold")
    table.add_column("Branch")
    table.add_column("Findings", justify="right")
    table.add_column("Files", justify="right")
    table.add_column("$/month", justify="right")
    table.add_column("Title", overflow="fold")
    for cs in result.change_sets:
        table.add_row(cs.branch, str(len(cs.findings) - len(cs.skipped)), str(len(cs.edits)),
                      usd(cs.monthly_savings), edited_title(cs))
    return table


def print_summary(console: Console, result: ScanResult) -> None:
    counts = {v: 0 for v in Verdict}
    for decision in result.decisions.values():
        counts[decision.verdict] += 1
    console.print(
        f"[bold]{len(result.findings)}[/] findings worth [bold]{usd(result.potential_savings)}[/]/month; "
        f"[green]{counts[Verdict.ALLOW]} allowed[/] ({usd(result.monthly_savings)}/month), "
        f"[yellow]{counts[Verdict.REQUIRE_APPROVAL]} need approval[/], [red]{counts[Verdict.DENY]} denied[/]; "
        f"{len(result.skipped)} targets skipped.")
    if result.prepared:
        written = counts[Verdict.ALLOW] - len(result.unwritten)
        line = (f"Written: {written} of the {counts[Verdict.ALLOW]} allowed findings "
                f"({usd(result.written_savings)}/month) in {len(result.change_sets)} change sets")
        if result.unwritten:
            line += f"; {len(result.unwritten)} allowed but not written (the table says why)"
        console.print(line + ".")


def result_to_json(result: ScanResult) -> dict[str, Any]:
    """A stable, machine-readable view of a scan."""
    def finding(f: Finding) -> dict[str, Any]:
        decision = result.decisions[f.id]
        return {
            "id": f.id, "detector": f.detector, "type": f.type.value, "target": str(f.target),
            "namespace": f.target.namespace, "team": f.team, "title": f.title,
            "changes": [{"field": c.field, "before": c.before, "after": c.after} for c in f.changes],
            "monthlySavings": round(f.monthly_savings, 2), "confidence": round(f.confidence, 3),
            "risk": round(f.risk, 3), "fingerprint": f.fingerprint,
            "edit": {"kind": f.edit.kind.value, "sourceHint": f.edit.source_hint},
            "notWritten": result.unwritten.get(f.id),
            "costBefore": f.cost_before, "costAfter": f.cost_after, "evidence": _jsonable(f.evidence),
            "decision": {"verdict": decision.verdict.value,
                         "reasons": [{"rule": r.rule, "verdict": r.verdict.value, "message": r.message}
                                     for r in decision.reasons]},
        }
    return {
        "cluster": result.state.cluster,
        "summary": {"findings": len(result.findings), "potentialMonthlySavings": round(result.potential_savings, 2),
                    "allowedMonthlySavings": round(result.monthly_savings, 2),
                    "writtenMonthlySavings": round(result.written_savings, 2) if result.prepared else None,
                    "skipped": len(result.skipped)},
        "findings": [finding(f) for f in sorted(result.findings, key=lambda f: f.id)],
        "skipped": [{"target": s.target, "detector": s.detector, "reason": s.reason} for s in result.skipped],
        "changeSets": [{"id": cs.id, "branch": cs.branch, "title": edited_title(cs),
                        "findings": [f.id for f in cs.findings], "files": [e.path for e in cs.edits],
                        "skipped": cs.skipped, "notes": cs.notes, "proof": cs.proof,
                        "monthlySavings": round(cs.monthly_savings, 2)}
                       for cs in result.change_sets],
        "deferred": result.plan.deferred,
        "errors": result.errors,
        "timings": result.timings,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def show_result(console: Console, result: ScanResult, *, verbose: bool = False, limit: int | None = None) -> None:
    """Findings, change sets, what could not be applied, and the summary line."""
    console.print(findings_table(result, limit=limit))
    if result.change_sets:
        console.print(change_sets_table(result))
    for error in result.errors:
        console.print(f"[yellow]not applied:[/] {escape(error)}")
    if verbose:
        for skip in result.skipped:
            console.print(f"[dim]skipped {escape(str(skip.target))} ({skip.detector}): {escape(skip.reason)}[/]")
    print_summary(console, result)
