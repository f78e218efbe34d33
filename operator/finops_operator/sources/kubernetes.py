"""Cluster inventory from the Kubernetes API.

Two layers:

* :func:`build_inventory` is pure: it turns API objects (plain dicts, as
  ``kubectl get -o json`` or the client's raw JSON return them) into the
  models' Workloads, Pods, Nodes, PDBs and Volumes, resolving each pod's
  owning workload (Pod -> ReplicaSet -> Deployment, Pod -> Job -> CronJob).
* :class:`KubernetesSource` lists those objects with the official client,
  one LIST call per kind and namespace (never one call per workload).

Bad objects (an unparsable quantity, say) are skipped with a warning that
names the object and field; they never stop the scan of the others.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

from ..errors import DataSourceError, FinOpsError
from ..permissions import Rule
from ..models import (HPA, PDB, ConsolidationPolicy, Container, ContainerRole, DisruptionBudget, Node, NodePool, Pod,
                      Resources, Volume, VolumeSource, Workload, WorkloadRef, pod_requests)
from ..units import parse_cpu, parse_memory, parse_quantity

log = logging.getLogger(__name__)

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "CronJob")
NODE_GROUP_LABELS = ("eks.amazonaws.com/nodegroup", "alpha.eksctl.io/nodegroup-name", "karpenter.sh/nodepool",
                     "karpenter.sh/provisioner-name", "cloud.google.com/gke-nodepool", "kubernetes.azure.com/agentpool")
CAPACITY_LABELS = ("eks.amazonaws.com/capacityType", "karpenter.sh/capacity-type")
INSTANCE_TYPE_LABELS = ("node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type")
ZONE_LABEL = "topology.kubernetes.io/zone"
_INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")

Obj = dict[str, Any]


@dataclass
class Inventory:
    workloads: list[Workload] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    pdbs: list[PDB] = field(default_factory=list)
    volumes: list[Volume] = field(default_factory=list)
    node_pools: list[NodePool] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _name(obj: Obj) -> str:
    meta = _meta(obj)
    return f"{obj.get('kind', 'object')} {meta.get('namespace', '') + '/' if meta.get('namespace') else ''}{meta.get('name')}"


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _pod_template(obj: Obj) -> Obj:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return ((spec.get("template") or {}).get("spec")) or {}


_RESOURCE_FIELDS = {("requests", "cpu"): "cpu_request", ("limits", "cpu"): "cpu_limit",
                    ("requests", "memory"): "memory_request", ("limits", "memory"): "memory_limit"}


def parse_resources(container: Obj, where: str) -> Resources:
    res = container.get("resources") or {}
    out = Resources()
    for section in ("requests", "limits"):
        values = res.get(section) or {}
        for key in ("cpu", "memory"):
            if key not in values:
                continue
            raw = values[key]
            what = f"{where}.resources.{section}.{key}"
            number = parse_cpu(raw, what=what) if key == "cpu" else parse_memory(raw, what=what)
            setattr(out, _RESOURCE_FIELDS[(section, key)], number)
            out.raw[f"{section}.{key}"] = str(raw)
    return out


def _spec_containers(spec: Obj, where: str) -> list[Container]:
    """A pod spec's containers in declaration order: init containers (and native sidecars), then app ones."""
    out = []
    for i, c in enumerate(spec.get("initContainers") or []):
        role = ContainerRole.SIDECAR if c.get("restartPolicy") == "Always" else ContainerRole.INIT
        out.append(Container(c["name"], role, parse_resources(c, f"{where}: initContainers[{i}]")))
    for i, c in enumerate(spec.get("containers") or []):
        out.append(Container(c["name"], ContainerRole.APP, parse_resources(c, f"{where}: containers[{i}]")))
    return out


def _containers(obj: Obj) -> list[Container]:
    return _spec_containers(_pod_template(obj), _name(obj))


