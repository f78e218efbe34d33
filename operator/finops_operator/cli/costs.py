"""`finops costs`: a cost explorer on the command line (table), for scripts (JSON) and spreadsheets (CSV).

    finops costs [--snapshot FILE | --kubeconfig [PATH] --prometheus URL] [--policy FILE]
                 [--by namespace|team|workload|node|service|category|label:KEY]
                 [--window 7d|30d|month-to-date|FROM..TO] [--top N] [--output table|json|csv]

Without ``--snapshot`` or ``--kubeconfig`` it reads the demo's cluster (the bundled
scenario through the simulator, as ``finops demo`` does). Relative windows end where
the data ends (a snapshot) or now (a live cluster); a window beyond the data is
stated in the output, never silently cut.

Output: the table (rich), the ``finops.costs/v1`` JSON document (schema in
:mod:`finops_operator.costreport`), or CSV (RFC 4180: comma separated, CRLF line
ends, quoted where needed, a header row) with the columns
``label,kind,key,cost,cpu_cost,memory_cost,idle_share,shared_share,percent,charges``
(money in USD as decimal strings, cents; the same rows as the table and the JSON).
"""
from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Callable

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..costreport import CostReport, CostWindow, cost_report, fit_window, parse_by, parse_window, report_to_json
from ..errors import ConfigError
from ..models.costs import Allocation, Bill, hour_starts
from ..money import decimal_string, signed_usd, usd
from ..settings import PolicySettings
from .common import DEMO_SCENARIO, load_policy_file, print_json, progress

CSV_COLUMNS = ("label", "kind", "key", "cost", "cpu_cost", "memory_cost", "idle_share", "shared_share", "percent",
               "charges")
_KIND_STYLE = {"idle": "yellow", "shared": "cyan", "unallocated": "red", "other": "italic"}


# --------------------------------------------------------------------------- where the allocation comes from


@dataclass
class CostData:
    """One cluster's data: where relative windows end, what it covers, and how to allocate a window of it."""

    description: str
    now: datetime                                   # relative windows (7d, month-to-date) end here
    span: tuple[datetime, datetime] | None          # what the data covers; None: known only once read (live)
    allocate: Callable[[CostWindow], tuple[Allocation, Bill | None]]


def allocate_offline(data: Any, settings: PolicySettings, window: CostWindow, *, policy: Path | None = None,
                     cur: list[Path] | None = None) -> tuple[Allocation, Bill | None]:
    """A snapshot or a simulation: its hourly usage, the region's prices (with the policy's ``spec.pricing``)
    and its bill: the CUR 2.0 files given (``--cur``, read through DuckDB with the one CUR SQL), else the
    bill the simulator writes for it."""
    from ..costrun import allocate_window
    from ..simulator import simulate_bill, usage_hours
    from .common import load_prices
    state = data.state
    book = load_prices(policy, state.region)
    usage = usage_hours(data, window.start, window.end)
    bill = read_cur_files(cur, state, window) if cur else simulate_bill(data, book)
    return allocate_window(usage, state.nodes, book, bill, settings.allocation), bill


def read_cur_files(files: list[Path], state: Any, window: CostWindow) -> Bill:
    """Local CUR 2.0 Parquet files (all in one directory: DuckDB may read nothing else) -> the cluster's bill."""
    from ..cur.sql import CurScope
    from ..sources.curduck import query_cur_files
    folders = {f.resolve().parent for f in files}
    if len(folders) != 1:
        raise ConfigError("--cur files must all be in one directory (DuckDB is allowed to read only there)",
                          field="--cur")
    ids = [n.instance_id for n in state.nodes if n.instance_id] + \
        [v.backing_volume_id or v.id for v in state.volumes]
    hours = hour_starts(window.start, window.end)          # whole hours, as allocation counts them
    scope = CurScope.for_cluster(state.cluster, datetime.fromtimestamp(int(hours[0]), UTC),
                                 datetime.fromtimestamp(int(hours[-1]) + 3600, UTC), resource_ids=ids)
    return query_cur_files([f.resolve() for f in files], scope, cache_dir=folders.pop())


def allocate_live(args: argparse.Namespace, settings: PolicySettings,
                  window: CostWindow) -> tuple[Allocation, Bill | None]:
    """A live cluster: see :func:`.live.read_live_costs`."""
    from .live import read_live_costs
    return read_live_costs(args, settings, window.start, window.end)


def offline_data(snapshot: Path | None, settings: PolicySettings, console: Console, *, policy: Path | None = None,
                 cur: list[Path] | None = None) -> CostData:
    """``--snapshot FILE``, or the demo's bundled scenario through the simulator."""
    with progress(console) as bar:
        if snapshot is None:
            from ..simulator import load_scenario, simulate
            bar.add_task("Simulating the demo cluster", total=None)
            data: Any = simulate(load_scenario(DEMO_SCENARIO))
            name = "the demo cluster"
        else:
            from ..snapshot import load_snapshot
            bar.add_task(f"Loading {snapshot.name}", total=None)
            data = load_snapshot(snapshot)
            name = str(snapshot)
    window = data.state.window
    return CostData(description=f"{name} ({data.state.cluster}, {data.state.region})", now=window.end,
                    span=(window.start, window.end),
                    allocate=lambda w: allocate_offline(data, settings, w, policy=policy, cur=cur))


