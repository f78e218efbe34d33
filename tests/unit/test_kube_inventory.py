"""build_inventory: API objects (as kubectl -o json returns them) -> models."""
from finops_operator.models import ContainerRole, WorkloadRef
from finops_operator.sources.kubernetes import build_inventory


def deployment(name="api", ns="shop", replicas=3):
    return {"kind": "Deployment", "metadata": {"name": name, "namespace": ns, "labels": {"team": "web"},
                                               "annotations": {"finops.dev/source": "apps/shop/api.yaml"}},
            "spec": {"replicas": replicas, "template": {"spec": {
                "initContainers": [{"name": "migrate", "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}},
                                   {"name": "envoy", "restartPolicy": "Always",
                                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}],
                "containers": [{"name": "app", "resources": {"requests": {"cpu": "1000m", "memory": "2Gi"},
                                                             "limits": {"memory": "2G"}}},
                               {"name": "bare"}]}}}}


def replicaset(name, deploy, ns="shop"):
    return {"kind": "ReplicaSet", "metadata": {"name": name, "namespace": ns,
            "ownerReferences": [{"kind": "Deployment", "name": deploy}]}}


def pod(name, rs, node, ns="shop", oom=False, restarts=0):
    spec = deployment()["spec"]["template"]["spec"]
    return {"kind": "Pod", "metadata": {"name": name, "namespace": ns, "ownerReferences": [{"kind": "ReplicaSet", "name": rs}]},
            "spec": {**spec, "nodeName": node},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "app", "restartCount": restarts,
                 "lastState": {"terminated": {"reason": "OOMKilled"}} if oom else {}}]}}


