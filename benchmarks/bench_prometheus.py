"""Issue 4 benchmark: queries per scan and wall time against a REAL Prometheus, by container count.

    python benchmarks/bench_prometheus.py <containers> [--hours H] [--workdir DIR]

Generates a cluster with the scenario simulator (2 containers per workload,
5-minute steps, ending 3 hours ago so the blocks do not overlap the head),
writes it as OpenMetrics (every pod's cAdvisor and kube-state-metrics series),
backfills it with ``promtool tsdb create-blocks-from openmetrics``, starts
Debian's ``prometheus`` on loopback and runs ``PrometheusSource.collect`` over
the whole window twice (cold, then with Prometheus' page cache warm). Prints one
JSON object: sizes, backfill time, requests per scan, wall time per scan.

Why a short window: the simulator writes ~33 series per container (each pod's
cAdvisor and kube-state-metrics series, replicas included), so 10,000 containers
x 1 day at 5 minutes would be ~16 GB of OpenMetrics and ~25 minutes of promtool
on one core. The default 4 hours keeps 10,000 containers at ~2.7 GB and a few
minutes; requests per scan depend on the number of window chunks (one per day
by default), not on the window's length within a chunk nor on containers.
The work directory (OpenMetrics + TSDB) is deleted afterwards unless --keep.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


QUERY_TIMEOUT = "20m"   # Prometheus' default 2m is too short for 10,000 containers on 2 cores


def start_server(server, timeout: float = 300) -> None:
    """Start ``server`` (a tests.support PrometheusServer) with a longer query timeout; wait for /-/ready."""
    import subprocess

    import requests

    from tests.support.prometheus_server import free_port

    config = server.workdir / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1m\nscrape_configs: []\n")
    server.port = free_port()
    server.process = subprocess.Popen(
        [server.prometheus, f"--config.file={config}", f"--storage.tsdb.path={server.tsdb}",
         f"--web.listen-address=127.0.0.1:{server.port}", "--storage.tsdb.retention.time=3650d",
         "--query.max-samples=500000000", f"--query.timeout={QUERY_TIMEOUT}", "--log.level=warn"],
        stdout=server.log.open("w"), stderr=subprocess.STDOUT, cwd=server.workdir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {server.process.returncode}: {server.log.read_text()[-2000:]}")
        try:
            if requests.get(f"{server.url}/-/ready", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"prometheus not ready on {server.url} within {timeout}s")


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def collect(url: str, window, step: int) -> dict:
    from finops_operator.sources.prometheus import PrometheusSource
    from finops_operator.sources.promql import Scope

    source = PrometheusSource(url, scrape_interval=step, timeout=900, retries=1)
    began = time.perf_counter()
    result = source.collect(Scope(), window, rate_window_s=step)
    return {"requests": result.queries, "chunks": result.chunks, "seconds": round(time.perf_counter() - began, 2),
            "containers_with_usage": len(result.usage), "nodes": len(result.nodes), "hpas": len(result.hpas)}


def unique_pods(sim) -> None:
    """Two pods with one name would be one series twice (promtool: "out of order sample").

    The simulator names DaemonSet pods ``<ds>-<5-char hash>`` without retrying on a
    collision (Kubernetes would); at ~1,700 nodes some seeds collide. Fail clearly.
    """
    seen: set[tuple[str, str]] = set()
    dupes = sorted({(p.namespace, p.name) for p in sim.state.pods if (p.namespace, p.name) in seen
                    or seen.add((p.namespace, p.name))})
    if dupes:
        raise RuntimeError(f"the simulated cluster has duplicate pod names {dupes[:5]}; use another --seed")


def run(containers: int, hours: float, workdir: Path, seed: int = 1) -> dict:
    from finops_operator.simulator import generate_scenario, simulate
    from finops_operator.simulator.openmetrics import write_openmetrics_file

    from tests.support.prometheus_server import (
        PrometheusServer,
        history_end,
        require_binaries,
    )

    require_binaries()
    step = 300
    end = datetime.fromtimestamp(history_end(), UTC)
    t = time.perf_counter()
    sim = simulate(generate_scenario(containers=containers, containers_per_workload=2, days=hours / 24,
                                     step_seconds=step, seed=seed, end=end))
    simulate_s = time.perf_counter() - t
    unique_pods(sim)
    om = workdir / "metrics.om"
    t = time.perf_counter()
    samples = write_openmetrics_file(sim, om)
    write_s = time.perf_counter() - t
    om_bytes = om.stat().st_size
    server = PrometheusServer(workdir)
    t = time.perf_counter()
    server.backfill(om)
    backfill_s = time.perf_counter() - t
    om.unlink()                                  # free the disk before querying
    t = time.perf_counter()
    start_server(server)
    start_s = time.perf_counter() - t
    try:
        cold = collect(server.url, sim.state.window, step)
        warm = collect(server.url, sim.state.window, step)
    finally:
        server.stop()
    return {"containers": len(sim.keys), "pods": len(sim.state.pods), "nodes": len(sim.state.nodes),
            "seed": seed, "window_hours": hours, "step_seconds": step, "points_per_series": int(sim.timestamps.size),
            "openmetrics_samples": samples, "openmetrics_bytes": om_bytes, "tsdb_bytes": dir_bytes(server.tsdb),
            "simulate_seconds": round(simulate_s, 2), "write_openmetrics_seconds": round(write_s, 2),
            "backfill_seconds": round(backfill_s, 2), "prometheus_start_seconds": round(start_s, 2),
            "scan_cold": cold, "scan_warm": warm}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("containers", type=int)
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=1, help="scenario seed (1 has unique pod names at 1k and 10k)")
    parser.add_argument("--keep", action="store_true", help="keep the OpenMetrics/TSDB work directory")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="finops-bench-prom-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        result = run(args.containers, args.hours, workdir, args.seed)
    except RuntimeError as exc:                  # missing binaries, promtool or prometheus failures
        print(f"bench_prometheus: {exc}", file=sys.stderr)
        return 2
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
