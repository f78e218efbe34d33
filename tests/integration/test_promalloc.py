"""UsageHours read from a real Prometheus backfilled with the scenario simulator's series.

The simulator writes every pod's cAdvisor and kube-state-metrics series every
300 s (``spread=0``: every replica carries its container's simulated series
exactly), ``kube_node_info`` with each node's provider id included. A second
OpenMetrics file adds what the simulator does not write: a node that lived
only the second half of the window, and PVC/PV series.

What is compared, and the tolerances (why):
* memory: the hour's mean of the simulated samples in [h, h + 3600) (the
  export rounds to whole bytes): relative 1e-6.
* CPU: the counter's increase between the first and last sample of the hour
  divided by their distance is exactly what ``rate([1h])`` gives when the hour
  is fully covered (it extrapolates both ends by less than 1.1 intervals):
  relative 1e-6 against that. Against the plain mean of the hour's n samples
  it can differ by the first sample's distance from the others over n (the
  first interval ends at the hour's first sample, outside the increase):
  ``|got - mean| <= (max - min) / n``, asserted too.
* requests: constants, exact (1e-9).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from finops_operator.errors import ConfigError
from finops_operator.simulator import generate_scenario, simulate
from finops_operator.simulator.openmetrics import write_openmetrics_file
from finops_operator.sources.prometheus import PrometheusSource
from finops_operator.sources.promalloc import planned_requests, read_usage_hours
from finops_operator.sources.promql import Scope
from tests.support.prometheus_server import PrometheusServer, history_end, binaries_or_fail

pytestmark = pytest.mark.integration
STEP = 300
HOUR = 3600
GIB = 2**30


def _extras(sim, path, late_node: str) -> None:
    """A node present only in the second half (with its kube_node_info), and claims/volumes."""
    ts = sim.timestamps
    half = ts[len(ts) // 2:]
    lines = ["# TYPE kube_node_info gauge\n"]
    lines += [f'kube_node_info{{node="{late_node}",provider_id="aws:///us-east-1b/i-0feedfeedfeedfeed"}} 1 {t}\n'
              for t in half]
    lines.append("# TYPE kube_node_status_allocatable gauge\n")
    for resource, value in (("cpu", 8), ("memory", 32 * GIB)):
        lines += [f'kube_node_status_allocatable{{node="{late_node}",resource="{resource}"}} {value} {t}\n'
                  for t in half]
    lines.append("# TYPE kube_node_labels gauge\n")
    lines += [f'kube_node_labels{{node="{late_node}",label_node_kubernetes_io_instance_type="m6i.2xlarge",'
              f'label_karpenter_sh_capacity_type="spot",label_team="x"}} 1 {t}\n' for t in half]
    claims = [("data", "db-0", "pv-db-0"), ("data", "cache-0", "pv-cache-0"), ("data", "orphan", "")]
    lines.append("# TYPE kube_persistentvolumeclaim_info gauge\n")
    for ns, name, pv in claims:
        lines += [f'kube_persistentvolumeclaim_info{{namespace="{ns}",persistentvolumeclaim="{name}",'
                  f'storageclass="gp3",volumename="{pv}"}} 1 {t}\n' for t in ts]
    lines.append("# TYPE kube_persistentvolumeclaim_resource_requests_storage_bytes gauge\n")
    lines += [f'kube_persistentvolumeclaim_resource_requests_storage_bytes{{namespace="data",'
              f'persistentvolumeclaim="cache-0"}} {20 * GIB} {t}\n' for t in ts]
    lines.append("# TYPE kube_persistentvolume_capacity_bytes gauge\n")
    lines += [f'kube_persistentvolume_capacity_bytes{{persistentvolume="pv-db-0"}} {100 * GIB} {t}\n' for t in ts]
    lines.append("# TYPE kube_persistentvolume_info gauge\n")
    lines += [f'kube_persistentvolume_info{{persistentvolume="pv-db-0",storageclass="gp3",'
              f'ebs_volume_id="vol-0123456789abcdef0"}} 1 {t}\n' for t in ts]
    path.write_text("".join(lines) + "# EOF\n")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    binaries_or_fail()
    end = datetime.fromtimestamp(history_end(), timezone.utc)
    sim = simulate(generate_scenario(workloads=12, containers_per_workload=2, days=1, step_seconds=STEP, seed=11,
                                     end=end))
    workdir = tmp_path_factory.mktemp("promalloc")
    write_openmetrics_file(sim, workdir / "sim.om", spread=0.0)
    _extras(sim, workdir / "extras.om", "ip-late.ec2.internal")
    server = PrometheusServer(workdir)
    try:
        server.backfill(workdir / "sim.om")
        server.backfill(workdir / "extras.om")
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"cannot start a backfilled Prometheus: {exc}", pytrace=False)
    source = PrometheusSource(server.url)
    start, stop = (datetime.fromtimestamp(int(t), timezone.utc) for t in (sim.timestamps[0], sim.timestamps[-1] + 1))
    before = source.requests
    hours = read_usage_hours(source, Scope(), start, stop)
    yield sim, hours, source.requests - before, source
    server.stop()


def _hour_of(sim) -> np.ndarray:
    return (sim.timestamps // HOUR) * HOUR


def test_requests_are_bounded_and_do_not_grow_with_containers(served):
    sim, hours, sent, _ = served
    assert len(hours.hours) == 25                     # 15:05 .. 15:00 next day: 25 hour starts
    assert sent == planned_requests(2) == 13          # two one-day chunks, whatever the number of containers
    assert len(hours.containers) > 24


def test_hourly_means_match_the_simulation(served):
    sim, hours, _, _ = served
    row_of = {key: row for row, key in enumerate(sim.keys)}
    hour_of = _hour_of(sim)
    running = [p for p in sim.state.pods if p.node and p.phase == "Running" and p.owner is not None]
    got_rows = {(c.namespace, c.pod, c.container): i for i, c in enumerate(hours.containers)}
    checked = 0
    for pod in running:
        for key in (k for k in sim.keys if k.workload == pod.owner):
            i = got_rows[(pod.namespace, pod.name, key.container)]
            assert hours.nodes[hours.node_of[i]].name == pod.node
            assert hours.containers[i].workload == pod.owner
            cpu, mem = sim.cpu[row_of[key]].astype(np.float64), sim.memory[row_of[key]].astype(np.float64)
            for h, start in enumerate(hours.hours):
                in_hour = hour_of == start
                mem_h, cpu_h = mem[in_hour], cpu[in_hour]
                if np.isnan(mem_h).all():
                    assert np.isnan(hours.memory_usage[i, h]), (pod.name, h)
                    continue
                assert hours.memory_usage[i, h] == pytest.approx(np.round(mem_h[~np.isnan(mem_h)]).mean(), rel=1e-6)
                if np.isnan(cpu_h).any() or len(cpu_h) < HOUR // STEP or row_of[key] in sim.restart_steps:
                    continue                           # partial hours: see the module doc
                got = hours.cpu_usage[i, h]
                assert got == pytest.approx(cpu_h[1:].mean(), rel=1e-6), (pod.name, h)
                assert abs(got - cpu_h.mean()) <= (cpu_h.max() - cpu_h.min()) / len(cpu_h) + 1e-9
                checked += 1
    assert checked > 200


def test_requests_owners_and_nodes(served):
    sim, hours, _, _ = served
    workloads = {w.ref: w for w in sim.state.workloads}
    for i, slot in enumerate(hours.containers):
        want = workloads[slot.workload].container(slot.container).resources
        if want.cpu_request is not None:
            assert np.allclose(hours.cpu_request[i], want.cpu_request, rtol=1e-9)
        assert np.allclose(hours.memory_request[i], want.memory_request or np.nan, rtol=1e-9, equal_nan=True)
    nodes = {n.name: n for n in hours.nodes}
    for node in sim.state.nodes:
        slot = nodes[node.name]
        assert (slot.instance_type, slot.capacity_type, slot.zone, slot.node_group) == \
            (node.instance_type, node.capacity_type, node.zone, node.node_group)
        assert slot.instance_id == node.instance_id and slot.cpu_cores == pytest.approx(node.allocatable_cpu)
        assert hours.node_present[hours.nodes.index(slot)].all()
    late = nodes["ip-late.ec2.internal"]
    present = hours.node_present[hours.nodes.index(late)]
    assert (late.instance_type, late.capacity_type, late.instance_id) == ("m6i.2xlarge", "spot", "i-0feedfeedfeedfeed")
    assert 11 <= present.sum() <= 14 and present[-1] and not present[0]


def test_claims_are_sized_from_their_volume_or_their_request(served):
    _, hours, _, _ = served
    claims = {(c.namespace, c.name): c for c in hours.claims}
    assert set(claims) == {("data", "db-0"), ("data", "cache-0")}      # "orphan": no size known, left out
    db, cache = claims[("data", "db-0")], claims[("data", "cache-0")]
    assert (db.volume_id, db.volume_type, db.size_gib) == ("vol-0123456789abcdef0", "gp3", 100.0)
    assert (cache.volume_id, cache.size_gib) == ("pv-cache-0", 20.0)
    assert hours.claim_present is not None and hours.claim_present.shape == (2, 25)


def test_scope_and_the_request_budget(served):
    sim, _, _, source = served
    start = datetime.fromtimestamp(int(sim.timestamps[0]), timezone.utc)
    ns = sim.state.pods[0].namespace
    scoped = read_usage_hours(source, Scope(namespaces=ns), start, start + timedelta(hours=3))
    assert scoped.containers and {c.namespace for c in scoped.containers} == {ns}
    assert not scoped.claims
    tight = PrometheusSource(source.url, max_requests=12)
    with pytest.raises(ConfigError, match="over the budget of 12"):
        read_usage_hours(tight, Scope(), start, start + timedelta(days=2))
    assert tight.requests == 0
