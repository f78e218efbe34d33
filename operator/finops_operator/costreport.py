"""What people see of cost truth: an :class:`Allocation` grouped into rows, with its totals and sources.

    Allocation (+ Bill)  --cost_report(by, top, window)-->  CostReport  -->  table | JSON | CSV | gauges | demo

Pure: no I/O. ``finops costs``, the operator's gauges (:mod:`.metrics`) and ``finops
demo`` all read a :class:`CostReport`, so they group, rank and fold the same way.

Rules (each in one place):

* grouping: :meth:`Allocation.grouped` (models/costs.py): idle, shared and unallocated
  costs are rows of their own, never hidden inside a namespace;
* top N: the N largest rows with a key compete; the rest are summed into one
  ``other (k rows)`` row; the kind totals (``idle``, ``shared``, ``unallocated``
  with no key) are always shown;
* residual = bill total - allocated total (reported, never dropped); its percent is
  of the bill;
* price sources: each source's share of the node cost.

JSON (``finops costs --output json``, :func:`report_to_json`), schema ``finops.costs/v1``
(stable: fields are only ever added). Money is USD rounded to cents by :mod:`.money`::

    {
      "schema": "finops.costs/v1",
      "by": "namespace",                     # namespace|team|workload|node|service|category|label:KEY
      "window": {"asked": "30d",             # as given to --window
                 "start": "2024-06-01T00:00:00+00:00", "end": "...",   # what the costs cover (UTC)
                 "hours": 336.0},
      "currency": "USD",
      "rows": [{"label": "payments",         # what the table shows
                "kind": "allocated",         # allocated|idle|shared|unallocated|other
                "key": "payments",           # the grouping value ("" for a kind's total row)
                "cost": 123.45, "cpuCost": 80.0, "memoryCost": 43.45,
                "idleShare": 0.0,            # idle cost shared into the row (when the policy shares it)
                "sharedShare": 0.0,          # cluster-wide cost shared into the row
                "percent": 41.2,             # of the total (every row)
                "charges": 12}],             # charges summed (rows folded, for "other")
      "totals": {"allocated": 250.0, "idle": 40.0, "shared": 10.0, "unallocated": 0.0, "total": 300.0},
      "bill": {"source": "cur:duckdb",       # null without a bill (price book only)
               "total": 301.2, "residual": 1.2, "residualPercent": 0.4},
      "priceSources": [{"source": "list", "cost": 120.0, "percent": 60.0}],   # node cost by price source
      "notes": ["..."]                       # stated fallbacks: a window beyond the data, bill problems
    }
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from .errors import ConfigError
from .models.costs import ALLOCATED, CURRENCY, GROUPINGS, Allocation, Bill, ChargeKind, PriceSource
from .money import cents
from .units import parse_duration

SCHEMA = "finops.costs/v1"
KINDS = (ALLOCATED, ChargeKind.IDLE.value, ChargeKind.SHARED.value, ChargeKind.UNALLOCATED.value)
OTHER = "other"
WINDOW_FORMS = "7d, 30d (any duration: 12h, 2w), month-to-date, or FROM..TO in ISO dates (2024-06-01..2024-06-30)"
MAX_WINDOW = timedelta(days=400)


@dataclass(frozen=True, slots=True)
class CostWindow:
    """The span costs are reported for (UTC, end exclusive) and how it was asked for."""

    asked: str
    start: datetime
    end: datetime

    @property
    def hours(self) -> float:
        return (self.end - self.start) / timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class CostRow:
    label: str
    kind: str                  # allocated | idle | shared | unallocated | other
    key: str
    cost: float
    cpu_cost: float = 0.0
    memory_cost: float = 0.0
    idle_share: float = 0.0
    shared_share: float = 0.0
    charges: int = 0


@dataclass(frozen=True, slots=True)
class SourceShare:
    source: PriceSource
    cost: float
    percent: float


@dataclass(slots=True)
class CostReport:
    by: str
    window: CostWindow
    rows: list[CostRow]
    totals: dict[str, float]                   # by row kind (KINDS), plus "total"
    bill_total: float | None
    bill_source: str | None
    price_sources: list[SourceShare]
    currency: str = CURRENCY
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return self.totals["total"]

    @property
    def residual(self) -> float | None:
        return None if self.bill_total is None else self.bill_total - self.total

    @property
    def residual_percent(self) -> float | None:
        if self.bill_total is None or self.bill_total == 0:
            return None
        return 100.0 * (self.bill_total - self.total) / self.bill_total

    def per_hour(self, cost: float) -> float:
        return cost / self.window.hours if self.window.hours > 0 else 0.0


# --------------------------------------------------------------------------- parsing (CLI input)


def parse_by(text: str) -> str:
    """``--by``: one of GROUPINGS or ``label:KEY``."""
    if text in GROUPINGS or (text.startswith("label:") and re.fullmatch(r"label:[\w./-]{1,316}", text)):
        return text
    raise ConfigError(f"{text!r} is not a grouping; use one of {', '.join(GROUPINGS)} or label:KEY "
                      "(e.g. label:app.kubernetes.io/name)", field="--by")


def parse_window(text: str, *, now: datetime) -> CostWindow:
    """``--window`` relative to ``now`` (the end of the data, or the clock for a live cluster).

    A duration ends at ``now``; ``month-to-date`` starts at 00:00 UTC on the 1st of ``now``'s
    month; ``FROM..TO`` are ISO dates (TO included: it ends at the next midnight) or ISO
    times (TO excluded), UTC unless they say otherwise.
    """
    text = text.strip()
    if text == "month-to-date":
        first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        if first >= now:
            raise ConfigError(f"month-to-date is empty at {_when(now)} (the month has just begun); use e.g. 7d",
                              field="--window")
        return CostWindow(text, first, now)
    if ".." in text:
        first, _, last = text.partition("..")
        start, end = _instant(first, text, end=False), _instant(last, text, end=True)
        if end <= start:
            raise ConfigError(f"{text!r} ends before it starts; write FROM..TO with FROM earlier, "
                              "e.g. 2024-06-01..2024-06-30", field="--window")
        if end - start > MAX_WINDOW:
            raise ConfigError(f"{text!r} is longer than {MAX_WINDOW.days} days", field="--window")
        return CostWindow(text, start, end)
    try:
        length = parse_duration(text, maximum=MAX_WINDOW, field="--window")
    except ConfigError as exc:
        raise ConfigError(f"{text!r} is not a window; accepted: {WINDOW_FORMS} (as a duration: {exc.message})",
                          field="--window") from None
    return CostWindow(text, now - length, now)


def _instant(text: str, whole: str, *, end: bool) -> datetime:
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = date.fromisoformat(text)
            value = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return value + timedelta(days=1) if end else value
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{text!r} in {whole!r} is not an ISO date; accepted: {WINDOW_FORMS}",
                          field="--window") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def fit_window(window: CostWindow, data_start: datetime, data_end: datetime) -> tuple[CostWindow, list[str]]:
    """The part of ``window`` the data covers, and a note when that is less than asked (never a silent cut)."""
    start, end = max(window.start, data_start), min(window.end, data_end)
    covered = f"{_when(data_start)} .. {_when(data_end)}"
    if end <= start:
        raise ConfigError(f"{window.asked!r} ({_when(window.start)} .. {_when(window.end)}) is outside the data, "
                          f"which covers {covered}; choose a window inside it", field="--window")
    fitted = CostWindow(window.asked, start, end)
    if start - window.start < timedelta(hours=1) and window.end - end < timedelta(hours=1):
        return fitted, []          # inside the hour: allocation counts whole hours, nothing is missing
    return fitted, [f"--window {window.asked} asks for {_when(window.start)} .. {_when(window.end)}, but the data "
                    f"covers {covered}: costs are for {_when(start)} .. {_when(end)} "
                    f"({fitted.hours / 24:.1f} of {(window.end - window.start) / timedelta(days=1):.1f} days)"]


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


# --------------------------------------------------------------------------- the report


def cost_report(allocation: Allocation, *, by: str = "namespace", top: int | None = None,
                window: CostWindow | None = None, bill: Bill | None = None,
                notes: list[str] | tuple[str, ...] = ()) -> CostReport:
    """Group ``allocation`` by ``by``, keep the ``top`` largest rows, and total it against the bill.

    ``window`` says how the span was asked for (default: the allocation's own span);
    ``bill`` gives the bill's source and its stated problems (its total is the allocation's
    ``bill_total``, the one the allocation reconciled against).
    """
    parse_by(by)
    if top is not None and top < 1:
        raise ConfigError(f"--top {top} must be at least 1", field="--top")
    window = window or CostWindow("", allocation.start, allocation.end)
    rows = [_row(by, kind, key, charges) for (kind, key), charges in allocation.grouped(by).items()]
    totals = {kind: sum(r.cost for r in rows if r.kind == kind) for kind in KINDS}
    totals["total"] = sum(totals.values())
    return CostReport(by=by, window=window, rows=_ranked(rows, top, totals["total"]), totals=totals,
                      bill_total=allocation.bill_total, bill_source=bill.source if bill else None,
                      price_sources=_sources(allocation), currency=bill.currency if bill else CURRENCY,
                      notes=[*notes, *allocation.notes, *(bill.problems if bill else [])])


def _row(by: str, kind: str, key: str, charges: list) -> CostRow:
    label = (key or f"(no {by})") if kind == ALLOCATED else f"{kind} · {key}" if key else kind
    return CostRow(label=label, kind=kind, key=key, cost=sum(c.cost for c in charges),
                   cpu_cost=sum(c.cpu_cost for c in charges), memory_cost=sum(c.memory_cost for c in charges),
                   idle_share=sum(c.idle_cost for c in charges), shared_share=sum(c.shared_cost for c in charges),
                   charges=len(charges))


def _ranked(rows: list[CostRow], top: int | None, total: float) -> list[CostRow]:
    """Keyed rows by cost (largest first), the rest folded into ``other (k rows)``, then the kind totals."""
    keyed = sorted((r for r in rows if r.key or r.kind == ALLOCATED), key=lambda r: (-r.cost, r.label))
    totals = sorted((r for r in rows if not (r.key or r.kind == ALLOCATED)), key=lambda r: KINDS.index(r.kind))
    if top is None or len(keyed) <= top:
        return keyed + totals
    rest = keyed[top:]
    other = CostRow(label=f"{OTHER} ({len(rest)} rows)", kind=OTHER, key="", cost=sum(r.cost for r in rest),
                    cpu_cost=sum(r.cpu_cost for r in rest), memory_cost=sum(r.memory_cost for r in rest),
                    idle_share=sum(r.idle_share for r in rest), shared_share=sum(r.shared_share for r in rest),
                    charges=len(rest))
    return keyed[:top] + [other] + totals


def _sources(allocation: Allocation) -> list[SourceShare]:
    total = sum(v for v in allocation.price_sources.values() if v > 0)
    return [SourceShare(source, cost, 100.0 * cost / total if total else 0.0)
            for source in PriceSource if (cost := allocation.price_sources.get(source, 0.0)) > 0]


# --------------------------------------------------------------------------- JSON


def _money(amount: float | None) -> float | None:
    value = None if amount is None else cents(amount)
    return None if value is None else float(value)


def _percent(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 2)


def report_to_json(report: CostReport) -> dict[str, Any]:
    """The ``finops.costs/v1`` document (schema in this module's docstring)."""
    total = report.total
    return {
        "schema": SCHEMA,
        "by": report.by,
        "window": {"asked": report.window.asked, "start": report.window.start.isoformat(),
                   "end": report.window.end.isoformat(), "hours": round(report.window.hours, 3)},
        "currency": report.currency,
        "rows": [{"label": r.label, "kind": r.kind, "key": r.key, "cost": _money(r.cost),
                  "cpuCost": _money(r.cpu_cost), "memoryCost": _money(r.memory_cost),
                  "idleShare": _money(r.idle_share), "sharedShare": _money(r.shared_share),
                  "percent": _percent(100.0 * r.cost / total if total else 0.0), "charges": r.charges}
                 for r in report.rows],
        "totals": {kind: _money(value) for kind, value in report.totals.items()},
        "bill": {"source": report.bill_source, "total": _money(report.bill_total),
                 "residual": _money(report.residual), "residualPercent": _percent(report.residual_percent)},
        "priceSources": [{"source": s.source.value, "cost": _money(s.cost), "percent": _percent(s.percent)}
                         for s in report.price_sources],
        "notes": list(report.notes),
    }
