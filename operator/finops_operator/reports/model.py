"""The typed report: headline figures and sections of tables, charts and lines (what every renderer reads).

A :class:`Report` is plain data; :mod:`.html`, :mod:`.jsonout` and :mod:`.markdown` only lay it out.
Money is USD per month unless a column or chart says otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PERIODS = ("weekly", "monthly")
CHART_KINDS = ("bar", "line", "stacked")


@dataclass(frozen=True, slots=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]          # str | int | float | None cells, one per column
    money: tuple[str, ...] = ()                 # the columns holding USD amounts (formatted by the renderers)


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: tuple[float | None, ...]            # one per label; None: no data point


@dataclass(frozen=True, slots=True)
class Chart:
    kind: str                                   # bar | line | stacked (CHART_KINDS)
    title: str
    labels: tuple[str, ...]
    series: tuple[Series, ...]
    unit: str = "USD"                           # USD | count | days | score

    @property
    def points(self) -> int:
        """Data points drawn: one SVG element each (bars, line points, stacked segments)."""
        return sum(1 for s in self.series for v in s.values if v is not None)


@dataclass(frozen=True, slots=True)
class Section:
    id: str                                     # stable: headline, activity, breakdowns, top-open, trends, ...
    title: str
    lines: tuple[str, ...] = ()                 # sentences, shown before the charts and tables
    charts: tuple[Chart, ...] = ()
    tables: tuple[tuple[str, Table], ...] = ()  # (caption, table)
    data: dict[str, Any] = field(default_factory=dict)   # the section's figures for JSON


@dataclass(frozen=True, slots=True)
class Report:
    period: str                                 # weekly | monthly
    start: datetime                             # the period, UTC, end exclusive
    end: datetime
    persona: str
    source: str                                 # what the data came from ("the demo cluster (simulated) ...")
    headline: dict[str, Any]                    # the headline figures (see reports/__init__.py for the keys)
    sections: tuple[Section, ...]
    notes: tuple[str, ...] = ()                 # e.g. "the history is simulated (demo)"

    def section(self, section_id: str) -> Section | None:
        return next((s for s in self.sections if s.id == section_id), None)

    @property
    def title(self) -> str:
        return f"FinOps {self.period} report, {self.start:%Y-%m-%d} to {self.end:%Y-%m-%d}"
