"""Allocation engine benchmark: 10,000 containers x 720 hours (30 days at 1 h) with an hourly bill.

    python benchmarks/bench_allocation.py                   # full size, writes benchmarks/results/allocation.json
    python benchmarks/bench_allocation.py --containers 1000 --hours 168 --out /tmp/a.json   # quick

Builds a synthetic UsageHours in memory (float64 matrices, requests + usage, 10% of
container-hours not running, pods rescheduled as new rows, 1% on unknown nodes), the
nodes' hourly bill lines (on-demand, Savings Plans and spot) plus cluster-wide
lines, then times ``allocation.allocate`` (with idle and shared costs shared out,
the most work) and ``effective_rates``. Memory is the process's peak resident set
size (``ru_maxrss``), read before and after allocation: the input matrices alone
are 4 x containers x hours x 8 bytes. This measures the engine; fetching the same
data from Prometheus is ``bench_usage_hours.py``.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "operator"))

from finops_operator.allocation import AllocationSettings, allocate, effective_rates  # noqa: E402
from finops_operator.models import WorkloadRef  # noqa: E402
from finops_operator.models.costs import (  # noqa: E402
    Bill, BillLine, ClaimSlot, ContainerSlot, CostCategory, NodePrice, NodeSlot, PriceSource, UsageHours, hour_starts)
from finops_operator.pricing.catalog import PriceBook  # noqa: E402

GI = 2**30


def peak_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def build(containers: int, hours: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    book = PriceBook.load()
    start = datetime(2026, 10, 1, tzinfo=UTC)
    hs = hour_starts(start, start + timedelta(hours=hours))
    n_nodes = max(4, containers // 25)
    kinds = rng.choice(["on-demand", "sp", "spot"], n_nodes, p=[0.5, 0.3, 0.2])
    spec = book.instances["m5.2xlarge"]
    nodes = [NodeSlot(f"node-{i}", spec.instance_type, "spot" if k == "spot" else "on-demand", spec.vcpu - 0.1,
                      int((spec.memory_gib - 0.6) * GI), instance_id=f"i-{i:017x}") for i, k in enumerate(kinds)]
    present = np.ones((n_nodes, hours), dtype=bool)
    present[: n_nodes // 10, : hours // 2] = False                  # a tenth of the nodes lived half the window
    node_of = rng.integers(0, n_nodes, containers).astype(np.int32)
    node_of[: containers // 100] = -1
    cpu_req = np.repeat(rng.choice([0.05, 0.1, 0.25, 0.5], containers)[:, None], hours, axis=1)
    mem_req = np.repeat(rng.choice([64, 128, 256, 512], containers)[:, None] * 2.0**20, hours, axis=1)
    cpu_use = cpu_req * rng.uniform(0.1, 1.5, (containers, hours))
    mem_use = mem_req * rng.uniform(0.3, 1.3, (containers, hours))
    stopped = rng.random((containers, hours)) < 0.1
    stopped |= ~present[np.maximum(node_of, 0)]
    for m in (cpu_req, cpu_use, mem_req, mem_use):
        m[stopped] = np.nan
    slots = [ContainerSlot(f"ns-{r % 50}", f"pod-{r}", "app", WorkloadRef("Deployment", f"ns-{r % 50}", f"w-{r // 2}"),
                           {"team": f"team-{r % 12}"}) for r in range(containers)]
    claims = [ClaimSlot(f"ns-{c % 50}", f"data-{c}", f"vol-{c:017x}", "gp3", 100.0) for c in range(containers // 20)]
    usage = UsageHours(hs, nodes, present, slots, node_of, cpu_req, cpu_use, mem_req, mem_use, claims)
    prices = {n.name: NodePrice(book.node_hourly(n.instance_type, n.capacity_type), PriceSource.LIST, "list")
              for n in nodes}
    return usage, prices, _bill(nodes, kinds, present, hs, claims, book), book


def _bill(nodes, kinds, present, hs, claims, book) -> Bill:
    times = [datetime.fromtimestamp(int(t), UTC) for t in hs]
    hour = timedelta(hours=1)
    lines = []
    for i, (node, kind) in enumerate(zip(nodes, kinds)):
        cost = book.instances[node.instance_type].hourly * {"sp": 0.72, "spot": 0.35}.get(kind, 1.0)
        source = PriceSource.SPOT if kind == "spot" else PriceSource.EFFECTIVE
        lines += [BillLine(times[h], times[h] + hour, node.instance_id, CostCategory.NODE, "AmazonEC2", "", cost,
                           cost, source) for h in np.nonzero(present[i])[0]]
    gp3 = book.volumes["gp3"].gb_month / book.hours_per_month * 100
    day = timedelta(days=1)
    for d in range(0, len(times), 24):
        lines += [BillLine(times[d], times[d] + day, c.volume_id, CostCategory.VOLUME, "AmazonEC2", "", gp3 * 24,
                           gp3 * 24, PriceSource.EFFECTIVE) for c in claims]
        lines.append(BillLine(times[d], times[d] + day, "arn:eks", CostCategory.CONTROL_PLANE, "AmazonEKS", "", 2.4,
                              2.4, PriceSource.EFFECTIVE))
        lines.append(BillLine(times[d], times[d] + day, "nat-1", CostCategory.NAT_GATEWAY, "AmazonEC2", "", 1.08,
                              1.08, PriceSource.EFFECTIVE))
    return Bill("simulated", times[0], times[-1] + hour, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=10_000)
    parser.add_argument("--hours", type=int, default=720)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "allocation.json")
    args = parser.parse_args()
    began = time.perf_counter()
    usage, prices, bill, book = build(args.containers, args.hours)
    built = time.perf_counter() - began
    rss_input = peak_mib()
    began = time.perf_counter()
    allocation = allocate(usage, prices, book, bill=bill, settings=AllocationSettings(idle="Share", shared="ByCost"))
    allocate_s = time.perf_counter() - began
    rss_allocate = peak_mib()
    began = time.perf_counter()
    rates = effective_rates(usage, prices, book, bill)
    rates_s = time.perf_counter() - began
    result = {
        "benchmark": "allocation engine (issue 9): UsageHours + bill -> Allocation",
        "containers": args.containers, "hours": args.hours, "nodes": len(usage.nodes), "claims": len(usage.claims),
        "bill_lines": len(bill.lines), "container_hours": args.containers * args.hours,
        "build_seconds": round(built, 2),
        "allocate_seconds": round(allocate_s, 2), "effective_rates_seconds": round(rates_s, 2),
        "peak_rss_mib_after_input": rss_input, "peak_rss_mib_after_allocate": rss_allocate,
        "allocate_extra_mib": round(rss_allocate - rss_input, 1),
        "input_matrices_mib": round(4 * args.containers * args.hours * 8 / 2**20, 1),
        "bill_total": round(allocation.bill_total or 0.0, 2), "residual": round(allocation.residual, 6),
        "charges": len(allocation.charges), "rates": [rates.cpu_core_hour, rates.memory_gib_hour],
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "measured_at": datetime.now(UTC).isoformat(timespec="seconds")},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
