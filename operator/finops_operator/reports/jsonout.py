"""The report as JSON, schema ``finops.report/v1`` (stable: fields are only ever added). USD per month
unless said otherwise::

    {
      "schema": "finops.report/v1",
      "title": "FinOps weekly report, 2026-11-23 to 2026-11-30",
      "period": "weekly",                       # weekly | monthly
      "start": "2026-11-23T00:00:00+00:00",     # UTC, end exclusive
      "end": "2026-11-30T00:00:00+00:00",
      "persona": "cfo",
      "source": "the demo cluster (simulated history) ...",
      "notes": ["..."],
      "headline": {                             # Report.headline (see finops_operator.reports)
        "currency": "USD", "estimatedMonthly": 1200.0, "realizedMonthly": 300.0,
        "estimatedDetectedInPeriod": 80.0, "realizedInPeriod": 40.0,
        "gap": {"estimated": 1200.0, "realized": 300.0, "gap": 900.0, "notMerged": 700.0,
                "mergedNotVerified": 150.0, "verifiedBelowEstimate": 50.0},
        "period": {"detected": 3, "proposed": 2, "merged": 1, "verified": 1, "rejected": 0},
        "cumulative": {"detected": 30, "proposed": 12, "merged": 8, "verified": 5, "rejected": 2},
        "opportunities": 30
      },
      "sections": [{                            # only the sections whose data exists, in report order
        "id": "headline",                       # headline | activity | breakdowns | top-open | trends |
                                                # lead-time | recommendations | spend | budgets | forecast |
                                                # anomalies | health | insights
        "title": "...",
        "lines": ["..."],                       # sentences
        "data": {...},                          # the section's figures (keys per section id, camelCase)
        "charts": [{"kind": "bar", "title": "...", "unit": "USD", "labels": ["..."],
                    "series": [{"name": "...", "values": [1.0, null]}]}],
        "tables": [{"caption": "...", "columns": ["..."], "money": ["..."], "rows": [["...", 1.0]]}]
      }]
    }
"""
from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

from .model import Report, Section

SCHEMA = "finops.report/v1"


def render_json(report: Report) -> dict[str, Any]:
    return {"schema": SCHEMA, "title": report.title, "period": report.period, "start": report.start.isoformat(),
            "end": report.end.isoformat(), "persona": report.persona, "source": report.source,
            "notes": list(report.notes), "headline": _plain(report.headline),
            "sections": [_section(s) for s in report.sections]}


def _section(s: Section) -> dict[str, Any]:
    return {"id": s.id, "title": s.title, "lines": list(s.lines), "data": _plain(s.data),
            "charts": [{"kind": c.kind, "title": c.title, "unit": c.unit, "labels": list(c.labels),
                        "series": [{"name": x.name, "values": _plain(list(x.values))} for x in c.series]}
                       for c in s.charts],
            "tables": [{"caption": caption, "columns": list(t.columns), "money": list(t.money),
                        "rows": _plain([list(r) for r in t.rows])} for caption, t in s.tables]}


def _plain(value: Any) -> Any:
    """JSON-safe: dates as ISO, non-finite numbers as null, tuples as lists, numpy scalars as Python."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)
