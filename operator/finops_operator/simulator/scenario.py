"""Scenario spec: the YAML a person writes to describe a simulated cluster.

Example (every key is documented by :func:`parse_scenario`; patterns and their
parameters are listed in :mod:`.patterns`)::

    cluster: demo-eks
    region: us-east-1
    days: 14
    stepSeconds: 300
    seed: 42
    end: "2026-11-20T00:00:00Z"     # optional; default: now rounded down to the step
    nodeGroups:
      - {name: general, instanceType: m5.xlarge, count: 4, zone: us-east-1a}
    workloads:
      - kind: Deployment            # Deployment|StatefulSet|DaemonSet|CronJob
        namespace: payments
        name: payments-api
        replicas: 3
        labels: {team: payments}
        hpa: {minReplicas: 2, maxReplicas: 10, targetCPUUtilizationPercentage: 70}
        pdb: {disruptionsAllowed: 0}
        containers:
          - name: api
            requests: {cpu: "1", memory: 2Gi}
            limits: {cpu: "2", memory: 2Gi}
            cpu: {pattern: daily, base: 0.15, amplitude: 0.10, noise: 0.05}
            memory: {pattern: steady, base: 600Mi, noise: 0.03}
    volumes:
      - {id: vol-0a1b2c3d4e5f60718, source: ebs, sizeGib: 100, type: gp3, state: available, ageDays: 40}

Optional keys beyond that: workload ``podAnnotations``, ``nodeGroup`` (pin to a
group), ``ageDays`` (created that many days before the end: no samples before);
container ``role`` (app|init|sidecar), ``gaps`` (share of points missing, 0..0.5);
node group ``capacityType``, ``labels``, ``annotations``, ``ageDays``, ``minSize``, ``maxSize``; explicit
``nodes`` entries ``{name, instanceType, nodeGroup, zone, labels, annotations,
unschedulable, ageDays}``; volume ``claim``, ``zone``, ``storageClass``, ``iops``,
``throughput``, ``backingVolumeId``, ``tags``.

Business series for unit economics (orders, active users; :mod:`.business`) follow an optional
``business`` block: ``{seed, series: [{name, perCoreHour, namespaces, noise, dailyGrowth}]}``.

The bill the simulator writes (:mod:`.billing`) follows an optional ``billing``
block; every key is optional, the defaults are shown::

    billing:
      accountId: "123456789012"     # the payer/usage account on the CUR lines (12 digits)
      savingsPlanCoverage: 0.0      # share of each hour's on-demand EC2 cost a Compute Savings Plan covers, 0..1
      savingsPlanDiscount: 0.28     # the plan's effective discount off on-demand, 0..<1
      spotDiscount: null            # spot price = on-demand x (1 - spotDiscount); null: the price book's
      loadBalancers: 1              # NLBs tagged kubernetes.io/cluster/<cluster>: owned
      natGateways: 1                # NAT gateways tagged for the cluster
      dataTransferGbPerDay: 20      # internet egress billed to the account, not tied to the cluster (OTHER)

Errors are :class:`ConfigError` naming the file and the field path, e.g.
``workloads[3].containers[0].cpu.pattern: unknown pattern 'sine'; use one of ...``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import ConfigError, QuantityError
from ..models import HPA, ContainerRole
from ..units import parse_cpu, parse_memory
from .billspec import BillingSpec, parse_billing
from .business import BusinessSpec, parse_business
from .patterns import PATTERNS, QUANTITY_PARAMS
from .placement import INSTANCE_TYPES
from .reading import Reader as _Obj
from .reading import choice as _choice

KINDS = ("Deployment", "StatefulSet", "DaemonSet", "CronJob")


@dataclass(slots=True)
class SeriesSpec:
    """One usage curve: pattern name, parameters in base units, relative noise."""

    pattern: str
    params: dict[str, float] = field(default_factory=dict)
    noise: float = 0.05


@dataclass(slots=True)
class ContainerSpec:
    name: str
    role: ContainerRole = ContainerRole.APP
    requests: dict[str, str] = field(default_factory=dict)   # {"cpu": "1", "memory": "2Gi"} as written
    limits: dict[str, str] = field(default_factory=dict)
    cpu: SeriesSpec | None = None
    memory: SeriesSpec | None = None
    gaps: float = 0.0


@dataclass(slots=True)
class WorkloadSpec:
    kind: str
    namespace: str
    name: str
    containers: list[ContainerSpec]
    replicas: int = 1
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    pod_annotations: dict[str, str] = field(default_factory=dict)
    hpa: HPA | None = None
    pdb_disruptions_allowed: int | None = None
    node_group: str | None = None
    age_days: float | None = None


@dataclass(slots=True)
class NodeGroupSpec:
    name: str
    instance_type: str
    count: int
    zone: str | None = None
    capacity_type: str = "on-demand"
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    age_days: float = 30.0
    min_size: int | None = None
    max_size: int | None = None


@dataclass(slots=True)
class NodeSpec:
    name: str
    instance_type: str
    node_group: str | None = None
    zone: str | None = None
    capacity_type: str = "on-demand"
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    unschedulable: bool = False
    age_days: float = 30.0


@dataclass(slots=True)
class VolumeSpec:
    id: str
    source: str                 # ebs | pv
    size_gib: int
    type: str
    state: str
    age_days: float = 0.0
    tags: dict[str, str] = field(default_factory=dict)
    claim: str | None = None
    zone: str | None = None
    storage_class: str | None = None
    iops: int | None = None
    throughput: int | None = None
    backing_volume_id: str | None = None


@dataclass(slots=True)
class ScenarioSpec:
    cluster: str
    region: str
    workloads: list[WorkloadSpec]
    days: float = 14.0
    step_seconds: int = 300
    seed: int = 0
    end: datetime | None = None
    node_groups: list[NodeGroupSpec] = field(default_factory=list)
    nodes: list[NodeSpec] = field(default_factory=list)
    volumes: list[VolumeSpec] = field(default_factory=list)
    billing: BillingSpec = field(default_factory=BillingSpec)
    business: BusinessSpec | None = None          # business series for unit economics (None: the defaults)


# --------------------------------------------------------------------------- reading


def _series(data: Any, path: str, source: str, resource: str, limit: float | None) -> SeriesSpec:
    pattern_name = data.get("pattern") if isinstance(data, dict) else None
    if pattern_name not in PATTERNS:
        _Obj(data, path, source, set(data) if isinstance(data, dict) else set())
        raise ConfigError(f"unknown pattern {pattern_name!r}; use one of {', '.join(PATTERNS)}",
                          source=source, field=f"{path}.pattern")
    pattern = PATTERNS[pattern_name]
    if pattern.memory_only and resource != "memory":
        raise ConfigError(f"pattern {pattern_name!r} applies to memory only", source=source, field=f"{path}.pattern")
    obj = _Obj(data, path, source, {"pattern", "noise", *pattern.params})
    params: dict[str, float] = {}
    for name in pattern.params:
        if name not in data:
            continue
        if name in QUANTITY_PARAMS:
            params[name] = _quantity(obj, name, resource)
        else:
            params[name] = obj.get(name, float)
    if "limit" in pattern.params and "limit" not in params:
        if limit is None:
            obj.fail(f"pattern {pattern_name!r} needs a limit: set limits.memory on the container "
                     "or a 'limit' parameter", "limit")
        params["limit"] = float(limit)
    missing = [n for n, d in pattern.params.items() if d is None and n not in params]
    if missing:
        obj.fail("is required", missing[0])
    noise = obj.get("noise", float, 0.05, low=0.0)
    return SeriesSpec(pattern_name, params, noise)


def _quantity(obj: _Obj, key: str, resource: str) -> float:
    value = obj.data[key]
    try:
        return float(parse_cpu(value) if resource == "cpu" else parse_memory(value))
    except QuantityError as exc:
        raise ConfigError(exc.message, source=obj.source, field=obj.where(key)) from None


def _resources(obj: _Obj, key: str) -> dict[str, str]:
    res = _Obj(obj.get(key, dict, {}), obj.where(key), obj.source, {"cpu", "memory"})
    out: dict[str, str] = {}
    for name, parse in (("cpu", parse_cpu), ("memory", parse_memory)):
        if name in res.data:
            try:
                parse(res.data[name])
            except QuantityError as exc:
                res.fail(exc.message, name)
            out[name] = str(res.data[name])
    return out


def _container(data: Any, path: str, source: str) -> ContainerSpec:
    obj = _Obj(data, path, source, {"name", "role", "requests", "limits", "cpu", "memory", "gaps"})
    role = _choice(obj, "role", tuple(r.value for r in ContainerRole), "app")
    limits = _resources(obj, "limits")
    spec = ContainerSpec(obj.get("name", str), ContainerRole(role), _resources(obj, "requests"), limits,
                         gaps=obj.get("gaps", float, 0.0, low=0.0))
    if spec.gaps > 0.5:
        obj.fail(f"must be between 0 and 0.5, got {spec.gaps}", "gaps")
    cpu_limit = parse_cpu(limits["cpu"]) if "cpu" in limits else None
    mem_limit = parse_memory(limits["memory"]) if "memory" in limits else None
    if "cpu" in data and data["cpu"] is not None:
        spec.cpu = _series(data["cpu"], f"{path}.cpu", source, "cpu", cpu_limit)
    if "memory" in data and data["memory"] is not None:
        spec.memory = _series(data["memory"], f"{path}.memory", source, "memory", mem_limit)
    return spec


def _workload(data: Any, path: str, source: str) -> WorkloadSpec:
    obj = _Obj(data, path, source, {"kind", "namespace", "name", "replicas", "labels", "annotations",
                                    "podAnnotations", "hpa", "pdb", "containers", "nodeGroup", "ageDays"})
    containers = [_container(item, p, source) for p, item in obj.items("containers", required=True)]
    if not containers:
        obj.fail("needs at least one container", "containers")
    names = [c.name for c in containers]
    if len(set(names)) != len(names):
        obj.fail(f"container names must be unique, got {names}", "containers")
    spec = WorkloadSpec(_choice(obj, "kind", KINDS), obj.get("namespace", str), obj.get("name", str),
                        containers, obj.get("replicas", int, 1, low=0), obj.strmap("labels"),
                        obj.strmap("annotations"), obj.strmap("podAnnotations"),
                        node_group=obj.get("nodeGroup", str, None),
                        age_days=obj.get("ageDays", float, None, low=0.0))
    if "hpa" in data and data["hpa"] is not None:
        hpa = _Obj(data["hpa"], obj.where("hpa"), source,
                   {"minReplicas", "maxReplicas", "targetCPUUtilizationPercentage",
                    "targetMemoryUtilizationPercentage"})
        spec.hpa = HPA(spec.name, hpa.get("minReplicas", int, 1, low=1), hpa.get("maxReplicas", int, low=1),
                       hpa.get("targetCPUUtilizationPercentage", int, None, low=1),
                       hpa.get("targetMemoryUtilizationPercentage", int, None, low=1), spec.replicas)
        if spec.hpa.max_replicas < spec.hpa.min_replicas:
            hpa.fail("must be >= minReplicas", "maxReplicas")
    if "pdb" in data and data["pdb"] is not None:
        pdb = _Obj(data["pdb"], obj.where("pdb"), source, {"disruptionsAllowed"})
        spec.pdb_disruptions_allowed = pdb.get("disruptionsAllowed", int, 0, low=0)
    return spec


def _node_group(data: Any, path: str, source: str) -> NodeGroupSpec:
    obj = _Obj(data, path, source, {"name", "instanceType", "count", "zone", "capacityType", "labels",
                                    "annotations", "ageDays", "minSize", "maxSize"})
    spec = NodeGroupSpec(obj.get("name", str), _instance_type(obj), obj.get("count", int, low=0),
                         obj.get("zone", str, None), _choice(obj, "capacityType", ("on-demand", "spot"), "on-demand"),
                         obj.strmap("labels"), obj.strmap("annotations"), obj.get("ageDays", float, 30.0, low=0.0),
                         obj.get("minSize", int, None, low=0), obj.get("maxSize", int, None, low=0))
    if spec.min_size is not None and spec.min_size > spec.count:
        obj.fail(f"must be <= count ({spec.count}), got {spec.min_size}", "minSize")
    if spec.max_size is not None and spec.max_size < spec.count:
        obj.fail(f"must be >= count ({spec.count}), got {spec.max_size}", "maxSize")
    return spec


def _node(data: Any, path: str, source: str) -> NodeSpec:
    obj = _Obj(data, path, source, {"name", "instanceType", "nodeGroup", "zone", "capacityType", "labels",
                                    "annotations", "unschedulable", "ageDays"})
    return NodeSpec(obj.get("name", str), _instance_type(obj), obj.get("nodeGroup", str, None),
                    obj.get("zone", str, None), _choice(obj, "capacityType", ("on-demand", "spot"), "on-demand"),
                    obj.strmap("labels"), obj.strmap("annotations"), obj.get("unschedulable", bool, False),
                    obj.get("ageDays", float, 30.0, low=0.0))


def _instance_type(obj: _Obj) -> str:
    value = obj.get("instanceType", str)
    if value not in INSTANCE_TYPES:
        obj.fail(f"unknown instance type {value!r}; use one of {', '.join(INSTANCE_TYPES)}", "instanceType")
    return value


def _volume(data: Any, path: str, source: str) -> VolumeSpec:
    obj = _Obj(data, path, source, {"id", "source", "sizeGib", "type", "state", "ageDays", "tags", "claim",
                                    "zone", "storageClass", "iops", "throughput", "backingVolumeId"})
    kind = _choice(obj, "source", ("ebs", "pv"))
    states = ("available", "in-use") if kind == "ebs" else ("Available", "Bound", "Released", "Failed")
    return VolumeSpec(obj.get("id", str), kind, obj.get("sizeGib", int, low=1), obj.get("type", str),
                      _choice(obj, "state", states), obj.get("ageDays", float, 0.0, low=0.0), obj.strmap("tags"),
                      obj.get("claim", str, None), obj.get("zone", str, None), obj.get("storageClass", str, None),
                      obj.get("iops", int, None, low=0), obj.get("throughput", int, None, low=0),
                      obj.get("backingVolumeId", str, None))


def _end(obj: _Obj) -> datetime | None:
    text = obj.get("end", (str, datetime), None)
    if text is None or isinstance(text, datetime):
        return text if text is None or text.tzinfo else text.replace(tzinfo=timezone.utc)
    try:
        end = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        obj.fail(f"{text!r} is not an ISO 8601 time; write e.g. '2026-11-20T00:00:00Z'", "end")
    return end if end.tzinfo else end.replace(tzinfo=timezone.utc)


def parse_scenario(data: Any, *, source: str = "scenario") -> ScenarioSpec:
    """Validate a scenario mapping (as loaded from YAML) into a :class:`ScenarioSpec`."""
    obj = _Obj(data, "", source, {"cluster", "region", "days", "stepSeconds", "seed", "end", "nodeGroups",
                                  "workloads", "nodes", "volumes", "billing", "business"})
    spec = ScenarioSpec(obj.get("cluster", str), obj.get("region", str, "us-east-1"),
                        [_workload(item, p, source) for p, item in obj.items("workloads", required=True)],
                        obj.get("days", float, 14.0, low=0.01), obj.get("stepSeconds", int, 300, low=1),
                        obj.get("seed", int, 0), _end(obj),
                        [_node_group(item, p, source) for p, item in obj.items("nodeGroups")],
                        [_node(item, p, source) for p, item in obj.items("nodes")],
                        [_volume(item, p, source) for p, item in obj.items("volumes")],
                        parse_billing(obj.data.get("billing"), source),
                        parse_business(obj.data.get("business"), source))
    refs = [(w.kind, w.namespace, w.name) for w in spec.workloads]
    for i, ref in enumerate(refs):
        if ref in refs[:i]:
            obj.fail(f"duplicate workload {'/'.join(ref)}", f"workloads[{i}].name")
    groups = {g.name for g in spec.node_groups} | {n.node_group for n in spec.nodes if n.node_group}
    for i, w in enumerate(spec.workloads):
        if w.node_group and w.node_group not in groups:
            obj.fail(f"unknown node group {w.node_group!r}; defined: {', '.join(sorted(groups)) or 'none'}",
                     f"workloads[{i}].nodeGroup")
    if spec.days * 86400 < 2 * spec.step_seconds:
        obj.fail("the window must hold at least two steps (days x 86400 >= 2 x stepSeconds)", "days")
    return spec


def load_scenario(path: str | Path) -> ScenarioSpec:
    """Read a scenario YAML file (bounded, through :mod:`..safeio`) and validate it."""
    import yaml

    from .. import safeio

    path = Path(path)
    text = safeio.read_user_file(path, safeio.MAX_SCENARIO_BYTES)   # UnreadableFile names the file
    try:
        docs = safeio.load_yaml(text, str(path))
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", source=str(path)) from None
    if len(docs) > 1:
        raise ConfigError(f"expected one YAML document, found {len(docs)}", source=str(path))
    return parse_scenario(docs[0] if docs else None, source=str(path))
