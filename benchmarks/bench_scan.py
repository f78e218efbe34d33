"""Issue 2 benchmark: scan 10,000 containers x 14 days at 5-minute steps from a snapshot file.

Two separate processes, so the memory figure is the scan's own:

    python benchmarks/bench_scan.py generate <snapshot.npz> [--containers N --days D]
    python benchmarks/bench_scan.py measure  <snapshot.npz>

``generate`` runs the scenario simulator (``generate_scenario`` + ``simulate``) and
saves the snapshot. ``measure`` times each stage of a scan in a fresh process:
load (read + validate the snapshot) -> summarize (per-container usage statistics)
-> detectors -> guardrails -> plan. Memory is the process's peak resident set
size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, the kernel's high-water
mark, Python heap + numpy buffers + interpreter), read after every stage; it is
not tracemalloc (which would miss nothing numpy allocates but slows the scan).
Each command prints one JSON object on stdout.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from datetime import timedelta
from pathlib import Path


def rss_mib() -> float:
    """Peak RSS of this process so far, MiB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def generate(path: Path, containers: int, days: float, step: int, seed: int) -> dict:
    from finops_operator.simulator import generate_scenario, simulate
    from finops_operator.snapshot import save_snapshot

    began = time.perf_counter()
    spec = generate_scenario(containers=containers, containers_per_workload=2, days=days, step_seconds=step,
                             seed=seed)
    sim = simulate(spec)
    simulated = time.perf_counter() - began
    save_snapshot(path, sim.snapshot())
    return {"containers": len(sim.keys), "workloads": len(sim.state.workloads), "pods": len(sim.state.pods),
            "nodes": len(sim.state.nodes), "points_per_series": int(sim.timestamps.size), "days": days,
            "step_seconds": step, "simulate_seconds": round(simulated, 2),
            "save_seconds": round(time.perf_counter() - began - simulated, 2),
            "snapshot_bytes": path.stat().st_size, "generate_peak_rss_mib": rss_mib()}


def measure(path: Path) -> dict:
    from finops_operator.actuation.plan import plan_change_sets
    from finops_operator.detectors import run_all
    from finops_operator.guardrails import GuardrailContext, evaluate
    from finops_operator.pricing.catalog import PriceBook
    from finops_operator.settings import PolicySettings
    from finops_operator.snapshot import load_snapshot
    from finops_operator.usage import state_with_usage

    stages: dict[str, dict[str, float]] = {}
    baseline = rss_mib()

    def lap(name: str, started: float) -> float:
        now = time.perf_counter()
        stages[name] = {"seconds": round(now - started, 3), "peak_rss_mib_after": rss_mib()}
        return now

    settings, prices = PolicySettings(), PriceBook.load()
    t = time.perf_counter()
    snapshot = load_snapshot(path)
    t = lap("load", t)
    state = state_with_usage(snapshot)
    t = lap("summarize", t)
    detected = run_all(state, settings, prices)
    t = lap("detectors", t)
    context = GuardrailContext(now=state.window.end + timedelta(hours=1))
    decisions = evaluate(detected.findings, settings.guardrails, context, settings.mode)
    t = lap("guardrails", t)
    plan = plan_change_sets(detected.findings, decisions, settings, open_prs=0)
    lap("plan", t)
    total = sum(s["seconds"] for s in stages.values())
    return {"containers": len(snapshot.keys), "points_per_series": int(snapshot.timestamps.size),
            "samples": int(snapshot.cpu.size + snapshot.memory.size), "stages": stages,
            "total_seconds": round(total, 3), "peak_rss_mib": rss_mib(), "rss_at_start_mib": baseline,
            "memory_measure": "peak RSS (resource.getrusage ru_maxrss) of a fresh process",
            "findings": len(detected.findings), "skipped": len(detected.skipped),
            "change_sets": len(plan.change_sets)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("generate", "measure"))
    parser.add_argument("snapshot", type=Path)
    parser.add_argument("--containers", type=int, default=10_000)
    parser.add_argument("--days", type=float, default=14)
    parser.add_argument("--step", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args(argv)
    if args.command == "generate":
        result = generate(args.snapshot, args.containers, args.days, args.step, args.seed)
    else:
        result = measure(args.snapshot)
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
