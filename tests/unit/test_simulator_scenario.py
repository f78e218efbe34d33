"""Scenario spec validation, simulation inventory, determinism and the random generator."""
from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from finops_operator.errors import ConfigError, UnreadableFile
from finops_operator.models import ContainerKey, ContainerRole, WorkloadRef
from finops_operator.simulator import generate_scenario, load_scenario, parse_scenario, simulate
from finops_operator.simulator.placement import INSTANCE_TYPES, allocatable

GI, MI = 2**30, 2**20
POD_HASH = re.compile(r"^payments-api-[0-9a-f]{10}-[bcdfghjklmnpqrstvwxz2456789]{5}$")


def error_of(data, source="scenario.yaml") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_scenario(data, source=source)
    return info.value


# --------------------------------------------------------------------------- validation


def test_unknown_pattern_names_the_field_and_the_choices(scenario_dict):
    scenario_dict["workloads"][2]["containers"][0]["cpu"]["pattern"] = "sine"
    err = error_of(scenario_dict)
    assert err.source == "scenario.yaml"
    assert err.field == "workloads[2].containers[0].cpu.pattern"
    assert "unknown pattern 'sine'; use one of steady, daily, weekend" in str(err)


@pytest.mark.parametrize("mutate, field, words", [
    (lambda d: d["workloads"][0].pop("name"), "workloads[0].name", "is required"),
    (lambda d: d["workloads"][0].update(kind="Job"), "workloads[0].kind", "use one of Deployment"),
    (lambda d: d["workloads"][0].update(replicas="three"), "workloads[0].replicas", "expected int"),
    (lambda d: d["workloads"][0].update(replicas=-1), "workloads[0].replicas", "must be >= 0"),
    (lambda d: d["workloads"][0]["containers"][0]["requests"].update(cpu="1 core"),
     "workloads[0].containers[0].requests.cpu", "not a Kubernetes quantity"),
    (lambda d: d["workloads"][0]["containers"][0]["memory"].update(base="lots"),
     "workloads[0].containers[0].memory.base", "not a Kubernetes quantity"),
    (lambda d: d["workloads"][0]["containers"][0]["cpu"].update(wobble=1),
     "workloads[0].containers[0].cpu.wobble", "unknown key 'wobble'"),
    (lambda d: d["workloads"][0]["containers"][0]["cpu"].update(pattern="leak"),
     "workloads[0].containers[0].cpu.pattern", "memory only"),
    (lambda d: d["workloads"][1]["containers"][0]["limits"].pop("memory"),
     "workloads[1].containers[0].memory.limit", "needs a limit"),
    (lambda d: d["workloads"][0]["containers"][1].update(role="helper"),
     "workloads[0].containers[1].role", "use one of app, init, sidecar"),
    (lambda d: d["workloads"][0]["hpa"].update(maxReplicas=1), "workloads[0].hpa.maxReplicas", "minReplicas"),
    (lambda d: d["nodeGroups"][0].update(instanceType="m5.huge"), "nodeGroups[0].instanceType",
     "unknown instance type 'm5.huge'"),
    (lambda d: d["volumes"][1].update(state="available"), "volumes[1].state", "use one of Available, Bound"),
    (lambda d: d.update(end="next tuesday"), "end", "ISO 8601"),
    (lambda d: d["workloads"].append(dict(d["workloads"][0])), "workloads[5].name", "duplicate workload"),
    (lambda d: d["workloads"][0].update(nodeGroup="gpu"), "workloads[0].nodeGroup", "unknown node group 'gpu'"),
    (lambda d: d["workloads"][0].update(containers=[]), "workloads[0].containers", "at least one container"),
])
def test_bad_input_names_the_field(scenario_dict, mutate, field, words):
    mutate(scenario_dict)
    err = error_of(scenario_dict)
    assert err.field == field
    assert words in err.message


