"""Issue 9 benchmark: UsageHours (allocation input) for N containers x D days at 1 h from a REAL Prometheus.

    python benchmarks/bench_usage_hours.py --containers 10000 --days 30      # the issue's size (see below)
    python benchmarks/bench_usage_hours.py --containers 10000 --days 3       # what fits a shared 2-core machine

Writes a synthetic history as OpenMetrics with the real cAdvisor and
kube-state-metrics names the reader queries (per container: the CPU counter,
working set, CPU and memory requests; per pod: ``kube_pod_info``; per node:
allocatable, ``kube_node_info`` with a provider id, identity labels), backfills
it with ``promtool tsdb create-blocks-from openmetrics``, starts Debian's
``prometheus`` on loopback, and runs ``read_usage_hours`` over the whole window
in a FRESH process: wall time, peak RSS of that process (ru_maxrss) and the
number of HTTP requests. Prints one JSON object; ``--out`` also writes it.

Samples: ``--samples-per-hour`` (default 2, every 30 minutes) is the least
that gives every hour both a mean and a CPU rate (``rate`` needs two samples
in the hour). 10,000 containers (2 per pod) x 30 days x 2 per hour is ~65
million samples, ~7 GB of OpenMetrics and a long promtool run on one core;
the size is a parameter so a smaller run can be made and said so.
The work directory is deleted afterwards unless --keep.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CONTAINERS_PER_POD = 2
PODS_PER_NODE = 50
GIB = 2**30


def _lines(name: str, labels: str, values: np.ndarray, times: np.ndarray) -> str:
    return "".join(f"{name}{{{labels}}} {v:.10g} {t}\n" for v, t in zip(values.tolist(), times.tolist()))


def write_history(path: Path, containers: int, days: float, per_hour: int, end: int, seed: int = 1) -> dict:
    """Stream the synthetic history to ``path``; returns its sizes. Every container runs all window."""
    rng = np.random.default_rng(seed)
    interval = 3600 // per_hour
    times = np.arange(end - int(days * 24) * 3600, end, interval, dtype=np.int64)
    pods = -(-containers // CONTAINERS_PER_POD)
    nodes = -(-pods // PODS_PER_NODE)
    keys = [(f"ns-{p % 50:02d}", f"pod-{p:06d}", f"c{c}", f"node-{p // PODS_PER_NODE:04d}")
            for p in range(pods) for c in range(CONTAINERS_PER_POD)][:containers]
    samples = 0
    with path.open("w") as out:
        out.write("# TYPE container_cpu_usage_seconds counter\n")
        for ns, pod, c, _ in keys:
            cores = rng.uniform(0.05, 1.0) * (1 + 0.3 * np.sin(times / 7200.0 + rng.uniform(0, 6)))
            out.write(_lines("container_cpu_usage_seconds_total", f'namespace="{ns}",pod="{pod}",container="{c}"',
                             np.cumsum(cores * interval), times))
        out.write("# TYPE container_memory_working_set_bytes gauge\n")
        for ns, pod, c, _ in keys:
            mem = np.round(rng.uniform(50, 2000) * 2**20 * (1 + 0.1 * rng.standard_normal(len(times))).clip(0.5))
            out.write(_lines("container_memory_working_set_bytes", f'namespace="{ns}",pod="{pod}",container="{c}"',
                             mem, times))
        out.write("# TYPE kube_pod_container_resource_requests gauge\n")
        for ns, pod, c, node in keys:
            for res, value in (("cpu", 0.5), ("memory", 512 * 2**20)):
                out.write(_lines("kube_pod_container_resource_requests", f'namespace="{ns}",pod="{pod}",container='
                                 f'"{c}",node="{node}",resource="{res}"', np.full(len(times), value), times))
        out.write("# TYPE kube_pod_info gauge\n")
        for ns, pod, _, node in keys[::CONTAINERS_PER_POD]:
            out.write(_lines("kube_pod_info", f'namespace="{ns}",pod="{pod}",node="{node}"', np.ones(len(times)), times))
        _nodes(out, nodes, times)
        out.write("# EOF\n")
        samples = len(times) * (len(keys) * 4 + pods + nodes * 4)
    return {"containers": len(keys), "pods": pods, "nodes": nodes, "samples": samples, "interval_seconds": interval,
            "start": int(times[0]), "end": int(end), "openmetrics_bytes": path.stat().st_size}


def _nodes(out, nodes: int, times: np.ndarray) -> None:
    ones = np.ones(len(times))
    out.write("# TYPE kube_node_status_allocatable gauge\n")
    for n in range(nodes):
        for res, value in (("cpu", 63.7), ("memory", 250 * GIB)):
            out.write(_lines("kube_node_status_allocatable", f'node="node-{n:04d}",resource="{res}"',
                             np.full(len(times), value), times))
    out.write("# TYPE kube_node_info gauge\n")
    for n in range(nodes):
        out.write(_lines("kube_node_info", f'node="node-{n:04d}",provider_id="aws:///us-east-1a/i-{n:017x}"', ones,
                         times))
    out.write("# TYPE kube_node_labels gauge\n")
    for n in range(nodes):
        out.write(_lines("kube_node_labels", f'node="node-{n:04d}",label_node_kubernetes_io_instance_type='
                         f'"m5.16xlarge",label_topology_kubernetes_io_zone="us-east-1a"', ones, times))


def measure(url: str, start: int, end: int) -> dict:
    """In this (fresh) process: read UsageHours for [start, end) and report time, peak RSS and requests."""
    from finops_operator.sources.promalloc import read_usage_hours
    from finops_operator.sources.prometheus import PrometheusSource
    from finops_operator.sources.promql import Scope

    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    source = PrometheusSource(url, timeout=900, retries=1)
    began = time.perf_counter()
    hours = read_usage_hours(source, Scope(), datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))
    seconds = time.perf_counter() - began
    filled = float(np.mean(~np.isnan(hours.cpu_usage))) if hours.cpu_usage.size else 0.0
    return {"seconds": round(seconds, 2), "requests": source.requests, "containers": len(hours.containers),
            "nodes": len(hours.nodes), "hours": len(hours.hours), "cpu_cells_filled": round(filled, 4),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_at_start_mib": round(rss_start, 1)}


def run(containers: int, days: float, per_hour: int, workdir: Path) -> dict:
    from bench_prometheus import dir_bytes, start_server
    from tests.support.prometheus_server import PrometheusServer, history_end, require_binaries

    require_binaries()
    end = history_end()
    om = workdir / "alloc.om"
    t = time.perf_counter()
    written = write_history(om, containers, days, per_hour, end)
    write_s = time.perf_counter() - t
    server = PrometheusServer(workdir)
    t = time.perf_counter()
    server.backfill(om, timeout=6 * 3600)              # 30 days of 10,000 containers: ~7.7 GB of text
    backfill_s = time.perf_counter() - t
    om.unlink()
    start_server(server)
    try:
        runs = [_child_measure(server.url, written["start"], end) for _ in ("cold", "warm")]
    finally:
        server.stop()
    return {"benchmark": "read_usage_hours (UsageHours at 1 h) against a real backfilled Prometheus (issue 9)",
            "days": days, "samples_per_hour": per_hour, **written, "tsdb_bytes": dir_bytes(server.tsdb),
            "write_openmetrics_seconds": round(write_s, 1), "backfill_seconds": round(backfill_s, 1),
            "read_cold": runs[0], "read_warm": runs[1]}


def _child_measure(url: str, start: int, end: int) -> dict:
    proc = subprocess.run([sys.executable, __file__, "measure", url, str(start), str(end)], capture_output=True,
                          text=True, timeout=3600, cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"measure failed (exit {proc.returncode}): {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["measure"]:
        json.dump(measure(argv[1], int(argv[2]), int(argv[3])), sys.stdout)
        print()
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=10_000)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--samples-per-hour", type=int, default=2, choices=(2, 4, 6, 12, 60))
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="finops-bench-alloc-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        result = run(args.containers, args.days, args.samples_per_hour, workdir)
    except RuntimeError as exc:
        print(f"bench_usage_hours: {exc}", file=sys.stderr)
        return 2
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    result["command"] = "python benchmarks/bench_usage_hours.py " + " ".join(argv)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