def _replicas(obj: Obj) -> int:
    if obj.get("kind") == "DaemonSet":
        return int((obj.get("status") or {}).get("desiredNumberScheduled") or 0)
    if obj.get("kind") == "CronJob":
        job = ((obj.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}
        return int(job.get("parallelism") or 1)
    replicas = (obj.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


def _owner_index(replicasets: Iterable[Obj], jobs: Iterable[Obj]) -> dict[tuple[str, str, str], WorkloadRef]:
    """(namespace, kind, name) of a ReplicaSet/Job -> the workload that owns it."""
    index: dict[tuple[str, str, str], WorkloadRef] = {}
    for obj, kind, parent in [(r, "ReplicaSet", "Deployment") for r in replicasets] + \
                             [(j, "Job", "CronJob") for j in jobs]:
        meta = _meta(obj)
        for ref in meta.get("ownerReferences") or []:
            if ref.get("kind") == parent:
                index[(meta.get("namespace", ""), kind, meta["name"])] = WorkloadRef(parent, meta.get("namespace", ""), ref["name"])
    return index


def pod_owner(pod: Obj, owners: dict[tuple[str, str, str], WorkloadRef]) -> WorkloadRef | None:
    meta = _meta(pod)
    ns = meta.get("namespace", "")
    for ref in meta.get("ownerReferences") or []:
        kind, name = ref.get("kind"), ref.get("name")
        if kind in ("StatefulSet", "DaemonSet", "Deployment", "CronJob"):
            return WorkloadRef(kind, ns, name)
        if kind in ("ReplicaSet", "Job"):
            return owners.get((ns, kind, name)) or WorkloadRef(kind, ns, name)
    return None


def _apply_statuses(pods: Iterable[Obj], owners, workloads: dict[WorkloadRef, Workload]) -> None:
    """Fold container restarts and OOM kills from pod statuses into the workloads' containers."""
    for pod in pods:
        ref = pod_owner(pod, owners)
        workload = workloads.get(ref) if ref else None
        if workload is None:
            continue
        status = pod.get("status") or {}
        for cs in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
            container = workload.container(cs.get("name", ""))
            if container is None:
                continue
            container.restarts += int(cs.get("restartCount") or 0)
            last = ((cs.get("lastState") or {}).get("terminated") or {}).get("reason")
            if last:
                container.last_terminated_reason = last
                if last == "OOMKilled":
                    container.oom_kills += 1


def _hpa(obj: Obj) -> tuple[WorkloadRef, HPA] | None:
    spec = obj.get("spec") or {}
    target = spec.get("scaleTargetRef") or {}
    if target.get("kind") not in WORKLOAD_KINDS:
        return None
    cpu = mem = None
    for metric in spec.get("metrics") or []:
        resource = metric.get("resource") or {}
        utilization = (resource.get("target") or {}).get("averageUtilization")
        if metric.get("type") == "Resource" and utilization is not None:
            if resource.get("name") == "cpu":
                cpu = int(utilization)
            elif resource.get("name") == "memory":
                mem = int(utilization)
    if cpu is None and spec.get("targetCPUUtilizationPercentage") is not None:   # autoscaling/v1
        cpu = int(spec["targetCPUUtilizationPercentage"])
    meta = _meta(obj)
    hpa = HPA(meta["name"], int(spec.get("minReplicas") or 1), int(spec.get("maxReplicas") or 1), cpu, mem,
              (obj.get("status") or {}).get("currentReplicas"))
    return WorkloadRef(target["kind"], meta.get("namespace", ""), target["name"]), hpa


def instance_id_from_provider_id(provider_id: object) -> str | None:
    """The EC2 instance id in a node's ``spec.providerID`` (``aws:///us-east-1a/i-0abc...``), else None.

    Other clouds, on-prem nodes, Fargate (``aws:///zone/fargate-...``) and
    malformed values are not errors: the node simply has no key into the bill.
    """
    if not isinstance(provider_id, str) or not provider_id.startswith("aws://"):
        return None
    last = provider_id.rstrip("/").rsplit("/", 1)[-1]
    return last if _INSTANCE_ID.match(last) else None


def node_identity(labels: dict[str, str]) -> tuple[str, str | None, str, str | None]:
    """(instance type, node group, capacity type, zone) from a node's labels (well-known names)."""
    group = next((labels[k] for k in NODE_GROUP_LABELS if labels.get(k)), None)
    capacity = next((labels[k] for k in CAPACITY_LABELS if labels.get(k)), "on-demand").lower().replace("_", "-")
    instance_type = next((labels[k] for k in INSTANCE_TYPE_LABELS if labels.get(k)), "unknown")
    return instance_type, group, "spot" if capacity == "spot" else "on-demand", labels.get(ZONE_LABEL)


def _node(obj: Obj) -> Node:
    meta, labels = _meta(obj), _meta(obj).get("labels") or {}
    alloc = (obj.get("status") or {}).get("allocatable") or {}
    name = meta["name"]
    instance_type, group, capacity, zone = node_identity(labels)
    return Node(
        name=name,
        instance_type=instance_type,
        node_group=group,
        allocatable_cpu=parse_cpu(alloc.get("cpu", "0"), what=f"Node {name}: status.allocatable.cpu"),
        allocatable_memory=parse_memory(alloc.get("memory", "0"), what=f"Node {name}: status.allocatable.memory"),
        zone=zone,
        capacity_type=capacity,
        labels=dict(labels), annotations=dict(meta.get("annotations") or {}),
        unschedulable=bool((obj.get("spec") or {}).get("unschedulable")),
        created_at=_time(meta.get("creationTimestamp")),
        instance_id=instance_id_from_provider_id((obj.get("spec") or {}).get("providerID")),
    )


def _volume(pv: Obj, classes: dict[str, Obj]) -> Volume:
    meta, spec, status = _meta(pv), pv.get("spec") or {}, pv.get("status") or {}
    name = meta["name"]
    size = parse_quantity((spec.get("capacity") or {}).get("storage", "0"), what=f"PersistentVolume {name}: spec.capacity.storage")
    handle = (spec.get("csi") or {}).get("volumeHandle") or (spec.get("awsElasticBlockStore") or {}).get("volumeID")
    sc_name = spec.get("storageClassName")
    params = (classes.get(sc_name) or {}).get("parameters") or {}
    claim = spec.get("claimRef") or {}
    return Volume(
        id=name, source=VolumeSource.PV, size_gib=max(1, int(round(size / 2**30))),
        # EBS CSI defaults to gp3, the in-tree provisioner to gp2 (when the class does not say).
        volume_type=params.get("type") or ("gp3" if spec.get("csi") else "gp2"),
        state=status.get("phase", "Unknown"), created_at=_time(meta.get("creationTimestamp")),
        tags=dict(meta.get("labels") or {}), claim=f"{claim['namespace']}/{claim['name']}" if claim.get("name") else None,
        storage_class=sc_name, backing_volume_id=handle.rsplit("/", 1)[-1] if handle else None,
    )


def node_pool(obj: Obj) -> NodePool:
    """A karpenter.sh/v1 NodePool; absent fields take Karpenter's defaults (WhenEmptyOrUnderutilized, 10%)."""
    meta, spec = _meta(obj), obj.get("spec") or {}
    disruption = spec.get("disruption") or {}
    policy = disruption.get("consolidationPolicy") or ConsolidationPolicy.WHEN_EMPTY_OR_UNDERUTILIZED.value
    known = [p.value for p in ConsolidationPolicy]
    if policy not in known:
        raise DataSourceError(f"consolidationPolicy {policy!r} is not a karpenter.sh/v1 policy ({', '.join(known)}); "
                              "upgrade the NodePool to karpenter.sh/v1", source=f"NodePool {meta.get('name')}",
                              field="spec.disruption.consolidationPolicy")
    budgets = [DisruptionBudget(str(b.get("nodes", "10%")), [str(r) for r in b.get("reasons") or []],
                                b.get("schedule"), b.get("duration"))
               for b in disruption.get("budgets") or [{"nodes": "10%"}]]
    after = disruption.get("consolidateAfter")
    return NodePool(meta["name"], ConsolidationPolicy(policy), None if after is None else str(after),
                    {str(k): str(v) for k, v in (spec.get("limits") or {}).items()}, budgets)


def _guard(items: Iterable[Obj], build, warnings: list[str]) -> list:
    """Build each object, turning a bad one into a warning instead of a failed scan."""
    out = []
    for obj in items:
        try:
            out.append(build(obj))
        except (FinOpsError, KeyError, TypeError, ValueError) as exc:
            warnings.append(f"{_name(obj)} skipped: {exc}")
    return out


def build_inventory(objects: dict[str, list[Obj]]) -> Inventory:
    """Objects by kind (Deployment, StatefulSet, DaemonSet, CronJob, ReplicaSet, Job, Pod, Node,
    HorizontalPodAutoscaler, PodDisruptionBudget, PersistentVolume, StorageClass, NodePool) -> Inventory."""
    inv = Inventory()
    get = lambda kind: objects.get(kind) or []  # noqa: E731
    owners = _owner_index(get("ReplicaSet"), get("Job"))

    def workload(obj: Obj) -> Workload:
        meta = _meta(obj)
        return Workload(WorkloadRef(obj["kind"], meta.get("namespace", ""), meta["name"]), _replicas(obj),
                        _containers(obj), dict(meta.get("labels") or {}), dict(meta.get("annotations") or {}))

    workloads = _guard((o for k in WORKLOAD_KINDS for o in get(k)), workload, inv.warnings)
    by_ref = {w.ref: w for w in workloads}
    for found in filter(None, (_hpa(h) for h in get("HorizontalPodAutoscaler"))):
        if found[0] in by_ref:
            by_ref[found[0]].hpa = found[1]
    _apply_statuses(get("Pod"), owners, by_ref)
    inv.workloads = workloads

    def pod(obj: Obj) -> Pod:
        meta, spec = _meta(obj), obj.get("spec") or {}
        cpu, mem = pod_requests(_spec_containers(spec, _name(obj)))
        owner = pod_owner(obj, owners)
        return Pod(meta.get("namespace", ""), meta["name"], spec.get("nodeName"), owner, cpu, mem,
                   dict(meta.get("labels") or {}), dict(meta.get("annotations") or {}),
                   daemonset=bool(owner and owner.kind == "DaemonSet"),
                   phase=(obj.get("status") or {}).get("phase", "Unknown"))

    inv.pods = [p for p in _guard(get("Pod"), pod, inv.warnings) if p.phase in ("Running", "Pending")]
    inv.nodes = _guard(get("Node"), _node, inv.warnings)
    inv.pdbs = _guard(get("PodDisruptionBudget"), lambda o: PDB(
        _meta(o).get("namespace", ""), _meta(o)["name"],
        dict(((o.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}),
        int((o.get("status") or {}).get("disruptionsAllowed") or 0)), inv.warnings)
    classes = {_meta(c)["name"]: c for c in get("StorageClass")}
    inv.volumes = _guard(get("PersistentVolume"), lambda o: _volume(o, classes), inv.warnings)
    inv.node_pools = _guard(get("NodePool"), node_pool, inv.warnings)
    for warning in inv.warnings:
        log.warning(warning)
    return inv


# --------------------------------------------------------------------------- the client edge

_LISTS = {   # kind -> (api class, namespaced list method, all-namespaces list method or None)
    "Deployment": ("AppsV1Api", "list_namespaced_deployment", "list_deployment_for_all_namespaces"),
    "StatefulSet": ("AppsV1Api", "list_namespaced_stateful_set", "list_stateful_set_for_all_namespaces"),
    "DaemonSet": ("AppsV1Api", "list_namespaced_daemon_set", "list_daemon_set_for_all_namespaces"),
    "ReplicaSet": ("AppsV1Api", "list_namespaced_replica_set", "list_replica_set_for_all_namespaces"),
    "CronJob": ("BatchV1Api", "list_namespaced_cron_job", "list_cron_job_for_all_namespaces"),
    "Job": ("BatchV1Api", "list_namespaced_job", "list_job_for_all_namespaces"),
    "Pod": ("CoreV1Api", "list_namespaced_pod", "list_pod_for_all_namespaces"),
    "HorizontalPodAutoscaler": ("AutoscalingV2Api", "list_namespaced_horizontal_pod_autoscaler",
                                "list_horizontal_pod_autoscaler_for_all_namespaces"),
    "PodDisruptionBudget": ("PolicyV1Api", "list_namespaced_pod_disruption_budget",
                            "list_pod_disruption_budget_for_all_namespaces"),
    "Node": ("CoreV1Api", None, "list_node"),
    "PersistentVolume": ("CoreV1Api", None, "list_persistent_volume"),
    "StorageClass": ("StorageV1Api", None, "list_storage_class"),
}

_RESOURCES = {   # kind -> (API group, resource): what the LISTs above need in RBAC
    "Deployment": ("apps", "deployments"), "StatefulSet": ("apps", "statefulsets"),
    "DaemonSet": ("apps", "daemonsets"), "ReplicaSet": ("apps", "replicasets"),
    "CronJob": ("batch", "cronjobs"), "Job": ("batch", "jobs"), "Pod": ("", "pods"),
    "HorizontalPodAutoscaler": ("autoscaling", "horizontalpodautoscalers"),
    "PodDisruptionBudget": ("policy", "poddisruptionbudgets"), "Node": ("", "nodes"),
    "PersistentVolume": ("", "persistentvolumes"), "StorageClass": ("storage.k8s.io", "storageclasses"),
}
# GitOps controllers' records (read only when their CRDs are installed; never required):
# kind -> (API group, versions to try, newest first, plural). See gitops/records.py.
_CONTROLLERS = {
    "Application": ("argoproj.io", ("v1alpha1",), "applications"),
    "Kustomization": ("kustomize.toolkit.fluxcd.io", ("v1", "v1beta2"), "kustomizations"),
    "HelmRelease": ("helm.toolkit.fluxcd.io", ("v2", "v2beta2", "v2beta1"), "helmreleases"),
}
PERMISSIONS = tuple(Rule("cluster", group, resource, ("list",), f"sources/kubernetes.py KubernetesSource._list({kind})")
                    for kind, (group, resource) in _RESOURCES.items()) + (
    Rule("cluster", "karpenter.sh", "nodepools", ("list",), "sources/kubernetes.py KubernetesSource.node_pools"),) + \
    tuple(Rule("cluster", group, plural, ("list",), f"sources/kubernetes.py KubernetesSource.read_controllers({kind})")
          for kind, (group, _, plural) in _CONTROLLERS.items())
NODE_POOLS = ("karpenter.sh", "v1", "nodepools")     # read only when Karpenter's CRD is installed


class KubernetesSource:
    """Lists the objects the detectors need: one LIST per kind (and namespace, when scoped)."""

    def __init__(self, api_client: Any):
        self.api_client = api_client
        self.calls = 0

    def _list(self, kind: str, namespaces: list[str] | None) -> list[Obj]:
        import kubernetes
        api_name, namespaced, cluster_wide = _LISTS[kind]
        api = getattr(kubernetes.client, api_name)(self.api_client)
        calls = [(getattr(api, cluster_wide), {})] if not namespaces or namespaced is None else \
                [(getattr(api, namespaced), {"namespace": ns}) for ns in namespaces]
        items: list[Obj] = []
        for method, kwargs in calls:
            self.calls += 1
            response = method(_preload_content=False, **kwargs)
            for item in json.loads(response.data).get("items", []):
                item.setdefault("kind", kind)
                items.append(item)
        return items

    def node_pools(self) -> list[Obj]:
        """Karpenter NodePools (cluster-scoped); none when the CRD is not installed (404)."""
        import kubernetes
        group, version, plural = NODE_POOLS
        api = kubernetes.client.CustomObjectsApi(self.api_client)
        self.calls += 1
        try:
            response = api.list_cluster_custom_object(group, version, plural, _preload_content=False)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return []
            raise
        items = json.loads(response.data).get("items", [])
        for item in items:
            item.setdefault("kind", "NodePool")
        return items

    def read(self, namespaces: list[str] | None = None) -> Inventory:
        """Read the inventory; ``namespaces=None`` means the whole cluster."""
        try:
            objects = {kind: self._list(kind, namespaces) for kind in _LISTS}
            objects["NodePool"] = self.node_pools()
        except Exception as exc:  # the client raises ApiException, urllib3 errors, ...
            status = getattr(exc, "status", None)
            raise DataSourceError(f"listing cluster objects failed ({status or type(exc).__name__}): "
                                  f"{getattr(exc, 'reason', exc)}", source="kubernetes") from None
        return build_inventory(objects)


    def read_controllers(self) -> tuple[dict[str, list[Obj]], list[str]]:
        """Argo CD Applications and Flux Kustomizations/HelmReleases, cluster-wide (they live in the
        controllers' namespaces, not the workloads'). A kind whose CRD is not installed (404) is absent,
        not an error; any other failure is a warning: the mapping then falls back to the policy's paths."""
        found: dict[str, list[Obj]] = {}
        warnings: list[str] = []
        for kind, (group, versions, plural) in _CONTROLLERS.items():
            try:
                items = self._list_custom(group, versions, plural)
            except Exception as exc:  # ApiException, urllib3 errors: the records are optional
                status = getattr(exc, "status", None)
                warnings.append(f"cannot list {plural}.{group} ({status or type(exc).__name__}); workloads it "
                                "deploys are mapped by spec.git.paths or the finops.dev/source annotation")
                continue
            for item in items:
                item.setdefault("kind", kind)
            found[kind] = items
        for warning in warnings:
            log.warning(warning)
        return found, warnings

    def _list_custom(self, group: str, versions: tuple[str, ...], plural: str) -> list[Obj]:
        import kubernetes
        api = kubernetes.client.CustomObjectsApi(self.api_client)
        for version in versions:
            self.calls += 1
            try:
                response = api.list_cluster_custom_object(group, version, plural, _preload_content=False)
            except kubernetes.client.ApiException as exc:
                if exc.status == 404:          # the CRD (or this version of it) is not installed
                    continue
                raise
            return list(json.loads(response.data).get("items", []))
        return []
