"""Compose a ClusterState from the live sources: Kubernetes inventory, Prometheus usage, AWS volumes.

:func:`build_state` is pure (tested on plain data); :class:`LiveStateReader` is
the edge that calls the sources and is what :func:`finops_operator.reconcile.run_policy`
reads the cluster through.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..models import ClusterState, Volume, VolumeSource, Window
from ..settings import PolicySettings
from .kubernetes import Inventory

if TYPE_CHECKING:
    from .aws import AwsSource
    from .kubernetes import KubernetesSource
    from .prometheus import PrometheusSource, UsageResult
    from .promql import Scope

log = logging.getLogger(__name__)


def build_state(*, cluster: str, region: str, window: Window, inventory: Inventory,
                usage: "UsageResult | None" = None, aws_volumes: list[Volume] | None = None) -> ClusterState:
    """Merge the sources; the inventory (what the API says now) wins over Prometheus' view of it.

    * usage is attached per workload container; Prometheus' OOM kills and restarts
      (from kube-state-metrics history) raise the counts seen in pod statuses.
    * HPAs only Prometheus knows (no RBAC to list them, say) fill gaps.
    * node usage from Prometheus is attached to the inventory's nodes.
    * unattached EBS volumes from AWS join the PVs; an EBS volume that backs a PV
      already in the inventory is not counted twice.
    """
    state = ClusterState(cluster, region, window, list(inventory.workloads), list(inventory.pods),
                         list(inventory.nodes), list(inventory.pdbs), list(inventory.volumes),
                         node_pools=list(inventory.node_pools))
    if usage is not None:
        _merge_usage(state, usage)
    if aws_volumes:
        backing = {v.backing_volume_id for v in state.volumes if v.source == VolumeSource.PV}
        state.volumes.extend(v for v in aws_volumes if v.id not in backing)
    return state


def _merge_usage(state: ClusterState, usage: "UsageResult") -> None:
    keys = {(w.ref, c.name) for w in state.workloads for c in w.containers}
    state.usage = {k: u for k, u in usage.usage.items() if (k.workload, k.container) in keys}
    missing = len(usage.usage) - len(state.usage)
    if missing:
        log.info("%d containers have usage in Prometheus but no workload in the inventory (deleted or out of scope)",
                 missing)
    by_ref = {w.ref: w for w in state.workloads}
    for key, seen in usage.containers.items():
        workload = by_ref.get(key.workload)
        container = workload.container(key.container) if workload else None
        if container is not None:
            container.oom_kills = max(container.oom_kills, seen.oom_kills)
            container.restarts = max(container.restarts, seen.restarts)
            container.last_terminated_reason = container.last_terminated_reason or seen.last_terminated_reason
    for ref, hpa in usage.hpas.items():
        if ref in by_ref and by_ref[ref].hpa is None:
            by_ref[ref].hpa = hpa
    for node in state.nodes:
        seen_node = usage.nodes.get(node.name)
        if seen_node is not None:
            node.cpu_usage, node.memory_usage = seen_node.cpu, seen_node.memory


@dataclass
class LiveStateReader:
    """Reads inventory, usage and volumes for a window (a ``reconcile.StateReader``).

    ``settings`` choose what usage is computed: the percentiles the policy needs and the
    right-sizers' business hours (``timeWindow``), applied on the server.

    Counts the requests each source made (``calls``) for the run summary and metrics.
    """

    cluster: str
    region: str
    kube: "KubernetesSource"
    prometheus: "PrometheusSource"
    scope: "Scope"
    namespaces: list[str] | None = None
    aws: "AwsSource | None" = None
    settings: PolicySettings = field(default_factory=PolicySettings)
    calls: dict[str, int] = field(default_factory=dict)
    controllers: bool = True        # read Argo CD / Flux records (gitops.records) when their CRDs exist

    def __call__(self, window: Window) -> ClusterState:
        from ..gitops.records import parse_records
        inventory = self.kube.read(self.namespaces)
        records = parse_records(self.kube.read_controllers()[0]) if self.controllers else []
        from ..stats import needed_percentiles
        detectors = self.settings.detectors
        usage = self.prometheus.collect(self.scope, window, percentiles=needed_percentiles(self.settings),
                                        time_windows={"cpu": detectors.cpu.time_window,
                                                      "memory": detectors.memory.time_window})
        volumes = self.aws.unattached_volumes() if self.aws is not None else None
        self.calls = {"kubernetes": self.kube.calls, "prometheus": usage.queries,
                      "aws": self.aws.total_calls if self.aws is not None else 0}
        state = build_state(cluster=self.cluster, region=self.region, window=usage.window, inventory=inventory,
                            usage=usage, aws_volumes=volumes)
        state.controllers = records
        return state
