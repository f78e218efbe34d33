"""The bill of a simulated cluster: hourly :class:`~finops_operator.models.costs.BillLine` s, as a CUR holds them.

    bill = simulate_bill(sim, PriceBook.load())        # the scenario's ``billing`` block decides SP, spot, LB, NAT
    write_cost_explorer_json(bill, "ce.json")           # GetCostAndUsage, daily, grouped by SERVICE

One line per resource and hour (per-second billing: a node created at 10:45 is
billed 0.25 of the 10:00 hour, and lives to the end of the simulation):

* every node instance (``resource_id`` = its ``Node.instance_id``): on-demand at
  the price book's list price; each hour a Compute Savings Plan covers
  ``savingsPlan.coverage`` of that hour's on-demand cost (nodes taken in
  instance-id order, the one at the boundary split into a covered and an
  uncovered line), covered lines cost ``list x (1 - discount)`` with
  ``line_item_type = SavingsPlanCoveredUsage``; spot nodes at
  ``list x (1 - spotDiscount)`` (``pricing = SPOT``);
* EBS volumes by the ids the inventory uses (an EBS volume's id, a PV's
  ``backing_volume_id``; each volume once), the price book's GB-month (plus
  IOPS/throughput) prorated per hour over ``book.hours_per_month``, the whole window;
* the EKS control plane (``book.control_plane_hourly`` when the book has it,
  else the $0.10/h standard-support list price), keyed by the cluster ARN;
* load balancers and NAT gateways tagged for the cluster
  (``kubernetes.io/cluster/<name>: owned``), at the us-east-1 list prices below;
* internet data transfer (``OTHER``), tied to no resource.

Every line's ``list_cost`` is the on-demand cost of the same usage. Numbers
that vary (NAT bytes, data transfer) come from the scenario seed.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterator

import numpy as np

from ..models import ClusterState, Node
from ..models.costs import Bill, BillLine, CostCategory, PriceSource, hour_starts
from ..pricing.catalog import PriceBook
from .billspec import BillingSpec, SavingsPlan
from .placement import digest, hour_shares, seed_of

SOURCE = "simulated"
NLB_HOURLY = 0.0225               # Network Load Balancer hour, us-east-1 list
NLB_LCU_HOURLY = 0.006            # per NLCU-hour; the simulated NLB uses LCUS_PER_HOUR of them
LCUS_PER_HOUR = 2.0
NAT_HOURLY = 0.045                # NAT gateway hour, us-east-1 list
NAT_PER_GB = 0.045                # NAT gateway data processed
DATA_TRANSFER_PER_GB = 0.09       # internet egress, first 10 TB tier
SP_COVERED = "SavingsPlanCoveredUsage"

#: CUR usage-type prefix per region (us-east-1 EC2 usage types carry none).
REGION_PREFIX = {"us-east-1": "USE1", "us-east-2": "USE2", "us-west-1": "USW1", "us-west-2": "USW2",
                 "eu-west-1": "EU", "eu-west-2": "EUW2", "eu-west-3": "EUW3", "eu-central-1": "EUC1",
                 "eu-north-1": "EUN1", "ap-southeast-1": "APS1", "ap-southeast-2": "APS2",
                 "ap-northeast-1": "APN1", "ap-northeast-2": "APN2", "ap-south-1": "APS3", "ca-central-1": "CAN1",
                 "sa-east-1": "SAE1"}


def simulate_bill(sim, book: PriceBook, *, billing: BillingSpec | None = None,
                  savings_plan: SavingsPlan | None = None) -> Bill:
    """The simulated cluster's bill over its window, in whole UTC hours.

    ``sim`` is a :class:`~.engine.Simulation` (its scenario's ``billing`` block
    applies) or a :class:`~finops_operator.snapshot.Snapshot` (defaults unless
    ``billing`` is given). ``savings_plan`` overrides the plan of ``billing``.
    """
    scenario = getattr(sim, "spec", None)          # a Simulation's ScenarioSpec; a Snapshot has none
    spec = billing or (scenario.billing if scenario is not None else BillingSpec())
    plan = savings_plan or spec.savings_plan
    state: ClusterState = sim.state
    seed = scenario.seed if scenario is not None else 0
    hours = hour_starts(state.window.start, state.window.end)
    ctx = _Context(state, book, spec, hours, seed)
    lines = [*_node_lines(ctx, plan), *_volume_lines(ctx), *_control_plane_lines(ctx), *_network_lines(ctx),
             *_data_transfer_lines(ctx)]
    problems = [f"PV {v.id} has no backing EBS volume id: not billed" for v in state.volumes
                if v.source.value == "pv" and not v.backing_volume_id]
    problems += [f"node {n.name} has no instance id (a snapshot from before instance ids): not billed"
                 for n in state.nodes if not n.instance_id]
    return Bill(SOURCE, _time(hours[0]), _time(hours[-1] + 3600), lines, problems=problems)


class _Context:
    """What every line builder needs: the state, prices, settings and the hour grid."""

    def __init__(self, state: ClusterState, book: PriceBook, spec: BillingSpec, hours: np.ndarray, seed: int):
        self.state, self.book, self.spec, self.hours, self.seed = state, book, spec, hours, seed
        self.starts = [_time(h) for h in hours]
        self.ends = [_time(h + 3600) for h in hours]
        self.cluster_tag = {f"kubernetes.io/cluster/{state.cluster}": "owned"}

    def usage_type(self, kind: str, *, always: bool = False) -> str:
        """``BoxUsage:m5.xlarge`` in us-east-1, ``USE2-BoxUsage:m5.xlarge`` elsewhere (``always``: prefixed)."""
        prefix = REGION_PREFIX.get(self.state.region, self.state.region)
        return kind if self.state.region == "us-east-1" and not always else f"{prefix}-{kind}"

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.state.region}:{self.spec.account_id}:{resource}"

    def line(self, h: int, resource: str, category: CostCategory, service: str, usage_type: str, cost: float,
             list_cost: float, tags: dict[str, str], pricing: PriceSource = PriceSource.EFFECTIVE,
             line_item_type: str = "Usage") -> BillLine:
        return BillLine(self.starts[h], self.ends[h], resource, category, service, usage_type, float(cost),
                        float(list_cost), pricing, tags, line_item_type)


def _time(epoch: int | np.integer) -> datetime:
    return datetime.fromtimestamp(int(epoch), timezone.utc)


def spot_hourly(book: PriceBook, spec: BillingSpec, instance_type: str) -> float:
    """The spot price of a node: the scenario's ``spotDiscount`` off list, else the book's spot price."""
    if spec.spot_discount is None:
        return book.node_hourly(instance_type, "spot")
    return book.node_hourly(instance_type) * (1.0 - spec.spot_discount)


def covered_share(od_cost: np.ndarray, coverage: float) -> np.ndarray:
    """[N, H] on-demand cost the plan covers: per hour ``coverage`` of the total, filled in row order."""
    budget = coverage * od_cost.sum(axis=0)
    before = np.cumsum(od_cost, axis=0) - od_cost
    return np.clip(budget[None, :] - before, 0.0, od_cost)


def _node_tags(state: ClusterState, node: Node) -> dict[str, str]:
    tags = {"aws:eks:cluster-name": state.cluster, "eks:cluster-name": state.cluster,
            f"kubernetes.io/cluster/{state.cluster}": "owned"}
    if node.node_group:
        tags["eks:nodegroup-name"] = node.node_group
    return tags


def _node_lines(ctx: _Context, plan: SavingsPlan) -> Iterator[BillLine]:
    nodes = sorted((n for n in ctx.state.nodes if n.instance_id), key=lambda n: n.instance_id)
    if not nodes:
        return
    shares = hour_shares(nodes, ctx.hours)
    list_hourly = np.array([ctx.book.node_hourly(n.instance_type) for n in nodes])
    spot = np.array([n.capacity_type.lower() == "spot" for n in nodes])
    od_cost = np.where(spot, 0.0, list_hourly)[:, None] * shares
    covered = covered_share(od_cost, plan.coverage)
    for i, node in enumerate(nodes):
        tags = _node_tags(ctx.state, node)
        if spot[i]:
            price = spot_hourly(ctx.book, ctx.spec, node.instance_type)
            kind = ctx.usage_type(f"SpotUsage:{node.instance_type}")
            for h in np.flatnonzero(shares[i]):
                yield ctx.line(h, node.instance_id, CostCategory.NODE, "AmazonEC2", kind, price * shares[i, h],
                               list_hourly[i] * shares[i, h], tags, PriceSource.SPOT)
            continue
        kind = ctx.usage_type(f"BoxUsage:{node.instance_type}")
        for h in np.flatnonzero(shares[i]):
            part, rest = covered[i, h], od_cost[i, h] - covered[i, h]
            if part > 0:
                yield ctx.line(h, node.instance_id, CostCategory.NODE, "AmazonEC2", kind,
                               part * (1.0 - plan.discount), part, tags, line_item_type=SP_COVERED)
            if rest > 1e-12:
                yield ctx.line(h, node.instance_id, CostCategory.NODE, "AmazonEC2", kind, rest, rest, tags)


def _volume_lines(ctx: _Context) -> Iterator[BillLine]:
    seen: set[str] = set()
    for v in ctx.state.volumes:
        vid = v.id if v.source.value == "ebs" else v.backing_volume_id
        if not vid or vid in seen:
            continue
        seen.add(vid)
        hourly = ctx.book.volume_monthly(v.volume_type, v.size_gib, iops=v.iops,
                                         throughput=v.throughput) / ctx.book.hours_per_month
        tags = dict(v.tags) if v.source.value == "ebs" else _pv_tags(ctx.state, v)
        kind = ctx.usage_type(f"EBS:VolumeUsage.{v.volume_type}")
        for h in range(len(ctx.hours)):
            yield ctx.line(h, vid, CostCategory.VOLUME, "AmazonEC2", kind, hourly, hourly, tags)


def _pv_tags(state: ClusterState, volume) -> dict[str, str]:
    """Tags the EBS CSI driver writes on the volumes it creates."""
    tags = {"ebs.csi.aws.com/cluster": "true", f"kubernetes.io/cluster/{state.cluster}": "owned",
            "kubernetes.io/created-for/pv/name": volume.id, "CSIVolumeName": volume.id}
    if volume.claim and "/" in volume.claim:
        namespace, name = volume.claim.split("/", 1)
        tags |= {"kubernetes.io/created-for/pvc/namespace": namespace, "kubernetes.io/created-for/pvc/name": name}
    return tags | dict(volume.tags)


def _control_plane_lines(ctx: _Context) -> Iterator[BillLine]:
    hourly = ctx.book.control_plane_hourly
    arn = ctx.arn("eks", f"cluster/{ctx.state.cluster}")
    kind = ctx.usage_type("AmazonEKS-Hours:perCluster", always=True)
    for h in range(len(ctx.hours)):
        yield ctx.line(h, arn, CostCategory.CONTROL_PLANE, "AmazonEKS", kind, hourly, hourly,
                       {"aws:eks:cluster-name": ctx.state.cluster})


def _network_lines(ctx: _Context) -> Iterator[BillLine]:
    name = ctx.state.cluster
    for i in range(ctx.spec.load_balancers):
        raw = digest(ctx.seed, "nlb", name, i).hex()
        arn = ctx.arn("elasticloadbalancing", f"loadbalancer/net/k8s-ingress-{raw[:10]}/{raw[10:26]}")
        tags = ctx.cluster_tag | {"elbv2.k8s.aws/cluster": name, "service.k8s.aws/resource": "LoadBalancer",
                                  "service.k8s.aws/stack": f"ingress/ingress-{i}"}
        cost = NLB_HOURLY + NLB_LCU_HOURLY * LCUS_PER_HOUR
        for h in range(len(ctx.hours)):
            yield ctx.line(h, arn, CostCategory.LOAD_BALANCER, "AWSELB", ctx.usage_type("LoadBalancerUsage"),
                           cost, cost, tags)
    for i in range(ctx.spec.nat_gateways):
        nat = "nat-0" + digest(ctx.seed, "nat", name, i).hex()[:16]
        tags = ctx.cluster_tag | {"Name": f"{name}-nat-{i}", "alpha.eksctl.io/cluster-name": name}
        gb = _hourly_amounts(ctx, "nat", i, mean=2.0)
        for h in range(len(ctx.hours)):
            yield ctx.line(h, nat, CostCategory.NAT_GATEWAY, "AmazonEC2", ctx.usage_type("NatGateway-Hours"),
                           NAT_HOURLY, NAT_HOURLY, tags)
            yield ctx.line(h, nat, CostCategory.NAT_GATEWAY, "AmazonEC2", ctx.usage_type("NatGateway-Bytes"),
                           gb[h] * NAT_PER_GB, gb[h] * NAT_PER_GB, tags)


def _data_transfer_lines(ctx: _Context) -> Iterator[BillLine]:
    if ctx.spec.data_transfer_gb_per_day <= 0:
        return
    gb = _hourly_amounts(ctx, "egress", 0, mean=ctx.spec.data_transfer_gb_per_day / 24.0)
    kind = ctx.usage_type("DataTransfer-Out-Bytes")
    for h in range(len(ctx.hours)):
        cost = gb[h] * DATA_TRANSFER_PER_GB
        yield ctx.line(h, "", CostCategory.OTHER, "AWSDataTransfer", kind, cost, cost, {})


def _hourly_amounts(ctx: _Context, what: str, index: int, *, mean: float) -> np.ndarray:
    """Seeded hourly amounts around ``mean`` with a daily cycle (busier in the afternoon, UTC)."""
    rng = np.random.default_rng(seed_of(ctx.seed, ctx.state.cluster, what, index))
    hour_of_day = (ctx.hours // 3600) % 24
    cycle = 1.0 + 0.4 * np.sin((hour_of_day - 8) / 24.0 * 2 * np.pi)
    return mean * cycle * rng.uniform(0.8, 1.2, size=len(ctx.hours))
