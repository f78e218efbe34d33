"""Turn a finding's evidence dict into lines a reviewer reads (used by :mod:`.render`).

Right-sizing evidence (see ``detectors/sizing.py``) gets a curated summary:
usage percentiles in the finding's unit (millicores / Mi / Gi), coverage and
history, sizing formula, replicas and HPA reasoning, OOM kills, restarts and
throttling, cost before/after. Every other key is listed under "details" with
a readable label and value, in sorted order (deterministic). Keys that look
like credentials are dropped, and every string is scrubbed of token-like text.
"""
from __future__ import annotations

import math
import re
from typing import Any

from ..models import Finding
from ..money import usd
from ..units import format_cpu, human_bytes
from ..scrub import scrub_secrets

_SECRET_KEY = re.compile(r"(?i)(token|secret|password|passwd|credential|api[_-]?key|private[_-]?key|authorization)")
_PERCENTILE_KEY = re.compile(r"^p(\d{1,2})$")      # a usage percentile in the evidence, e.g. "p95", "p97"
_QUANTITY_KEYS = {"max", "mean", "std", "current_request", "current_limit",
                  "effective_request", "new_request", "new_limit"}
_PERCENT_KEYS = {"coverage", "throttled_ratio", "peak_to_new_limit", "volatility_cv"}
_SHOWN = {"workload", "container", "unit", "samples", "expected_samples", "history_hours", "history_days",
          "max", "formula", "percentile", "headroom_percent", "replicas", "replicas_basis", "hpa", "oom_kills",
          "restarts", "throttled_ratio", "coverage",
          "under_requested_reasons", "oom_killed", "last_terminated_reason", "decided_by"}
# Shown in the summary lines (or repeating them), so not listed again under details.
_REDUNDANT = {"savings_formula", "limit_policy", "new_request", "new_limit", "current_request", "current_limit",
              "effective_request", "direction", "volatility_cv"}
MAX_LIST_ITEMS = 20
MAX_SUB_ITEMS = 10
MAX_TEXT = 300


def scrub(text: str) -> str:
    """Remove anything that looks like a credential from free text."""
    return scrub_secrets(text)


def label(key: str) -> str:
    """'history_days' -> 'History days'; names that are data (hosts, ids) stay as written."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", key):
        return scrub(key)
    words = key.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def quantity(value: Any, unit: str | None) -> str:
    """A usage/request number in the finding's unit: cores -> '250m', bytes -> '512Mi'."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        return plain(value)
    if unit == "cores":
        return format_cpu(max(value, 0.0)) if value >= 0.001 or value == 0 else f"{value * 1000:.2f}m"
    if unit == "bytes":
        return human_bytes(float(value))
    return plain(value)


