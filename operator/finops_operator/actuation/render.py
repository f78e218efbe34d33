"""Pull request title, body and commit message for a change set (jinja2 templates).

    render_title(cs)                                   -> 'finops: Right-size CPU of 3 workloads in payments (saves $123.45/month)'
    render_body(cs, cluster=..., generated_at=...)     -> GitHub markdown
    render_commit_message(cs)                          -> subject, change lines, trailers

Templates live in ``finops_operator/templates/*.j2`` and only lay out text:
every value is formatted here (money as USD with 2 decimals, confidence and
risk as percent plus a word, quantities as written in the manifests).

Confidence words: high >= 80%, medium >= 60%, else low. Risk words: low < 30%,
medium < 60%, else high.

Deterministic: findings in the change set's order, notes in first-seen order,
evidence keys sorted - the same change set renders to the same text. Secrets:
evidence keys that look like credentials are dropped and all free text is
scrubbed of token-like strings. The body stays under GitHub's 65,536-character
limit: evidence is cut first (with a note), then table rows; the hidden marker
``<!-- finops-operator:changeset=<id> fingerprint=<hash> savings=<usd> -->`` is the first
line, so it always survives.
"""
from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from ..ledger import REOPEN_PROMISE
from ..models import Change, ChangeSet, Decision, Finding
from ..money import signed_usd, usd
from .plan import edited_title
from .providers import changeset_fingerprint, marker_for
from .render_evidence import evidence_lines, scrub

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
MAX_BODY_CHARS = 65_536
MAX_TITLE_CHARS = 256


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=False,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters["cell"] = cell
    env.filters["code"] = code
    return env


def cell(text: Any) -> str:
    """Text safe inside a markdown table cell (and summary tag)."""
    value = scrub(str(text)).replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    return value.replace("<", "&lt;").replace(">", "&gt;")


def code(text: Any) -> str:
    """A code span safe inside a table cell."""
    value = scrub(str(text)).replace("\r", " ").replace("\n", " ").replace("`", "'").replace("|", "\\|")
    return f"`{value}`"


def confidence_text(value: float) -> str:
    word = "high" if value >= 0.8 else "medium" if value >= 0.6 else "low"
    return f"{value * 100:.0f}% ({word})"


def risk_text(value: float) -> str:
    word = "low" if value < 0.3 else "medium" if value < 0.6 else "high"
    return f"{value * 100:.0f}% ({word})"


def savings_phrase(amount: float) -> str:
    if amount < -0.004:
        return f"adds {usd(-amount)}/month for safety"
    return f"saves {usd(amount)}/month"


def _savings_sentence(amount: float) -> str:
    if amount < -0.004:
        return f"Costs {usd(-amount)} more per month (safety raises: OOM kills or throttling)."
    return f"Saves an estimated {usd(amount)} per month."


def _shown(cs: ChangeSet) -> list[Finding]:
    return [f for f in cs.findings if f.id not in cs.skipped]


def _value(change: Change, side: str) -> str:
    value = change.before if side == "before" else change.after
    if value is not None:
        return value
    if side == "before":
        return "(unset)"
    return "(deleted)" if change.field == "delete" else "(removed)"


def cost_row(finding: Finding) -> tuple[float | None, float | None, float]:
    """(before, after, delta) USD/month; delta is always -monthly_savings."""
    before, after = finding.cost_before, finding.cost_after
    deletes = any(c.field == "delete" and c.after is None for c in finding.changes)
    if before is None and after is None and deletes:
        before, after = finding.monthly_savings, 0.0
    elif before is not None and after is None:
        after = before - finding.monthly_savings
    elif after is not None and before is None:
        before = after + finding.monthly_savings
    return before, after, -finding.monthly_savings


def _costs(findings: list[Finding]) -> tuple[list[dict[str, str]], dict[str, Any]]:
    rows, before_sum, after_sum, partial = [], 0.0, 0.0, 0
    for finding in findings:
        before, after, delta = cost_row(finding)
        if before is None or after is None:
            partial += 1
        else:
            before_sum, after_sum = before_sum + before, after_sum + after
        rows.append({"target": str(finding.target), "delta": signed_usd(delta),
                     "before": usd(before) if before is not None else "n/a",
                     "after": usd(after) if after is not None else "n/a"})
    known = partial < len(rows)
    total = {"before": usd(before_sum) if known else "n/a", "after": usd(after_sum) if known else "n/a",
             "partial": partial if known else 0,
             "delta": signed_usd(-sum(f.monthly_savings for f in findings))}
    return rows, total


def _notes(findings: list[Finding], decisions: dict[str, Decision]) -> list[dict[str, str]]:
    """Decision reasons, merged when the same reason applies to several findings."""
    merged: dict[tuple[str, str, str], list[str]] = {}
    for finding in findings:
        decision = decisions.get(finding.id)
        for reason in decision.reasons if decision else []:
            merged.setdefault((reason.rule, reason.verdict.value, reason.message), []).append(str(finding.target))
    notes = []
    for (rule, verdict, message), targets in merged.items():
        scope = "all changes" if len(targets) == len(findings) and len(findings) > 1 else ", ".join(
            f"`{t}`" for t in targets[:5]) + (f" and {len(targets) - 5} more" if len(targets) > 5 else "")
        notes.append({"rule": rule, "verdict": verdict, "scope": scope, "message": scrub(message)})
    return notes


def _edit_notes(findings: list[Finding], notes: dict[str, list[str]]) -> list[dict[str, str]]:
    """Where the values live, once per target and note (CPU and memory findings of one container share them)."""
    seen: dict[tuple[str, str], None] = {}
    for finding in findings:
        for note in notes.get(finding.id, []):
            seen.setdefault((str(finding.target), scrub(note)), None)
    return [{"target": target, "note": note} for target, note in seen]


