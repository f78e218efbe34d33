"""`finops simulate`: scenario -> snapshot file (+ OpenMetrics for promtool backfill, + the simulated bill)."""
from __future__ import annotations

import argparse

from rich.console import Console

from ..models.costs import CostCategory
from ..money import usd
from .common import DEMO_SCENARIO, progress


def run_simulate(args: argparse.Namespace, console: Console) -> int:
    from ..pricing.catalog import PriceBook
    from ..simulator import generate_scenario, load_scenario, simulate, simulate_bill, write_cost_explorer_json
    from ..simulator.openmetrics import write_openmetrics
    from ..snapshot import save_snapshot

    bill_out = args.cost_explorer or args.cur
    if args.containers:
        spec = generate_scenario(containers=args.containers, days=args.days, step_seconds=args.step, seed=args.seed)
    else:
        spec = load_scenario(args.scenario or DEMO_SCENARIO)
    with progress(console) as bar:
        task = bar.add_task("Simulating", total=1 + bool(args.openmetrics) + bool(bill_out))
        simulation = simulate(spec)
        snap = simulation.snapshot()
        save_snapshot(args.out, snap)
        bar.update(task, advance=1, description="Writing OpenMetrics")
        if args.openmetrics:
            write_openmetrics(simulation, args.openmetrics)
            bar.update(task, advance=1)
        if bill_out:
            bar.update(task, description="Writing the bill")
            bill = simulate_bill(simulation, PriceBook.for_region(spec.region))
            if args.cost_explorer:
                write_cost_explorer_json(bill, args.cost_explorer)
            if args.cur:
                from ..cur.parquet import write_cur_parquet
                cluster_arn = next((line.resource_id for line in bill.lines
                                    if line.category is CostCategory.CONTROL_PLANE), "")
                write_cur_parquet(bill, args.cur, account_id=spec.billing.account_id, cluster=spec.cluster,
                                  cluster_arn=cluster_arn)
            bar.update(task, advance=1)
    console.print(f"wrote {args.out} ({len(snap.keys):,} containers x {len(snap.timestamps):,} samples)")
    if args.openmetrics:
        console.print(f"wrote {args.openmetrics} (backfill: promtool tsdb create-blocks-from openmetrics {args.openmetrics} <dir>)")
    if bill_out:
        period = f"{usd(bill.total())} from {bill.start:%Y-%m-%d} to {bill.end:%Y-%m-%d}"
        if args.cost_explorer:
            console.print(f"wrote {args.cost_explorer} (Cost Explorer GetCostAndUsage, daily by SERVICE: {period})")
        if args.cur:
            console.print(f"wrote {args.cur} (CUR 2.0 Parquet, hourly: {period})")
    return 0