def plain(value: Any, key: str = "") -> str:
    """Generic readable text for an evidence value."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and ("memory" in key or key.endswith("_bytes")) and value >= 2**20:
        return human_bytes(float(value))
    if isinstance(value, float):
        if key in _PERCENT_KEYS or key.endswith("_ratio"):
            return f"{value * 100:.1f}%"
        if key.startswith("rate_"):
            return f"${value:.6g}"
        if "cost" in key or "savings" in key or "price" in key:
            return usd(value)
        return f"{value:.4g}"
    if isinstance(value, dict):
        parts = [f"{label(str(k))}: {plain(v, str(k))}" for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))
                 if v is not None and not _SECRET_KEY.search(str(k))]
        return "; ".join(parts) or "none"
    if isinstance(value, (list, tuple, set)):
        items = [plain(v) for v in (sorted(value, key=str) if isinstance(value, set) else value)]
        more = len(items) - MAX_LIST_ITEMS
        text = ", ".join(items[:MAX_LIST_ITEMS])
        return f"{text} (+{more} more)" if more > 0 else (text or "none")
    text = scrub(str(value))
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"


def _usage_line(ev: dict[str, Any], unit: str | None) -> str | None:
    percentiles = sorted((int(m.group(1)), k) for k in ev if (m := _PERCENTILE_KEY.match(k)))
    points = [(k, ev[k]) for k in [k for _, k in percentiles] + ["max"] if isinstance(ev.get(k), (int, float))]
    if not points:
        return None
    per = " per replica" if ev.get("replicas") is not None else ""
    text = " · ".join(f"{k} {quantity(v, unit)}" for k, v in points)
    window = []
    if isinstance(ev.get("history_days"), (int, float)):
        window.append(f"{ev['history_days']:.1f} days")
    if isinstance(ev.get("coverage"), (int, float)):
        cover = f"{ev['coverage'] * 100:.0f}% coverage"
        if ev.get("samples") is not None and ev.get("expected_samples"):
            cover += f" ({ev['samples']}/{ev['expected_samples']} samples)"
        window.append(cover)
    suffix = f" over {', '.join(window)}" if window else ""
    return f"Usage{per}{suffix}: {text}"


def _sizing_line(ev: dict[str, Any], unit: str | None) -> str | None:
    if not ev.get("formula"):
        return None
    line = f"Sizing: {plain(ev['formula'])}"
    parts = []
    for what, old_key, new_key in (("request", "current_request", "new_request"), ("limit", "current_limit", "new_limit")):
        if ev.get(new_key) is None:
            continue
        was = f"{quantity(ev[old_key], unit)} -> " if ev.get(old_key) is not None else ""
        parts.append(f"{what} {was}{quantity(ev[new_key], unit)}")
    if parts:
        line += " gives " + ", ".join(parts)
    if ev.get("limit_policy") and ev.get("new_limit") is not None:
        line += f" (limit policy {plain(ev['limit_policy'])})"
    if ev.get("decided_by"):
        line += f"; decided by the {plain(ev['decided_by'])} rule"
    return line


def _replicas_line(ev: dict[str, Any]) -> str | None:
    if ev.get("replicas") is None and not ev.get("hpa"):
        return None
    line = f"Replicas: {ev.get('replicas')}"
    if ev.get("replicas_basis"):
        line += f" ({plain(ev['replicas_basis'])})"
    hpa = ev.get("hpa")
    if isinstance(hpa, dict):
        targets = [f"{name} {hpa[k]}%" for name, k in (("CPU", "target_cpu_utilization"),
                                                        ("memory", "target_memory_utilization")) if hpa.get(k)]
        line += (f"; HPA {plain(hpa.get('name'))} scales {hpa.get('min_replicas')}-{hpa.get('max_replicas')} "
                 f"replicas on {', '.join(targets) or 'custom metrics'}")
    return line


def _safety_line(ev: dict[str, Any]) -> str | None:
    parts = []
    if ev.get("oom_kills") is not None:
        parts.append(f"{ev['oom_kills']} OOM kills")
    if ev.get("restarts") is not None:
        parts.append(f"{ev['restarts']} restarts")
    if isinstance(ev.get("throttled_ratio"), (int, float)):
        parts.append(f"CPU throttled in {ev['throttled_ratio'] * 100:.1f}% of CFS periods")
    if ev.get("last_terminated_reason"):
        parts.append(f"last terminated: {plain(ev['last_terminated_reason'])}")
    reasons = ev.get("under_requested_reasons")
    if reasons:
        parts.append(f"under-requested: {plain(reasons)}")
    return ("Stability: " + ", ".join(parts)) if parts else None


def _cost_line(finding: Finding, ev: dict[str, Any]) -> str | None:
    before, after = finding.cost_before, finding.cost_after
    if before is None or after is None:
        return None
    formula = f" ({plain(ev['savings_formula'])})" if ev.get("savings_formula") else ""
    return f"Cost: {usd(before)} -> {usd(after)} per month{formula}"


def evidence_lines(finding: Finding) -> tuple[list[str], list[dict[str, Any]]]:
    """(summary lines, details) for one finding; no secrets, deterministic order.

    Each detail is ``{"text": str, "sub": [str]}``; sub are sub-bullets.
    """
    ev: dict[str, Any] = {str(k): v for k, v in finding.evidence.items() if not _SECRET_KEY.search(str(k))}
    unit_value = ev.get("unit")
    unit = unit_value if isinstance(unit_value, str) else None
    summary = [line for line in (_usage_line(ev, unit), _sizing_line(ev, unit), _replicas_line(ev),
                                 _safety_line(ev), _cost_line(finding, ev)) if line]
    summary += [f"Note: {plain(note)}" for note in finding.notes]
    shown = _SHOWN | _REDUNDANT if summary else set()
    details = []
    for key in sorted(ev):
        if (key in shown or (summary and _PERCENTILE_KEY.match(key))) or ev[key] is None:
            continue
        value = quantity(ev[key], unit) if key in _QUANTITY_KEYS or _PERCENTILE_KEY.match(key) else None
        details.append({"text": f"{label(key)}: {value}", "sub": []} if value is not None else detail(key, ev[key]))
    return summary, details


def _nested(value: Any) -> bool:
    if isinstance(value, dict):
        return any(isinstance(v, (dict, list, tuple)) for v in value.values()) or len(value) > 6
    if isinstance(value, (list, tuple)):
        return any(isinstance(v, (dict, list, tuple)) for v in value)
    return False


def detail(key: str, value: Any) -> dict[str, Any]:
    """One details entry: a line, plus sub-items for lists of records and nested mappings."""
    if not _nested(value):
        return {"text": f"{label(key)}: {plain(value, key)}", "sub": []}
    if isinstance(value, dict):
        entries = [f"{label(str(k))}: {plain(v, str(k))}" for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))
                   if v is not None and not _SECRET_KEY.search(str(k))]
    else:
        entries = [plain(v) for v in value]
    more = len(entries) - MAX_SUB_ITEMS
    items = entries[:MAX_SUB_ITEMS] + ([f"... and {more} more"] if more > 0 else [])
    return {"text": f"{label(key)} ({len(entries)}):", "sub": items}