def live_data(args: argparse.Namespace, settings: PolicySettings) -> CostData:
    if not args.prometheus:
        raise ConfigError("a live cluster needs --prometheus URL (where the usage history is), e.g. "
                          "--prometheus http://localhost:9090", field="--prometheus")
    from .live import utcnow
    return CostData(description=f"the live cluster of {args.kubeconfig or 'the default kubeconfig'}", now=utcnow(),
                    span=None, allocate=lambda w: allocate_live(args, settings, w))


# --------------------------------------------------------------------------- the command


def run_costs(args: argparse.Namespace, console: Console, *, data: CostData | None = None) -> int:
    by = parse_by(args.by)
    parse_window(args.window, now=datetime.now(UTC))     # a bad --window fails before the data is read
    if args.prometheus and args.kubeconfig is None:
        raise ConfigError("--prometheus reads a live cluster; add --kubeconfig [PATH] (or drop --prometheus to read "
                          "a snapshot)", field="--prometheus")
    settings = load_policy_file(args.policy)
    if data is None:
        data = live_data(args, settings) if args.kubeconfig is not None else \
            offline_data(args.snapshot, settings, console, policy=args.policy, cur=args.cur)
    report = build_report(data, by=by, window_text=args.window, top=args.top)
    if args.output == "json":
        print_json(report_to_json(report))
    elif args.output == "csv":
        write_csv(report, sys.stdout)
    else:
        show_costs(console, report, source=data.description)
    return 0


def build_report(data: CostData, *, by: str, window_text: str, top: int | None) -> CostReport:
    """Window (fitted to the data, with a note when cut) -> allocation (the hook) -> CostReport."""
    window = parse_window(window_text, now=data.now)
    notes: list[str] = []
    if data.span is not None:
        window, notes = fit_window(window, *data.span)
    allocation, bill = data.allocate(window)
    return cost_report(allocation, by=by, top=top, window=window, bill=bill, notes=notes)


# --------------------------------------------------------------------------- CSV and table


def _percent_of(report: CostReport, cost: float) -> float:
    return 100.0 * cost / report.total if report.total else 0.0


def write_csv(report: CostReport, stream: IO[str]) -> None:
    """RFC 4180 (the csv module's default dialect: CRLF, minimal quoting), a header row, one line per row."""
    writer = csv.writer(stream, dialect="excel")
    writer.writerow(CSV_COLUMNS)
    for r in report.rows:
        writer.writerow([r.label, r.kind, r.key, decimal_string(r.cost), decimal_string(r.cpu_cost),
                         decimal_string(r.memory_cost), decimal_string(r.idle_share), decimal_string(r.shared_share),
                         f"{_percent_of(report, r.cost):.2f}", r.charges])


def _grouping_title(by: str) -> str:
    return f"Label {by.removeprefix('label:')}" if by.startswith("label:") else by.capitalize()


def heading(report: CostReport) -> str:
    w = report.window
    span = f"{w.start:%Y-%m-%d %H:%M} .. {w.end:%Y-%m-%d %H:%M} UTC"
    return f"[bold]Cost by {escape(report.by)}[/], {span}" + (f" (--window {escape(w.asked)})" if w.asked else "")


def costs_table(report: CostReport) -> Table:
    table = Table(header_style="bold")
    table.add_column(_grouping_title(report.by), overflow="fold")
    table.add_column("Cost", justify="right")
    table.add_column("$/hour", justify="right")
    table.add_column("CPU", justify="right")
    table.add_column("Memory", justify="right")
    shares = [(name, attr) for name, attr in (("Idle share", "idle_share"), ("Shared share", "shared_share"))
              if any(getattr(r, attr) for r in report.rows)]
    for name, _ in shares:
        table.add_column(name, justify="right")
    table.add_column("%", justify="right")
    for r in report.rows:
        style = _KIND_STYLE.get(r.kind)
        label = escape(r.label)
        table.add_row(f"[{style}]{label}[/]" if style else label, usd(r.cost), usd(report.per_hour(r.cost)),
                      usd(r.cpu_cost) if r.cpu_cost else "", usd(r.memory_cost) if r.memory_cost else "",
                      *(usd(getattr(r, attr)) for _, attr in shares), f"{_percent_of(report, r.cost):.1f}%")
    return table


def footer_lines(report: CostReport) -> list[str]:
    """Total, bill, residual; price sources; notes (plain text with rich markup, escaped)."""
    lines = [f"Total [bold]{usd(report.total)}[/] ({usd(report.per_hour(report.total))}/hour)"]
    if report.bill_total is None:
        lines[0] += "; no bill: prices only, the residual is unknown"
    else:
        percent = report.residual_percent
        lines[0] += (f"; bill {usd(report.bill_total)} ({escape(report.bill_source or 'source unknown')}); "
                     f"residual {signed_usd(report.residual or 0.0)}"
                     + (f" ({percent:.2f}% of the bill)" if percent is not None else ""))
    if report.price_sources:
        lines.append("Prices (share of node cost): "
                     + " · ".join(f"{s.source.value} {s.percent:.1f}%" for s in report.price_sources))
    lines.extend(f"[yellow]note:[/] {escape(note)}" for note in report.notes)
    return lines


def show_costs(console: Console, report: CostReport, *, source: str = "") -> None:
    if source:
        console.print(f"[dim]{escape(source)}[/]")
    console.print(heading(report), soft_wrap=True)
    console.print(costs_table(report))
    for line in footer_lines(report):
        console.print(line, soft_wrap=True)