def test_workloads_containers_owners_and_statuses():
    inv = build_inventory({
        "Deployment": [deployment()],
        "ReplicaSet": [replicaset("api-5d8f9", "api"), replicaset("api-77aa1", "api")],
        # a rollout: pods of two ReplicaSets collapse into one workload
        "Pod": [pod("api-5d8f9-aaaaa", "api-5d8f9", "n1", oom=True, restarts=2), pod("api-77aa1-bbbbb", "api-77aa1", "n2")],
        "HorizontalPodAutoscaler": [{"kind": "HorizontalPodAutoscaler", "metadata": {"name": "api", "namespace": "shop"},
                                     "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "api"}, "minReplicas": 2,
                                              "maxReplicas": 8, "metrics": [{"type": "Resource", "resource": {
                                                  "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]}}],
    })
    [w] = inv.workloads
    assert w.ref == WorkloadRef("Deployment", "shop", "api") and w.replicas == 3 and w.team == "web"
    roles = {c.name: c.role for c in w.containers}
    assert roles == {"migrate": ContainerRole.INIT, "envoy": ContainerRole.SIDECAR, "app": ContainerRole.APP,
                     "bare": ContainerRole.APP}
    app = w.container("app")
    assert app.resources.cpu_request == 1.0 and app.resources.raw["requests.cpu"] == "1000m"
    assert app.resources.memory_limit == 2 * 10**9 and app.resources.cpu_limit is None
    assert app.oom_kills == 1 and app.restarts == 2 and app.last_terminated_reason == "OOMKilled"
    assert w.container("bare").resources.cpu_request is None
    assert w.hpa.min_replicas == 2 and w.hpa.target_cpu_utilization == 70
    assert {p.owner for p in inv.pods} == {w.ref}
    # effective pod request: max(init 2 cores, app 1 + sidecar 0.1)
    assert inv.pods[0].cpu_request == 2.0 and inv.pods[0].memory_request == 2 * 2**30 + 128 * 2**20


def test_nodes_volumes_pdbs_and_bad_objects_become_warnings():
    node = {"kind": "Node", "metadata": {"name": "ip-10-0-1-1", "creationTimestamp": "2026-11-01T00:00:00Z",
            "labels": {"node.kubernetes.io/instance-type": "m5.xlarge", "eks.amazonaws.com/nodegroup": "general",
                       "eks.amazonaws.com/capacityType": "SPOT", "topology.kubernetes.io/zone": "us-east-1a"}},
            "status": {"allocatable": {"cpu": "3920m", "memory": "15340000Ki"}}}
    pv = {"kind": "PersistentVolume", "metadata": {"name": "pvc-1", "creationTimestamp": "2026-10-01T00:00:00Z"},
          "spec": {"capacity": {"storage": "50Gi"}, "storageClassName": "gp3", "claimRef": {"namespace": "a", "name": "data"},
                   "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": "vol-0123"}}, "status": {"phase": "Released"}}
    bad = deployment(name="broken")
    bad["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "lots"
    inv = build_inventory({"Node": [node], "PersistentVolume": [pv], "Deployment": [bad, deployment(name="ok")],
                           "StorageClass": [{"kind": "StorageClass", "metadata": {"name": "gp3"}, "parameters": {"type": "gp3"}}],
                           "PodDisruptionBudget": [{"kind": "PodDisruptionBudget", "metadata": {"name": "p", "namespace": "a"},
                                                    "spec": {"selector": {"matchLabels": {"app": "db"}}},
                                                    "status": {"disruptionsAllowed": 0}}]})
    [n] = inv.nodes
    assert (n.instance_type, n.node_group, n.capacity_type, n.zone) == ("m5.xlarge", "general", "spot", "us-east-1a")
    assert n.allocatable_cpu == 3.92 and n.allocatable_memory == 15340000 * 1024
    [v] = inv.volumes
    assert (v.state, v.size_gib, v.volume_type, v.claim, v.backing_volume_id) == ("Released", 50, "gp3", "a/data", "vol-0123")
    assert inv.pdbs[0].selector == {"app": "db"} and inv.pdbs[0].disruptions_allowed == 0
    assert [w.ref.name for w in inv.workloads] == ["ok"]
    assert any("Deployment shop/broken" in w and "requests.cpu" in w and "'lots'" in w for w in inv.warnings)


def test_effective_pod_request_follows_sidecar_declaration_order():
    from finops_operator.models import Container, Resources, pod_requests

    def c(name, role, cpu):
        return Container(name, role, Resources(cpu_request=cpu, memory_request=int(cpu * 2**30)))
    app, side = c("app", ContainerRole.APP, 1.0), c("envoy", ContainerRole.SIDECAR, 0.5)
    init = c("migrate", ContainerRole.INIT, 2.0)
    assert pod_requests([init, side, app]) == (2.0, 2 * 2**30)        # init runs before the sidecar starts
    assert pod_requests([side, init, app]) == (2.5, int(2.5 * 2**30))  # the sidecar runs beside the init
    assert pod_requests([side, app]) == (1.5, int(1.5 * 2**30))
    assert pod_requests([c("a", ContainerRole.APP, 0.25), Container("bare")]) == (0.25, 2**28)


def nodepool(name="general", disruption=None, limits=None):
    spec = {"template": {"spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass",
                                                    "name": "default"}}}}
    if disruption is not None:
        spec["disruption"] = disruption
    if limits is not None:
        spec["limits"] = limits
    return {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": name}, "spec": spec}


def test_karpenter_nodepools_with_their_disruption_policy_and_defaults():
    from finops_operator.models import ConsolidationPolicy, DisruptionBudget, NodePool
    inv = build_inventory({"NodePool": [
        nodepool(disruption={"consolidationPolicy": "WhenEmpty", "consolidateAfter": "30m",
                             "budgets": [{"nodes": "0", "reasons": ["Drifted"], "schedule": "@daily",
                                          "duration": "10m"}]},
                 limits={"cpu": 400, "memory": "1600Gi"}),
        nodepool("defaults"),
        nodepool("legacy", disruption={"consolidationPolicy": "WhenUnderutilized"})]})
    assert inv.node_pools == [
        NodePool("general", ConsolidationPolicy.WHEN_EMPTY, "30m", {"cpu": "400", "memory": "1600Gi"},
                 [DisruptionBudget("0", ["Drifted"], "@daily", "10m")]),
        NodePool("defaults", ConsolidationPolicy.WHEN_EMPTY_OR_UNDERUTILIZED, None, {}, [DisruptionBudget("10%")])]
    assert inv.warnings == ["NodePool legacy skipped: NodePool legacy: spec.disruption.consolidationPolicy: "
                            "consolidationPolicy 'WhenUnderutilized' is not a karpenter.sh/v1 policy (WhenEmpty, "
                            "WhenEmptyOrUnderutilized); upgrade the NodePool to karpenter.sh/v1"]


def test_node_instance_id_comes_from_the_aws_provider_id_and_anything_else_is_none():
    from finops_operator.sources.kubernetes import instance_id_from_provider_id

    def node(provider_id):
        spec = {} if provider_id is None else {"providerID": provider_id}
        return {"kind": "Node", "metadata": {"name": "n", "labels": {"karpenter.sh/capacity-type": "spot"}},
                "spec": spec, "status": {"allocatable": {"cpu": "2", "memory": "4Gi"}}}

    inv = build_inventory({"Node": [node("aws:///us-east-1a/i-0abc123def4567890"), node(None),
                                    node("gce://project/zone/vm-1"), node("aws:///eu-west-1b/fargate-ip-10-0-0-1")]})
    assert [n.instance_id for n in inv.nodes] == ["i-0abc123def4567890", None, None, None]
    assert inv.nodes[0].capacity_type == "spot" and not inv.warnings
    for value in ("aws:///us-east-1a/i-0abc12345/", "aws://us-east-1a/i-0123abcd"):
        assert instance_id_from_provider_id(value) == value.rstrip("/").rsplit("/", 1)[-1]
    for value in ("", "aws:///", "aws:///us-east-1a/i-XYZ", "i-0abc123def4567890", 42, ["aws:///a/i-01234567"],
                  "kind://docker/cluster/node"):
        assert instance_id_from_provider_id(value) is None, value
