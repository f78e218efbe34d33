"""build_state: how the inventory, Prometheus' usage and AWS volumes merge into one ClusterState."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from finops_operator.models import (
    HPA,
    Container,
    ContainerKey,
    ContainerUsage,
    Node,
    Resources,
    UsageStats,
    Volume,
    VolumeSource,
    Window,
    Workload,
    WorkloadRef,
)
from finops_operator.sources.kubernetes import Inventory
from finops_operator.sources.prometheus import NodeUsage, UsageResult
from finops_operator.sources.state import build_state

END = datetime(2026, 11, 1, tzinfo=UTC)
WINDOW = Window(END - timedelta(days=1), END, 300)
WEB = WorkloadRef("Deployment", "shop", "web")
GONE = WorkloadRef("Deployment", "shop", "deleted")


def stats(value: float) -> UsageStats:
    return UsageStats(288, 289, {50: value, 90: value, 95: value, 99: value}, value, value, 0.0)


def inventory() -> Inventory:
    web = Workload(WEB, 2, [Container("app", resources=Resources(0.5, None, 2**30, 2**30), restarts=1),
                            Container("proxy", restarts=4, last_terminated_reason="Error")],
                   hpa=HPA("web", 2, 5, 70, current_replicas=3))
    api = Workload(WorkloadRef("Deployment", "shop", "api"), 1, [Container("api")])
    node = Node("n1", "m5.large", "general", 2.0, 8 * 2**30)
    pv = Volume("pv-data", VolumeSource.PV, 100, "gp3", "Released", backing_volume_id="vol-backing")
    return Inventory(workloads=[web, api], nodes=[node], volumes=[pv])


def usage() -> UsageResult:
    app, proxy, api = ContainerKey(WEB, "app"), ContainerKey(WEB, "proxy"), ContainerKey(WorkloadRef(
        "Deployment", "shop", "api"), "api")
    gone = ContainerKey(GONE, "app")
    result = UsageResult(window=WINDOW)
    result.usage = {k: ContainerUsage(k, stats(0.1), stats(2**28)) for k in (app, proxy, api, gone)}
    result.containers = {app: Container("app", restarts=3, oom_kills=2, last_terminated_reason="OOMKilled"),
                         proxy: Container("proxy", restarts=0, oom_kills=0, last_terminated_reason="OOMKilled")}
    result.hpas = {WEB: HPA("web", 1, 99), api.workload: HPA("api", 1, 4, 80)}
    result.nodes = {"n1": NodeUsage("n1", cpu=stats(1.2), memory=stats(3 * 2**30)), "n2": NodeUsage("n2")}
    return result


def build(**kw):
    return build_state(cluster="c", region="eu-west-1", window=WINDOW, inventory=inventory(), **kw)


def test_usage_is_kept_only_for_containers_the_inventory_has() -> None:
    state = build(usage=usage())
    assert {str(k) for k in state.usage} == {"Deployment/shop/web/app", "Deployment/shop/web/proxy",
                                             "Deployment/shop/api/api"}
    assert state.usage[ContainerKey(WEB, "app")].cpu.percentile(95) == 0.1


def test_restarts_and_oom_kills_take_the_larger_count_and_the_reason_fills_a_gap() -> None:
    web = build(usage=usage()).workload(WEB)
    app, proxy = web.container("app"), web.container("proxy")
    assert (app.restarts, app.oom_kills, app.last_terminated_reason) == (3, 2, "OOMKilled")
    assert (proxy.restarts, proxy.oom_kills) == (4, 0)                     # the API saw more restarts
    assert proxy.last_terminated_reason == "Error"                          # the API's own reason wins
    assert app.resources.cpu_request == 0.5                                 # requests are the inventory's


def test_hpas_from_prometheus_only_fill_gaps() -> None:
    state = build(usage=usage())
    assert state.workload(WEB).hpa.max_replicas == 5                        # inventory wins
    assert state.workload(WorkloadRef("Deployment", "shop", "api")).hpa.max_replicas == 4


def test_node_usage_is_attached_to_inventory_nodes_only() -> None:
    state = build(usage=usage())
    assert [n.name for n in state.nodes] == ["n1"]
    assert state.nodes[0].cpu_usage.max == 1.2 and state.nodes[0].memory_usage.percentile(95) == 3 * 2**30


def test_aws_volumes_join_but_a_pvs_backing_disk_is_counted_once() -> None:
    aws = [Volume("vol-backing", VolumeSource.EBS, 100, "gp3", "available"),
           Volume("vol-orphan", VolumeSource.EBS, 20, "gp2", "available")]
    state = build(aws_volumes=aws)
    assert [v.id for v in state.volumes] == ["pv-data", "vol-orphan"]


def test_without_usage_or_aws_the_inventory_is_the_state() -> None:
    state = build()
    assert state.usage == {} and [v.id for v in state.volumes] == ["pv-data"]
    assert state.workload(WEB).container("app").restarts == 1 and state.window == WINDOW
