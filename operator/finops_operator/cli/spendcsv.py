"""The daily spend CSV that `finops forecast` (and `finops anomalies`) read: ``date,cost``, one row a day.

    date,cost
    2024-06-01,1234.50
    2024-06-02,
    2024-06-04,1302.10

A header row is required. Dates are ISO (YYYY-MM-DD), in any order; a date given twice is refused (one row
a day: add the costs up first). An empty cost and a date left out both mean "no data that day" (NaN in
the :class:`SpendSeries`), never zero. Costs are plain numbers in USD, 0 or more. Every refusal names the
line and says how to fix it.
"""
from __future__ import annotations

import csv
import io
import math
from datetime import date
from pathlib import Path

from .. import safeio
from ..errors import ConfigError
from ..models.spend import SpendSeries

MAX_CSV_BYTES = 16 * 1024 * 1024      # 100 years of days is ~1 MB
HEADER = ("date", "cost")


def read_spend_csv(path: Path) -> SpendSeries:
    return parse_spend_csv(safeio.read_user_file(path, MAX_CSV_BYTES), str(path))


def parse_spend_csv(text: str, source: str) -> SpendSeries:
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if header is None or tuple(h.strip().lower() for h in header) != HEADER:
        got = ",".join(header) if header else "an empty file"
        raise ConfigError(f"the first line must be the header 'date,cost', got {got!r}; add it (one row a day "
                          f"after it, e.g. 2024-06-01,1234.50)", source=source, field="line 1")
    pairs: list[tuple[date, float]] = []
    seen: dict[date, int] = {}
    for index, row in enumerate(rows, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        day, cost = _row(row, f"line {index}", source)
        if day in seen:
            raise ConfigError(f"{day.isoformat()} is also on line {seen[day]}; give one row a day (add the costs "
                              f"of that day up)", source=source, field=f"line {index}")
        seen[day] = index
        pairs.append((day, cost))
    if not pairs:
        raise ConfigError("no rows after the header; add one row a day, e.g. 2024-06-01,1234.50", source=source)
    return SpendSeries.from_pairs(pairs)


def _row(row: list[str], where: str, source: str) -> tuple[date, float]:
    if len(row) != 2:
        raise ConfigError(f"expected 2 columns (date,cost), got {len(row)}: {','.join(row)!r}; quote nothing, use "
                          f"a dot for decimals and no thousands separator", source=source, field=where)
    text_day, text_cost = row[0].strip(), row[1].strip()
    try:
        day = date.fromisoformat(text_day)
    except ValueError:
        raise ConfigError(f"date {text_day!r} is not YYYY-MM-DD; write it like 2024-06-01", source=source,
                          field=where) from None
    if not text_cost:
        return day, math.nan
    try:
        cost = float(text_cost)
    except ValueError:
        raise ConfigError(f"cost {text_cost!r} is not a number; write USD like 1234.50 (no currency sign or "
                          f"thousands separator), or leave it empty for a day without data", source=source,
                          field=where) from None
    if not math.isfinite(cost) or cost < 0:
        raise ConfigError(f"cost {text_cost} on {day.isoformat()} must be a finite number, 0 or more (net credits "
                          f"and refunds out of the series)", source=source, field=where)
    return day, cost
