"""The operator's bill reader (api/costsource.py) against moto's server: the policy's dataSources.aws decides
the engine; the CUR is kept in the run's work directory; Cost Explorer is asked for the cluster's tag."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from finops_operator.api.costsource import bill_reader, cost_reader, resource_ids
from finops_operator.api.policy import read_policy
from finops_operator.models import Window
from finops_operator.models.costs import ClaimSlot, NodeSlot, UsageHours, hour_starts
from finops_operator.sources.aws import AwsSource
from finops_operator.sources.promql import Scope

from tests.integration.test_promalloc import served  # noqa: F401  (a backfilled Prometheus, module fixture)
from tests.integration.test_cur_sources import BUCKET, REGION, s3, upload_bill
from tests.unit.test_cur import HOURS, T0, demo_bill

pytestmark = pytest.mark.integration
END = T0 + timedelta(hours=HOURS)


def policy(aws: dict):
    body = {"metadata": {"name": "p", "namespace": "finops-system"},
            "spec": {"mode": "DryRun", "dataSources": {"prometheus": {"url": "http://prom:9090"}, "aws": {"region": REGION, **aws}}}}
    return read_policy(body, operator_ns="finops-system")


def usage() -> UsageHours:
    """What Prometheus saw: the cluster's nodes (instance ids from providerID) and one claim's EBS volume."""
    hours = hour_starts(T0, END)
    nodes = [NodeSlot(f"n{i}", "m5.xlarge", "on-demand", 4.0, 16 * 2**30, instance_id=rid)
             for i, rid in enumerate(("i-0aaa", "i-0bbb", "i-0ccc"))]
    empty = np.zeros((0, len(hours)))
    return UsageHours(hours, nodes, np.ones((3, len(hours)), bool), [], np.zeros(0, np.int32), empty, empty, empty,
                      empty, claims=[ClaimSlot("db", "data", "vol-0ddd", "gp3", 100.0),
                                     ClaimSlot("db", "tmp", "pvc-local", "local", 10.0)])


def connect(aws_endpoint, aws_session):
    return lambda region, **kw: AwsSource(region, endpoint_url=aws_endpoint.url, session=aws_session, **kw)


def test_the_cur_through_duckdb_is_kept_in_the_work_directory(aws_endpoint, aws_session, tmp_path):
    upload_bill(s3(aws_endpoint, aws_session), tmp_path)
    spec = policy({"costSource": "CUR", "cur": {"bucket": BUCKET, "prefix": "reports", "exportName": "cur2"}})
    read = bill_reader(spec.aws, cluster="demo", workdir=tmp_path / "work", connect=connect(aws_endpoint, aws_session))
    assert resource_ids(usage()) == ["i-0aaa", "i-0bbb", "i-0ccc", "vol-0ddd"]     # a PV name is no CUR resource
    bill = read(usage(), T0, END)
    assert bill.source == "cur:duckdb" and bill.total() == pytest.approx(demo_bill().total())
    assert sorted(p.parent.name for p in (tmp_path / "work" / "cur").rglob("*.parquet")) == \
        ["BILLING_PERIOD=2024-05", "BILLING_PERIOD=2024-06"]


def test_cost_explorer_is_asked_for_the_cluster_tag_over_whole_days(aws_endpoint, aws_session, tmp_path):
    day = {"TimePeriod": {"Start": "2024-05-31", "End": "2024-06-01"}, "Total": {}, "Estimated": False,
           "Groups": [{"Keys": ["Amazon Elastic Compute Cloud - Compute"],
                       "Metrics": {"AmortizedCost": {"Amount": "96.5", "Unit": "USD"}}}]}
    aws_endpoint.set_cost_and_usage([{"ResultsByTime": [day]}])
    read = bill_reader(policy({}).aws, cluster="demo", workdir=tmp_path, connect=connect(aws_endpoint, aws_session))
    bill = read(usage(), T0, END)                       # 2024-05-31 20:00 .. 2024-06-01 04:00
    assert bill.source == "cost-explorer" and bill.total() == pytest.approx(96.5)
    body = json.loads(next(b for a, b in aws_endpoint.bodies if a == "GetCostAndUsage"))
    assert body["TimePeriod"] == {"Start": "2024-05-31", "End": "2024-06-02"}
    assert body["Filter"]["Tags"]["Key"] == "kubernetes.io/cluster/demo"
    assert (tmp_path / "cost-explorer.json").exists()  # answers cached across runs (a request costs $0.01)


def test_without_aws_the_reader_gives_prometheus_usage_hours_and_no_bill(served, tmp_path):  # noqa: F811
    sim, hours, _, source = served
    spec = read_policy({"metadata": {"name": "p", "namespace": "finops-system"},
                        "spec": {"mode": "DryRun", "dataSources": {"prometheus": {"url": source.url}}}},
                       operator_ns="finops-system")
    read = cost_reader(spec, source, Scope(), cluster="demo", workdir=tmp_path)
    start, stop = (datetime.fromtimestamp(int(t), UTC) for t in (sim.timestamps[0], sim.timestamps[-1] + 1))
    usage, bill = read(Window(start, stop, 300))
    assert bill is None                                     # no dataSources.aws: the price book prices it
    assert list(usage.hours) == list(hours.hours) and len(usage.containers) == len(hours.containers) > 24
    assert [n.instance_id for n in usage.nodes] == [n.instance_id for n in hours.nodes]
