"""Two clusters in one backend (a shared Thanos/Mimir/VictoriaMetrics): the same namespaces and pod names,
told apart only by a ``cluster`` label. The source's cluster matcher (spec.dataSources.prometheus.cluster)
reads exactly one of them, in every query; without it, the two would merge into one worst replica."""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from finops_operator.models import ContainerKey, Window, WorkloadRef
from finops_operator.sources.prometheus import PrometheusSource
from finops_operator.sources.promql import Scope
from tests.support.prom_requests import scan_requests
from tests.support.fixtures_prometheus import build_scenario
from tests.support.prometheus_server import PrometheusServer, history_end, binaries_or_fail

pytestmark = pytest.mark.integration
DB = ContainerKey(WorkloadRef("StatefulSet", "small", "db"), "postgres")


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    binaries_or_fail()
    workdir = tmp_path_factory.mktemp("prometheus-shared")
    end = history_end()
    histories = {"eu": build_scenario(end, seed=7), "us": build_scenario(end, seed=8)}
    server = PrometheusServer(workdir)
    for name, history in histories.items():
        history.labels = {"cluster": name}
        server.backfill(history.write(workdir / f"{name}.om"))
    server.start()
    yield server, histories
    server.stop()


def read(url: str, window, cluster: str | None):
    matchers = (f'cluster="{cluster}"',) if cluster else ()
    return PrometheusSource(url).collect(Scope(namespaces="small|roll", matchers=matchers), window,
                                         percentiles={"cpu": (95,), "memory": (90,)})


def test_the_cluster_matcher_isolates_one_cluster(shared):
    server, histories = shared
    window = Window(datetime.fromtimestamp(histories["eu"].start, timezone.utc),
                    datetime.fromtimestamp(histories["eu"].end, timezone.utc), 60)
    got = {name: read(server.url, window, name) for name in histories}
    both = read(server.url, window, None)
    for name, history in histories.items():
        sim = next(c for c in history.containers if c.pod == "db-0")
        memory = sim.memory[1:]
        usage = got[name].usage[DB].memory
        assert usage.max == float(memory.max()) and usage.percentile(90) == pytest.approx(np.percentile(memory, 90))
        assert usage.samples == usage.expected == 360                 # one cluster's samples, not two
        assert set(got[name].nodes) == {"node-a", "node-b", "node-c", "node-d"}
        assert got[name].queries == scan_requests({"cpu": (95,), "memory": (90,)}, node_query=True, remote=True)
    assert got["eu"].usage[DB].memory.max != got["us"].usage[DB].memory.max
    # without the matcher the same pod names of both clusters merge: the worst of both
    assert both.usage[DB].memory.max == max(got["eu"].usage[DB].memory.max, got["us"].usage[DB].memory.max)
    hpa = got["eu"].hpas[WorkloadRef("Deployment", "roll", "api")]
    assert (hpa.min_replicas, hpa.max_replicas) == (2, 6)
