"""Helpers for running the whole loop (``reconcile.run_policy``) on real servers.

The world of the full-loop tests is the demo scenario (``data/demo-scenario.yaml``)
moved so its fourteen days end ~3 hours ago:

* **Prometheus**: Debian's prometheus, backfilled with the simulation's OpenMetrics
  (``promtool tsdb create-blocks-from openmetrics``). Usage, restarts, OOM kills,
  HPAs and node usage are *queried* from it.
* **AWS**: moto in server mode; the scenario's EBS volumes are created with boto3
  (tag ``Name`` = the name Terraform gives them) and the in-use one is attached to
  an instance. moto stamps every volume "now"; AWS would report the real creation
  time, so :func:`create_scenario_volumes` backdates moto's record of it (the only
  thing here that reaches into moto).
* **Kubernetes inventory**: the simulator's ClusterState (workloads, pods, nodes,
  PDBs, PersistentVolumes) stands in for the API server. Everything Prometheus can
  tell (restart and OOM counts, node usage) is wiped from it first, so the
  detectors only see those through the query path. :func:`argo_sync` plays Argo CD
  after a merge: it reads the merged manifests from the bare repo with the real
  manifest parser and writes their requests and limits into the inventory.
* **Git/GitHub**: a bare repo seeded with ``examples/gitops`` behind the GitHub
  emulator.

The simulated clock moves past the backfilled history (run 3 happens after the
settle period), so :class:`LoopReader` always reads the fixed window Prometheus
holds; the runs' ``now`` only drives the ledger, guardrails and PR lifecycle.
"""
from __future__ import annotations

import copy
import io
import subprocess
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from finops_operator.models import ClusterState, VolumeSource, Window
from finops_operator.simulator import load_scenario, simulate
from finops_operator.simulator.engine import Simulation
from finops_operator.sources.aws import AwsSource
from finops_operator.sources.kubernetes import (
    WORKLOAD_KINDS,
    Inventory,
    build_inventory,
)
from finops_operator.sources.prometheus import PrometheusSource
from finops_operator.sources.promql import Scope
from finops_operator.sources.state import build_state
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "gitops"
DEMO_SCENARIO = ROOT / "operator" / "finops_operator" / "data" / "demo-scenario.yaml"
DEMO_POLICY = ROOT / "operator" / "finops_operator" / "data" / "demo-policy.yaml"


def gitops_files() -> dict[str, str]:
    """Every file of examples/gitops, path -> text (to seed a bare repo)."""
    return {str(p.relative_to(EXAMPLES)): p.read_text() for p in sorted(EXAMPLES.rglob("*")) if p.is_file()}


def demo_simulation(end: datetime) -> Simulation:
    """The demo scenario, ending at ``end`` instead of its fixed date."""
    spec = load_scenario(DEMO_SCENARIO)
    return simulate(replace(spec, end=end))


def bare_inventory(state: ClusterState) -> ClusterState:
    """A deep copy of the simulated inventory without what only Prometheus should tell.

    Restart/OOM counts and node usage are cleared (they must come from the
    queries); EBS volumes are dropped (they come from AWS); PersistentVolumes stay.
    """
    inv = copy.deepcopy(state)
    inv.usage = {}
    for workload in inv.workloads:
        for container in workload.containers:
            container.restarts, container.oom_kills, container.last_terminated_reason = 0, 0, None
    for node in inv.nodes:
        node.cpu_usage = node.memory_usage = None
    inv.volumes = [v for v in inv.volumes if v.source == VolumeSource.PV]
    return inv