def test_load_scenario_names_the_file_for_bad_yaml_and_missing_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("cluster: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML") as info:
        load_scenario(bad)
    assert info.value.source == str(bad)
    with pytest.raises(UnreadableFile, match="no such file") as info:   # read through safeio
        load_scenario(tmp_path / "missing.yaml")
    assert info.value.source == str(tmp_path / "missing.yaml")


def test_load_scenario_reads_yaml_with_quantities(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("""cluster: c1
days: 1
end: 2026-11-20T00:00:00Z
nodeGroups: [{name: g, instanceType: m5.large, count: 1, minSize: 1, maxSize: 3}]
workloads:
  - kind: Deployment
    namespace: ns
    name: web
    containers:
      - name: web
        requests: {cpu: 250m, memory: 256Mi}
        cpu: {pattern: steady, base: 100m, noise: 0}
        memory: {pattern: steady, base: 100Mi, noise: 0}
""")
    spec = load_scenario(path)
    assert spec.workloads[0].containers[0].cpu.params == {"base": pytest.approx(0.1)}
    assert spec.workloads[0].containers[0].memory.params == {"base": 100 * MI}
    sim = simulate(spec)
    assert sim.cpu.shape == (1, 288)
    assert np.allclose(sim.cpu, 0.1) and np.allclose(sim.memory, 100 * MI)
    assert sim.state.node_groups[0].max_size == 3 and sim.state.node_groups[0].desired_size == 1


# --------------------------------------------------------------------------- inventory


def test_inventory_shapes_and_window(small_simulation):
    sim = small_simulation
    assert sim.cpu.shape == sim.memory.shape == (len(sim.keys), 3 * 288)
    assert sim.cpu.dtype == sim.memory.dtype == np.float32
    assert sim.timestamps[-1] == 1795132800                   # 2026-11-20T00:00:00Z
    assert np.all(np.diff(sim.timestamps) == 300)
    assert sim.state.window.expected_points == sim.cpu.shape[1]
    assert [str(k) for k in sim.keys][:2] == ["Deployment/payments/payments-api/api",
                                              "Deployment/payments/payments-api/istio-proxy"]
    api = sim.state.workload(WorkloadRef("Deployment", "payments", "payments-api"))
    assert api.hpa.max_replicas == 10 and api.hpa.target_cpu_utilization == 70
    assert api.containers[1].role == ContainerRole.SIDECAR
    assert api.containers[0].resources.raw == {"requests.cpu": "1", "requests.memory": "2Gi",
                                               "limits.cpu": "2", "limits.memory": "2Gi"}


def test_pods_have_realistic_names_and_fit_their_nodes(small_simulation):
    state = small_simulation.state
    by_owner = Counter(p.owner.name for p in state.pods)
    api_pods = [p.name for p in state.pods if p.owner.name == "payments-api"]
    assert len(api_pods) == 3 and all(POD_HASH.match(name) for name in api_pods)
    assert len({name.rsplit("-", 1)[0] for name in api_pods}) == 1      # one ReplicaSet
    assert sorted(p.name for p in state.pods if p.owner.name == "redis") == ["redis-0", "redis-1"]
    assert by_owner["node-exporter"] == len(state.nodes)                 # one per node
    assert all(p.daemonset for p in state.pods if p.owner.kind == "DaemonSet")
    for node in state.nodes:
        pods = [p for p in state.pods if p.node == node.name]
        assert sum(p.cpu_request for p in pods) <= node.allocatable_cpu + 1e-9
        assert sum(p.memory_request for p in pods) <= node.allocatable_memory
    api = next(p for p in state.pods if p.owner.name == "payments-api")
    assert api.cpu_request == pytest.approx(1.1) and api.memory_request == 2 * GI + 128 * MI
    assert api.labels["app"] == "payments-api" and api.labels["team"] == "payments"


def test_nodes_have_allocatable_below_capacity_and_usage(small_simulation):
    nodes = {n.name: n for n in small_simulation.state.nodes}
    assert len(nodes) == 4
    spare = nodes["ip-10-0-9-9.ec2.internal"]
    assert spare.annotations == {"karpenter.sh/do-not-disrupt": "true"}
    assert spare.instance_type == "m5.large" and spare.node_group == "general"
    for node in nodes.values():
        vcpu, gib, _ = INSTANCE_TYPES[node.instance_type]
        assert 0.9 * vcpu < node.allocatable_cpu < vcpu
        assert 0.85 * gib * GI < node.allocatable_memory < gib * GI
        assert node.labels["node.kubernetes.io/instance-type"] == node.instance_type
        assert node.cpu_usage.samples == node.cpu_usage.expected == 3 * 288
        assert node.cpu_usage.mean > 0.1                                   # system overhead at least
    assert allocatable("m5.xlarge") == (pytest.approx(3.92), 16 * GI - (255 + 11 * 58 + 100) * MI)


def test_pdbs_and_volumes(small_simulation):
    state = small_simulation.state
    assert [(p.name, p.selector, p.disruptions_allowed) for p in state.pdbs] == \
        [("payments-api-pdb", {"app": "payments-api"}, 0)]
    ebs, pv = state.volumes
    assert ebs.source.value == "ebs" and ebs.state == "available" and ebs.tags == {"Name": "legacy-reports"}
    assert (state.window.end - ebs.created_at).days == 40
    assert pv.state == "Released" and pv.claim == "analytics/data-old" and pv.released_at is not None


def test_memory_leak_is_oom_killed_and_counted(small_simulation):
    sim = small_simulation
    row = sim.keys.index(ContainerKey(WorkloadRef("StatefulSet", "data", "redis"), "redis"))
    redis = sim.state.workload(WorkloadRef("StatefulSet", "data", "redis")).containers[0]
    kills = sim.restart_steps[row]
    # 300Mi -> 1Gi at 40Mi/h is ~18 h per cycle: 3 or 4 kills in 3 days
    assert redis.oom_kills == redis.restarts == len(kills) in (3, 4)
    assert redis.last_terminated_reason == "OOMKilled"
    assert sim.memory[row].max() == pytest.approx(GI)
    assert all(sim.memory[row][k] < 0.5 * GI for k in kills)


def test_cpu_above_the_limit_is_capped_and_throttled(small_simulation):
    sim = small_simulation
    row = sim.keys.index(ContainerKey(WorkloadRef("Deployment", "search", "indexer"), "indexer"))
    assert sim.cpu[row].max() == pytest.approx(0.25)          # demand peaks at 350m, limit 250m
    assert (sim.cpu[row] == np.float32(0.25)).mean() > 0.3
    assert 0.2 < sim.throttled[row] < 1.0
    api = sim.keys.index(ContainerKey(WorkloadRef("Deployment", "payments", "payments-api"), "api"))
    assert sim.throttled[api] == 0.0                            # has a limit, never near it
    sidecar = sim.keys.index(ContainerKey(WorkloadRef("Deployment", "payments", "payments-api"), "istio-proxy"))
    assert np.isnan(sim.throttled[sidecar])                     # no CPU limit: no CFS data


def test_young_workload_and_gaps_leave_nan(small_simulation):
    sim = small_simulation
    row = sim.keys.index(ContainerKey(WorkloadRef("CronJob", "reporting", "nightly-report"), "report"))
    missing = np.isnan(sim.cpu[row])
    assert missing[: int(1.4 * 288)].all()                      # created 1.5 days before the end
    assert 0.01 < missing[-int(1.5 * 288):].mean() < 0.2        # ~5% scrape gaps after that
    assert np.array_equal(missing, np.isnan(sim.memory[row]))


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_arrays_and_adding_a_workload_changes_nothing_else(scenario_dict):
    first = simulate(parse_scenario(scenario_dict))
    again = simulate(parse_scenario(scenario_dict))
    assert np.array_equal(first.cpu, again.cpu, equal_nan=True)
    assert np.array_equal(first.memory, again.memory, equal_nan=True)
    assert [p.name for p in first.state.pods] == [p.name for p in again.state.pods]
    scenario_dict["workloads"].insert(1, {
        "kind": "Deployment", "namespace": "new", "name": "newcomer", "replicas": 2,
        "containers": [{"name": "app", "requests": {"cpu": "100m", "memory": "128Mi"},
                        "cpu": {"pattern": "burst", "base": "10m"}, "memory": {"pattern": "steady", "base": "50Mi"}}]})
    bigger = simulate(parse_scenario(scenario_dict))
    assert len(bigger.keys) == len(first.keys) + 1
    for row, key in enumerate(first.keys):
        other = bigger.keys.index(key)
        assert np.array_equal(first.cpu[row], bigger.cpu[other], equal_nan=True), key
        assert np.array_equal(first.memory[row], bigger.memory[other], equal_nan=True), key
    assert {p.name for p in first.state.pods} <= {p.name for p in bigger.state.pods}
    scenario_dict["seed"] = 43
    other_seed = simulate(parse_scenario(scenario_dict))
    assert not np.array_equal(first.cpu[0], other_seed.cpu[0])


# --------------------------------------------------------------------------- generator


def test_generated_scenario_has_a_realistic_mix():
    spec = generate_scenario(workloads=120, containers_per_workload=2, days=2, seed=3)
    sim = simulate(spec)
    state = sim.state
    assert len(sim.keys) == 240
    kinds = Counter(w.ref.kind for w in state.workloads)
    assert kinds["Deployment"] > 60 and kinds["StatefulSet"] > 3 and kinds["DaemonSet"] >= 1
    p95 = np.nanpercentile(sim.cpu, 95, axis=1)
    requests = np.array([state.workload(k.workload).container(k.container).resources.cpu_request for k in sim.keys])
    over = (requests > 2 * p95).mean()
    assert 0.4 < over < 0.95                                   # most, not all, over-provisioned
    assert (requests < p95).sum() >= 5                          # some under-provisioned
    assert (sim.throttled > 0.1).sum() >= 3                     # some throttled
    assert sum(c.oom_kills > 0 for w in state.workloads for c in w.containers) >= 2
    assert sum(w.hpa is not None for w in state.workloads) >= 3
    assert len(state.pdbs) >= 3
    assert not any(p.node is None for p in state.pods)          # everything scheduled
    busy = {p.node for p in state.pods if not p.daemonset}
    assert len([n for n in state.nodes if n.name not in busy]) >= 2    # idle nodes exist
    assert any(v.source.value == "ebs" and v.state == "available" for v in state.volumes)
    assert any(v.source.value == "pv" and v.state == "Released" for v in state.volumes)
    assert np.isnan(sim.cpu).any()                              # some gaps / young workloads
    again = simulate(generate_scenario(workloads=120, containers_per_workload=2, days=2, seed=3, end=spec.end))
    assert [w.ref for w in again.state.workloads] == [w.ref for w in state.workloads]


def test_generate_by_total_container_count():
    spec = generate_scenario(containers=7, containers_per_workload=2, days=1, seed=1)
    assert sum(len(w.containers) for w in spec.workloads) == 7 and len(spec.workloads) == 4
    with pytest.raises(ValueError, match="containers must be >= 1"):
        generate_scenario(containers=0)


def test_pod_names_are_unique_even_when_short_hashes_collide():
    from finops_operator.models import Node, Workload, WorkloadRef
    from finops_operator.simulator.placement import place_pods
    from datetime import datetime, timezone
    nodes = [Node(f"n{i}", "m5.large", "g", 2.0, 8 * 2**30) for i in range(3000)]
    ds = Workload(WorkloadRef("DaemonSet", "kube-system", "node-exporter"), 0, [])
    # seed 3: two of these 3000 nodes get the same 5-character suffix on the first try
    pods = place_pods(3, [ds], nodes, datetime(2026, 11, 1, tzinfo=timezone.utc), {}, {})
    names = [p.name for p in pods]
    assert len(names) == 3000 and len(set(names)) == 3000
