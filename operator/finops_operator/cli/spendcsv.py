"""Read a daily spend CSV (``date,cost``, one row a day) into a :class:`SpendSeries` for `finops anomalies`
(and any other command that reads daily cost).

    date,cost
    2026-01-01,1234.50
    2026-01-02,                # an empty cost: no data that day (NaN), like a missing row

The header is required (columns in any order, other columns ignored); dates are ISO (YYYY-MM-DD);
costs are finite numbers, zero or more; a date appears once. Every bad row is a ConfigError naming
the file, the line and the fix. Bounded: at most ``MAX_SPEND_CSV_BYTES`` and ``MAX_SPAN_DAYS``.
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

MAX_SPEND_CSV_BYTES = 8 * 1024 * 1024     # ten years of days is about 200 KiB
MAX_SPAN_DAYS = 3660                      # ten years: more is a typo in a date, and would take long to scan


def read_spend_csv(path: Path) -> SpendSeries:
    source = str(path)
    text = safeio.read_user_file(path, MAX_SPEND_CSV_BYTES)
    rows = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(rows, [])]
    if "date" not in header or "cost" not in header:
        raise ConfigError(f"the first line must be a header with the columns date and cost (found "
                          f"{','.join(header) or 'nothing'}); add the line 'date,cost'", source=source, field="line 1")
    at_date, at_cost = header.index("date"), header.index("cost")
    seen: dict[date, int] = {}
    pairs: list[tuple[date, float]] = []
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        day, cost = _row(row, at_date, at_cost, source, f"line {line}")
        if day in seen:
            raise ConfigError(f"{day} is already on line {seen[day]}; give each day one row (sum them)",
                              source=source, field=f"line {line}")
        seen[day] = line
        pairs.append((day, cost))
    if not pairs:
        raise ConfigError("no rows after the header; add one 'YYYY-MM-DD,cost' row a day", source=source)
    first, last = min(seen), max(seen)
    if (last - first).days + 1 > MAX_SPAN_DAYS:
        raise ConfigError(f"the dates span {(last - first).days + 1:,} days ({first} to {last}), over "
                          f"{MAX_SPAN_DAYS:,}; check the dates or keep the last ten years", source=source)
    return SpendSeries.from_pairs(pairs)


def _row(row: list[str], at_date: int, at_cost: int, source: str, where: str) -> tuple[date, float]:
    if len(row) <= max(at_date, at_cost):
        raise ConfigError(f"has {len(row)} column(s), the header has more; write 'YYYY-MM-DD,cost'",
                          source=source, field=where)
    text_date, text_cost = row[at_date].strip(), row[at_cost].strip()
    try:
        day = date.fromisoformat(text_date)
    except ValueError:
        raise ConfigError(f"date {text_date!r} is not a day; write it as YYYY-MM-DD (e.g. 2026-01-31)",
                          source=source, field=where) from None
    if not text_cost:
        return day, math.nan
    try:
        cost = float(text_cost)
    except ValueError:
        raise ConfigError(f"cost {text_cost!r} is not a number; write USD as a plain number (e.g. 1234.50, no "
                          "currency sign or thousands separator)", source=source, field=where) from None
    if not math.isfinite(cost) or cost < 0:
        raise ConfigError(f"cost {text_cost!r} must be a finite number, zero or more (leave it empty for a day "
                          "without data)", source=source, field=where)
    return day, cost