@dataclass
class LoopReader:
    """A ``reconcile.StateReader``: simulated inventory + REAL Prometheus usage + REAL (moto) volumes."""

    inventory: ClusterState
    prometheus: PrometheusSource
    data_window: Window
    aws: AwsSource | None = None
    scope: Scope = field(default_factory=Scope)
    reads: int = 0
    queries: list[int] = field(default_factory=list)     # HTTP requests per read
    chunks: list[int] = field(default_factory=list)      # time slices the range queries needed per read

    def __call__(self, window: Window) -> ClusterState:
        self.reads += 1
        # The export samples every step exactly on the query grid: rate() over one step
        # returns each step's simulated cores (see test_prometheus_simulator).
        usage = self.prometheus.collect(self.scope, self.data_window, rate_window_s=self.data_window.step_seconds)
        self.queries.append(usage.queries)
        self.chunks.append(usage.chunks)
        volumes = self.aws.unattached_volumes() if self.aws is not None else None
        inv = copy.deepcopy(self.inventory)     # build_state merges Prometheus' counts into the containers
        inventory = Inventory(inv.workloads, inv.pods, inv.nodes, inv.pdbs, inv.volumes)
        return build_state(cluster=inv.cluster, region=inv.region, window=usage.window, inventory=inventory,
                           usage=usage, aws_volumes=volumes)


# --------------------------------------------------------------------------- AWS


def create_scenario_volumes(ec2, sim: Simulation, data_end: datetime) -> dict[str, str]:
    """Create the scenario's EBS volumes in moto; returns Name tag -> moto volume id.

    In-use volumes are attached to a (moto) instance; creation times are backdated
    to ``data_end - ageDays`` as AWS would report them.
    """
    ids: dict[str, str] = {}
    ages = {v.tags.get("Name"): v.created_at for v in sim.state.volumes}
    instance = None
    for vol in (v for v in sim.state.volumes if v.source == VolumeSource.EBS):
        zone = vol.zone or f"{sim.state.region}a"
        tags = [{"Key": k, "Value": v} for k, v in vol.tags.items()]
        made = ec2.create_volume(AvailabilityZone=zone, Size=vol.size_gib, VolumeType=vol.volume_type,
                                 TagSpecifications=[{"ResourceType": "volume", "Tags": tags}])
        ids[vol.tags["Name"]] = made["VolumeId"]
        if vol.state == "in-use":
            if instance is None:
                instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                             Placement={"AvailabilityZone": zone})["Instances"][0]["InstanceId"]
            ec2.attach_volume(VolumeId=made["VolumeId"], InstanceId=instance, Device="/dev/sdf")
    _backdate(ids, ages, sim, data_end)
    return ids


def _backdate(ids: dict[str, str], ages: dict, sim: Simulation, data_end: datetime) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[DEFAULT_ACCOUNT_ID][sim.state.region]
    sim_end = sim.state.window.end
    for name, volume_id in ids.items():
        created = ages.get(name)
        if created is not None:
            when = data_end - (sim_end - created)
            backend.volumes[volume_id].create_time = when.astimezone(UTC).replace(tzinfo=None)


# --------------------------------------------------------------------------- Argo CD


def _git(bare: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(bare), *args], check=True, capture_output=True, text=True,
                          timeout=60).stdout


def argo_sync(inventory: ClusterState, bare: Path, branch: str = "main") -> list[str]:
    """Apply the requests/limits of the manifests last merged into ``branch`` to ``inventory``.

    Reads the YAML files the last merge commit changed, parses their workloads with
    the operator's own manifest parser, and replaces each matching inventory
    container's resources. Returns ``["Kind/ns/name/container", ...]`` that changed.
    """
    files = [f for f in _git(bare, "diff", "--name-only", f"{branch}^1", branch).split()
             if f.endswith((".yaml", ".yml"))]
    yaml = YAML(typ="safe")
    objects: dict[str, list[dict]] = {}
    for path in files:
        text = _git(bare, "show", f"{branch}:{path}")
        for doc in yaml.load_all(io.StringIO(text)):
            if isinstance(doc, dict) and doc.get("kind") in WORKLOAD_KINDS:
                objects.setdefault(doc["kind"], []).append(doc)
    merged = {w.ref: w for w in build_inventory(objects).workloads}
    changed = []
    for workload in inventory.workloads:
        source = merged.get(workload.ref)
        for container in workload.containers if source else []:
            new = source.container(container.name)
            if new is not None and new.resources != container.resources:
                container.resources = copy.deepcopy(new.resources)
                changed.append(f"{workload.ref}/{container.name}")
    return changed


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def later(now: datetime, **delta: float) -> datetime:
    return now + timedelta(**delta)
