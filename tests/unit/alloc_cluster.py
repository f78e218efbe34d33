"""A small simulated cluster and its bill, for the allocation tests.

Nodes: on-demand (list price), Savings Plans-covered (effective cost 72% of list),
spot (35% of list), one that lived only the second half of the window, one billed
in daily lines; containers with requests and usage (some not running some hours,
some over-asking their node, optionally some on unknown nodes); claims backed by
billed EBS volumes, one claim whose volume the bill does not name (priced), an
unattached volume; the EKS control plane, a load balancer, a NAT gateway and an
S3 line that matches nothing in the cluster.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from finops_operator.models import WorkloadRef
from finops_operator.models.costs import (Bill, BillLine, ClaimSlot, ContainerSlot, CostCategory, NodePrice,
                                          NodeSlot, PriceSource, UsageHours, hour_starts)
from finops_operator.pricing.catalog import PriceBook
from finops_operator.units import GI

START = datetime(2026, 11, 1, tzinfo=UTC)
BOOK = PriceBook.load()
SP_RATE, SPOT_RATE = 0.72, 0.35


@dataclass
class Cluster:
    usage: UsageHours
    prices: dict[str, NodePrice]
    bill: Bill
    book: PriceBook = field(default_factory=lambda: BOOK)


def _node(i: int, kind: str) -> NodeSlot:
    itype = ("m5.xlarge", "m5.2xlarge", "c5.2xlarge")[i % 3]
    spec = BOOK.instances[itype]
    return NodeSlot(f"node-{i}", itype, "spot" if kind == "spot" else "on-demand", spec.vcpu - 0.1,
                    int((spec.memory_gib - 0.5) * GI), instance_id=f"i-{i:017x}", zone="us-east-1a")


def simulated(seed: int = 0, *, hours: int = 48, containers: int = 60, unknown: int = 0,
              overcommit: bool = False, unbilled_claim: bool = False) -> Cluster:
    rng = np.random.default_rng(seed)
    hs = hour_starts(START, START + timedelta(hours=hours))
    kinds = ["on-demand", "sp", "spot", "half", "daily", "on-demand"]
    nodes = [_node(i, k) for i, k in enumerate(kinds)]
    present = np.ones((len(nodes), hours), dtype=bool)
    present[3, : hours // 2] = False                      # "half": lived the second half of the window
    prices = {n.name: NodePrice(BOOK.node_hourly(n.instance_type, n.capacity_type),
                                PriceSource.LIST, "us-east-1 price book") for n in nodes}
    node_of = rng.integers(0, len(nodes), containers).astype(np.int32)
    node_of[:unknown] = -1
    for r in range(containers):                           # containers run only where their node exists
        if node_of[r] == 3:
            node_of[r] = 0
    cpu_req = np.repeat(rng.choice([0.1, 0.25, 0.5], containers)[:, None], hours, axis=1)
    mem_req = np.repeat(rng.choice([128, 256, 512], containers)[:, None] * 2.0**20, hours, axis=1)
    cpu_use = cpu_req * rng.uniform(0.2, 1.6, (containers, hours))
    mem_use = mem_req * rng.uniform(0.3, 1.4, (containers, hours))
    if overcommit:
        cpu_req[node_of == 0] *= 12                       # asks for more than node-0 has
    stopped = rng.random((containers, hours)) < 0.1      # not running some hours
    for m in (cpu_req, cpu_use, mem_req, mem_use):
        m[stopped] = np.nan
    slots = [ContainerSlot(f"ns-{r % 4}", f"pod-{r}", "app", WorkloadRef("Deployment", f"ns-{r % 4}", f"w-{r % 9}"),
                           {"team": f"team-{r % 3}", "tier": "web" if r % 2 else "batch"})
             for r in range(containers)]
    claims = [ClaimSlot("ns-0", "data-0", "vol-0000000000000001", "gp3", 100.0),
              ClaimSlot("ns-1", "data-1", "vol-0000000000000002", "gp3", 50.0),
              *([ClaimSlot("ns-2", "data-2", "vol-unbilled", "gp3", 20.0)] if unbilled_claim else [])]
    usage = UsageHours(hs, nodes, present, slots, node_of, cpu_req, cpu_use, mem_req, mem_use, claims)
    return Cluster(usage, prices, _bill(nodes, kinds, present, hs))


def _line(t: datetime, hours: int, rid: str, cat: CostCategory, service: str, cost: float,
          source: PriceSource = PriceSource.EFFECTIVE) -> BillLine:
    return BillLine(t, t + timedelta(hours=hours), rid, cat, service, "", cost, cost, source)


def _bill(nodes: list[NodeSlot], kinds: list[str], present: np.ndarray, hs: np.ndarray) -> Bill:
    lines: list[BillLine] = []
    times = [datetime.fromtimestamp(int(t), UTC) for t in hs]
    for i, (node, kind) in enumerate(zip(nodes, kinds)):
        listed = BOOK.instances[node.instance_type].hourly
        rate = {"sp": SP_RATE, "spot": SPOT_RATE}.get(kind, 1.0) * listed
        source = PriceSource.SPOT if kind == "spot" else PriceSource.EFFECTIVE
        if kind == "daily":
            for d in range(0, len(hs), 24):
                lines.append(_line(times[d], 24, node.instance_id, CostCategory.NODE, "AmazonEC2",
                                   rate * present[i, d:d + 24].sum(), source))
            continue
        lines += [_line(times[h], 1, node.instance_id, CostCategory.NODE, "AmazonEC2", rate, source)
                  for h in range(len(hs)) if present[i, h]]
    gp3 = BOOK.volumes["gp3"].gb_month / BOOK.hours_per_month
    for t in times:
        lines += [_line(t, 1, "vol-0000000000000001", CostCategory.VOLUME, "AmazonEC2", 100 * gp3),
                  _line(t, 1, "vol-0000000000000002", CostCategory.VOLUME, "AmazonEC2", 50 * gp3),
                  _line(t, 1, "vol-unattached", CostCategory.VOLUME, "AmazonEC2", 30 * gp3),
                  _line(t, 1, "arn:aws:eks:us-east-1:1:cluster/demo", CostCategory.CONTROL_PLANE, "AmazonEKS", 0.10),
                  _line(t, 1, "arn:aws:elasticloadbalancing:lb/demo", CostCategory.LOAD_BALANCER, "AWSELB", 0.0225),
                  _line(t, 1, "nat-0123", CostCategory.NAT_GATEWAY, "AmazonEC2", 0.045),
                  _line(t, 1, "demo-bucket", CostCategory.OTHER, "AmazonS3", 0.01)]
    return Bill("simulated", times[0], times[-1] + timedelta(hours=1), lines)