def _view(cs: ChangeSet, *, cluster: str, generated_at: datetime, dry_run: bool) -> dict[str, Any]:
    findings = _shown(cs)
    costs, total = _costs(findings)
    by_id = {f.id: f for f in cs.findings}
    evidence = []
    for finding in findings:
        summary, details = evidence_lines(finding)
        evidence.append({"target": str(finding.target), "title": finding.title, "summary": summary,
                         "details": details})
    lowest = min((f.confidence for f in findings), default=0.0)
    highest = max((f.risk for f in findings), default=0.0)
    stamp = generated_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if generated_at.tzinfo \
        else generated_at.strftime("%Y-%m-%d %H:%M")
    return {
        "id": cs.id, "branch": cs.branch, "title": scrub(edited_title(cs)), "cluster": scrub(cluster),
        "generated_at": stamp, "dry_run": dry_run, "finding_count": len(findings),
        "marker": marker_for(cs), "fingerprint": changeset_fingerprint(cs), "reopen_promise": REOPEN_PROMISE,
        "savings_sentence": _savings_sentence(cs.monthly_savings),
        "changes": [{"target": str(f.target), "field": c.field, "before": _value(c, "before"),
                     "after": _value(c, "after")} for f in findings for c in f.changes],
        "costs": costs, "total": total,
        "scores": [{"target": str(f.target), "confidence": confidence_text(f.confidence),
                    "risk": risk_text(f.risk), "savings": usd(f.monthly_savings)} for f in findings],
        "confidence_summary": (f"Lowest confidence {confidence_text(lowest)}, highest risk {risk_text(highest)}."
                               if findings else "No changes."),
        "evidence": evidence, "notes": _notes(findings, cs.decisions or {}),
        "edit_notes": _edit_notes(findings, cs.notes),
        "skipped": [{"target": str(by_id[i].target) if i in by_id else i, "reason": scrub(r)}
                    for i, r in sorted(cs.skipped.items(), key=lambda kv: str(by_id[kv[0]].target)
                                       if kv[0] in by_id else kv[0])],
        "proof": [scrub(line) for line in cs.proof],
        "changes_omitted": 0, "costs_omitted": 0, "scores_omitted": 0, "evidence_omitted": 0,
    }


def _limited(view: dict[str, Any], *, evidence: int, rows: int) -> dict[str, Any]:
    limited = dict(view)
    limited["evidence"] = view["evidence"][:evidence]
    limited["evidence_omitted"] = len(view["evidence"]) - len(limited["evidence"])
    for key in ("changes", "costs", "scores"):
        limited[key] = view[key][:rows]
        limited[f"{key}_omitted"] = len(view[key]) - len(limited[key])
    return limited


def _largest_fitting(render: Any, upper: int) -> int | None:
    """Largest n in [0, upper] with len(render(n)) <= MAX_BODY_CHARS (length grows with n)."""
    if len(render(0)) > MAX_BODY_CHARS:
        return None
    low, high = 0, upper
    while low < high:
        middle = (low + high + 1) // 2
        if len(render(middle)) <= MAX_BODY_CHARS:
            low = middle
        else:
            high = middle - 1
    return low


def render_body(cs: ChangeSet, *, cluster: str, generated_at: datetime, dry_run: bool = False) -> str:
    """The PR body (markdown), at most MAX_BODY_CHARS characters."""
    template = _environment().get_template("pr_body.md.j2")
    view = _view(cs, cluster=cluster, generated_at=generated_at, dry_run=dry_run)
    rows = max(len(view["changes"]), len(view["costs"]))
    body = template.render(**view)
    if len(body) <= MAX_BODY_CHARS:
        return body
    fits = _largest_fitting(lambda n: template.render(**_limited(view, evidence=n, rows=rows)), len(view["evidence"]))
    if fits is not None:
        return template.render(**_limited(view, evidence=fits, rows=rows))
    fits = _largest_fitting(lambda n: template.render(**_limited(view, evidence=0, rows=n)), rows)
    if fits is not None:
        return template.render(**_limited(view, evidence=0, rows=fits))
    note = "\n\n_(truncated to GitHub's body size limit)_\n"
    return body[:MAX_BODY_CHARS - len(note)] + note


def render_title(cs: ChangeSet) -> str:
    """'finops: <change set title> (saves $X/month)', at most 256 characters."""
    text = _environment().get_template("pr_title.j2").render(
        title=scrub(edited_title(cs)), savings_phrase=savings_phrase(cs.monthly_savings)).strip()
    text = " ".join(text.split())
    return text if len(text) <= MAX_TITLE_CHARS else text[:MAX_TITLE_CHARS - 1] + "…"


def render_commit_message(cs: ChangeSet) -> str:
    """Subject (<= 72 characters), the changes one per line, and Change-Set / Fingerprint trailers."""
    view = _view(cs, cluster="", generated_at=datetime(1970, 1, 1, tzinfo=timezone.utc), dry_run=False)
    subject = " ".join(scrub(edited_title(cs)).split())
    if len(subject) > 64:
        subject = subject[:63] + "…"
    if subject[:2] != subject[:2].upper():      # "Right-size" -> "right-size", but keep "CPU ..."
        subject = subject[:1].lower() + subject[1:]
    text = _environment().get_template("commit_message.j2").render(subject=subject, **{
        k: view[k] for k in ("savings_sentence", "changes", "edit_notes", "skipped", "id", "fingerprint")})
    return text.rstrip() + "\n"

