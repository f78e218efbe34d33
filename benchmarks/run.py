"""Run the benchmarks and write their figures: ``make bench`` = ``python benchmarks/run.py``.

    python benchmarks/run.py                     # both benchmarks, full size
    python benchmarks/run.py --only scan         # issue 2: 10,000 containers x 14 days from a snapshot
    python benchmarks/run.py --only prometheus   # issue 4: 1,000 and 10,000 containers, real Prometheus
    python benchmarks/run.py --only cur          # issue 9: a 1 GB-class CUR 2.0 through DuckDB (cur_bench.py --gb 10: 10 GB)
    python benchmarks/run.py --only forecast     # issue 10: forecast accuracy per cost-series family (~20 s)
    python benchmarks/run.py --only quality      # issue 13: right-sizing quality vs KRR-simple and VPA-like (~10 s)
    python benchmarks/run.py --only promfloor    # issue 13: project vs KRR pattern vs floor (~30 min)
    python benchmarks/run.py --quick             # small sizes, a smoke check of the harness (~1 minute)

Writes ``benchmarks/results/scan.json``, ``prometheus.json``, ``promfloor.json`` and ``SUMMARY.md``
(with the machine: CPUs, memory, Python, prometheus version). Each measurement
runs in its own process (``bench_scan.py`` / ``bench_prometheus.py``) so peak
memory and timings are not polluted by earlier work. Needs Debian's
``prometheus`` and ``promtool`` for the Prometheus part (``make tools``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from summary import render_summary

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def machine() -> dict:
    """What the figures were measured on."""
    mem_kib = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                    if line.startswith("MemTotal:")), 0) if Path("/proc/meminfo").exists() else 0
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    try:
        prom = subprocess.run(["prometheus", "--version"], capture_output=True, text=True, timeout=30,
                              check=False)
        prom_version = (prom.stdout or prom.stderr).splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        prom_version = "not installed"
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kib / 2**20, 1),
            "python": platform.python_version(), "platform": platform.platform(), "prometheus": prom_version,
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}


def child(script: str, *args: str, timeout: float = 3600) -> dict:
    """Run one measurement in a fresh interpreter; its last stdout line is the JSON result."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(HERE / script), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=HERE.parent, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{script} {' '.join(args)} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_scan(containers: int, days: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="finops-bench-scan-") as tmp:
        snap = Path(tmp) / "snapshot.npz"
        print(f"scan: generating {containers:,} containers x {days:g} days ...", flush=True)
        generated = child("bench_scan.py", "generate", str(snap), "--containers", str(containers),
                          "--days", str(days))
        print("scan: measuring load + summarize + detectors + guardrails + plan ...", flush=True)
        measured = child("bench_scan.py", "measure", str(snap))
    return {"benchmark": "scan from a snapshot (issue 2)", "generated": generated, "scan": measured}


def bench_prometheus(sizes: list[int], hours: float) -> dict:
    runs = []
    for n in sizes:
        print(f"prometheus: {n:,} containers, {hours:g} h at 5 min: simulate, backfill, scan ...", flush=True)
        began = time.perf_counter()
        result = child("bench_prometheus.py", str(n), "--hours", str(hours))
        result["benchmark_seconds"] = round(time.perf_counter() - began, 1)
        runs.append(result)
    return {"benchmark": "PrometheusSource.collect against a real backfilled Prometheus (issue 4)", "runs": runs}


PROMFLOOR_SIZES = ((1000, 168), (10_000, 24))      # (containers, hours): see benchmarks/README.md
PROMFLOOR_QUICK = ((200, 24),)


def bench_promfloor(sizes: tuple[tuple[int, int], ...]) -> dict:
    runs = []
    for containers, hours in sizes:
        print(f"promfloor: {containers:,} containers x {hours} h: dataset (cached), then 4 passes x 3 ...", flush=True)
        runs.append(child("bench_promfloor.py", "--containers", str(containers), "--hours", str(hours),
                          timeout=6 * 3600))
    return {"benchmark": "project with/without recording rules vs KRR's per-object pattern vs the floor (issue 13)",
            "sizes": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="finops-operator benchmarks")
    parser.add_argument("--only", choices=("scan", "prometheus", "cur", "forecast", "quality", "promfloor"))
    parser.add_argument("--quick", action="store_true", help="small sizes (harness smoke check)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    info = machine()
    results: dict[str, dict] = {}
    if args.only in (None, "scan"):
        results["scan"] = bench_scan(500, 2) if args.quick else bench_scan(10_000, 14)
    if args.only in (None, "prometheus"):
        results["prometheus"] = bench_prometheus([100, 1000], 1) if args.quick else bench_prometheus([1000, 10_000], 4)
    if args.only in (None, "cur"):   # issue 9: writes results/cur.json itself (see cur_bench.py)
        subprocess.run([sys.executable, str(HERE / "cur_bench.py"), "--gb", "0.05" if args.quick else "1",
                        *(["--quick"] if args.quick else []), "--out", str(args.out)], check=True)
    if args.only in (None, "forecast"):   # issue 10: writes results/forecast.json itself (see bench_forecast.py)
        child("bench_forecast.py", *(["--quick"] if args.quick else []), "--out", str(args.out / "forecast.json"))
    if args.only in (None, "quality"):   # issue 13: writes results/quality.json itself (see bench_quality.py)
        child("bench_quality.py", *(["--quick"] if args.quick else []), "--out", str(args.out / "quality.json"))
    if args.only in (None, "promfloor"):
        results["promfloor"] = bench_promfloor(PROMFLOOR_QUICK if args.quick else PROMFLOOR_SIZES)
    for name, data in results.items():
        data["machine"] = info
        data["quick"] = args.quick
        (args.out / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    summary = render_summary({name: json.loads((args.out / f"{name}.json").read_text())
                              for name in ("scan", "prometheus", "promfloor") if (args.out / f"{name}.json").exists()})
    (args.out / "SUMMARY.md").write_text(summary)
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
