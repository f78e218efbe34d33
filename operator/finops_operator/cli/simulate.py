"""`finops simulate`: scenario -> snapshot file (+ OpenMetrics for promtool backfill)."""
from __future__ import annotations

import argparse

from rich.console import Console

from .common import DEMO_SCENARIO, progress


def run_simulate(args: argparse.Namespace, console: Console) -> int:
    from ..simulator import generate_scenario, load_scenario, simulate
    from ..simulator.openmetrics import write_openmetrics
    from ..snapshot import save_snapshot

    if args.containers:
        spec = generate_scenario(containers=args.containers, days=args.days, step_seconds=args.step, seed=args.seed)
    else:
        spec = load_scenario(args.scenario or DEMO_SCENARIO)
    with progress(console) as bar:
        task = bar.add_task("Simulating", total=2 if args.openmetrics else 1)
        simulation = simulate(spec)
        snap = simulation.snapshot()
        save_snapshot(args.out, snap)
        bar.update(task, advance=1, description="Writing OpenMetrics")
        if args.openmetrics:
            write_openmetrics(simulation, args.openmetrics)
            bar.update(task, advance=1)
    console.print(f"wrote {args.out} ({len(snap.keys):,} containers x {len(snap.timestamps):,} samples)")
    if args.openmetrics:
        console.print(f"wrote {args.openmetrics} (backfill: promtool tsdb create-blocks-from openmetrics {args.openmetrics} <dir>)")
    return 0
