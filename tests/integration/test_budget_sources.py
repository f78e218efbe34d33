"""A Budget's daily costs from real sources, evaluated on a real kube-apiserver (api/budgetrun.evaluate_budget):

* AWS-scoped (``scope.aws`` tags and services): Cost Explorer on moto's server, its daily costs registered
  through moto's documented ``/moto-api/static/ce/cost-and-usage-results``;
* cluster-scoped: a backfilled Prometheus holding the scenario simulator's series, each day reconciled with
  the simulator's bill of the same cluster delivered as CUR 2.0 Parquet in moto's S3 and read by DuckDB
  (the policy's own bill reader, api/costsource.bill_reader); a policy whose bill cannot be read falls back
  on the price book with a note, the budget is still evaluated.

Each evaluation uses a fresh API client and reads the Budget and its policy from the API (as a restarted
operator would).
"""
from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from finops_operator.api.budget import read_budget
from finops_operator.api.budgetcosts import budget_policy, cost_reader
from finops_operator.api.budgetrun import BACKFILL_DAYS, evaluate_budget
from finops_operator.api.events import post_event
from finops_operator.api.spendstore import SpendStore, config_map_name
from finops_operator.api.wiring import api_client_from
from finops_operator.cur.parquet import write_cur_parquet
from finops_operator.models.costs import CostCategory
from finops_operator.pricing import PriceBook
from finops_operator.simulator import generate_scenario, simulate, simulate_bill
from finops_operator.simulator.openmetrics import write_openmetrics_file
from finops_operator.sources.aws import AwsSource

from tests.support.fixtures_operator import wait_established
from tests.support.prometheus_server import PrometheusServer, history_end, binaries_or_fail

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 16, 12, tzinfo=UTC)
SERVICES = ("Amazon Relational Database Service", "Amazon Simple Storage Service")
ACCOUNT = "123456789012"
BUCKET = "billing-exports"


@pytest.fixture(scope="module")
def crds(kube):
    kube.kubectl("apply", "-f", str(ROOT / "crds"))
    wait_established(kube, ("budgets.finops.dev", "finopspolicies.finops.dev"))
    return kube


def get(kube, *args) -> dict:
    return json.loads(kube.kubectl("get", *args, "-o", "json").stdout)


def apply(kube, doc: dict) -> None:
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))


def policy_doc(ns: str, name: str, aws: dict, prometheus: str = "http://127.0.0.1:9") -> dict:
    return {"apiVersion": "finops.dev/v1alpha1", "kind": "FinOpsPolicy", "metadata": {"name": name, "namespace": ns},
            "spec": {"mode": "DryRun", "dataSources": {"prometheus": {"url": prometheus}, "aws": aws}}}


def budget_doc(ns: str, name: str, spec: dict) -> dict:
    return {"apiVersion": "finops.dev/v1alpha1", "kind": "Budget", "metadata": {"name": name, "namespace": ns},
            "spec": {"currency": "USD", "period": "Monthly", "timeZone": "UTC", **spec}}


def connect(aws_endpoint, aws_session):
    return lambda region, **kw: AwsSource(region, endpoint_url=aws_endpoint.url, session=aws_session, **kw)


def evaluate(kube, ns: str, name: str, now: datetime, fired: list, *, connect, cluster: str, workdir: Path):
    """What the budget timer does (handlers/budgets._evaluate), with a fresh client, all state from the API."""
    api = api_client_from(str(kube.kubeconfig))
    try:
        body = get(kube, f"budget/{name}", "-n", ns)
        budget = read_budget(body)

        def reader():
            policy = budget_policy(api, budget, operator_ns="finops-system")
            return cost_reader(policy, budget, api, cluster=cluster, workdir=workdir, region="us-east-1", now=now,
                               connect=connect)

        return evaluate_budget(
            budget, api, status=body.get("status"), now=now, read_days=reader,
            run_action=lambda b, c, r: fired.append(c.threshold.id) or "recorded",
            post=lambda t, reason, m: post_event(api, body, type_=t, reason=reason, message=m, now=now))
    finally:
        api.close()


# --------------------------------------------------------------------------- Cost Explorer (moto)


def daily(day: date) -> dict[str, float]:
    """The registered cost of a day per service: a weekly pattern (weekdays 40 USD, weekends 16 USD)."""
    weekend = day.weekday() >= 5
    return {SERVICES[0]: 12.0 if weekend else 30.0, SERVICES[1]: 4.0 if weekend else 10.0}


def ce_results(first: date, last: date) -> dict:
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return {"ResultsByTime": [
        {"TimePeriod": {"Start": d.isoformat(), "End": (d + timedelta(days=1)).isoformat()}, "Total": {},
         "Estimated": False,
         "Groups": [{"Keys": [service], "Metrics": {"AmortizedCost": {"Amount": f"{cost:.2f}", "Unit": "USD"}}}
                    for service, cost in daily(d).items()]}
        for d in days]}


def test_an_aws_scoped_budget_from_cost_explorer_fires_once_and_survives_a_restart(
        crds, kube_namespace, aws_endpoint, aws_session, tmp_path):
    ns, today = kube_namespace, NOW.date()
    first = today - timedelta(days=BACKFILL_DAYS)
    # one answer per distinct request: the backfill, then the open day re-read after the restart
    aws_endpoint.set_cost_and_usage([ce_results(first, today), ce_results(first, today)])
    apply(crds, policy_doc(ns, "costs", {"region": "eu-west-1"}))
    apply(crds, budget_doc(ns, "payments", {
        "amount": "900", "scope": {"aws": {"tags": {"team": ["payments"]}, "services": list(SERVICES)}},
        "thresholds": [{"percent": 50, "action": "Notify"}, {"percent": 100, "action": "Alert"}]}))
    fired: list[str] = []
    run = dict(connect=connect(aws_endpoint, aws_session), cluster="demo", workdir=tmp_path)

    outcome = evaluate(crds, ns, "payments", NOW, fired, **run)
    assert outcome.error is None, outcome.status
    spent = sum(sum(daily(date(2026, 3, d)).values()) for d in range(1, 17))     # March 1..16 = 520 USD
    assert spent == 520.0
    status = get(crds, "budget/payments", "-n", ns)["status"]
    assert float(status["currentSpend"]) == pytest.approx(spent) and status["usedPercent"] == 57
    lower, value, upper = (float(status[k]) for k in ("forecastLower", "forecastedSpend", "forecastUpper"))
    assert lower <= value <= upper and status["forecastMethod"]
    march = sum(sum(daily(date(2026, 3, d)).values()) for d in range(1, 32))   # 1024 USD: over the 900
    assert value == pytest.approx(march, rel=0.05)
    assert status["state"] == "ForecastExceeded"                     # under the amount, the forecast is not
    assert fired == ["50"] and [t["percent"] for t in status["triggeredThresholds"]] == [50]

    body = json.loads(next(b for a, b in aws_endpoint.bodies if a == "GetCostAndUsage"))
    assert body["TimePeriod"] == {"Start": first.isoformat(), "End": (today + timedelta(days=1)).isoformat()}
    assert body["Filter"] == {"And": [
        {"Tags": {"Key": "team", "Values": ["payments"], "MatchOptions": ["EQUALS"]}},
        {"Dimensions": {"Key": "SERVICE", "Values": list(SERVICES), "MatchOptions": ["EQUALS"]}}]}

    # restarted half an hour later: a new client, only the open day read again, nothing fires
    again = evaluate(crds, ns, "payments", NOW + timedelta(minutes=30), fired, **run)
    assert again.error is None and again.result.crossings == [] and again.read_days == 1
    assert fired == ["50"] and aws_endpoint.count("GetCostAndUsage") == 2
    assert float(get(crds, "budget/payments", "-n", ns)["status"]["currentSpend"]) == pytest.approx(spent)
    crossed = [e for e in get(crds, "events", "-n", ns)["items"] if e["reason"] == "ThresholdCrossed"]
    assert len(crossed) == 1 and "50%" in crossed[0]["message"]

    # the history ConfigMap holds every day read, at the registered costs
    assert get(crds, "configmap", config_map_name("payments"), "-n", ns)["metadata"]["ownerReferences"]
    api = api_client_from(str(crds.kubeconfig))
    try:
        series = SpendStore(api).load(read_budget(get(crds, "budget/payments", "-n", ns))).history.series
    finally:
        api.close()
    assert (series.start, len(series.values)) == (first, BACKFILL_DAYS + 1)
    assert list(series.values) == [sum(daily(d).values()) for d in series.days]

    # what `kubectl get budgets` shows: spent, used %, forecast and state with their values
    header, row = crds.kubectl("get", "budgets", "-n", ns).stdout.splitlines()[:2]
    assert header.split() == ["NAME", "READY", "AMOUNT", "CURRENCY", "PERIOD", "SPENT", "USED%", "FORECAST",
                              "STATE", "AGE"]
    cells = row.split()
    assert cells[:8] == ["payments", "True", "900", "USD", "Monthly", "520.00", "57", status["forecastedSpend"]]
    assert cells[8] == "ForecastExceeded"


# --------------------------------------------------------------------------- the CUR (moto S3 + DuckDB)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The simulator's cluster: two days of series in a real Prometheus, and its bill."""
    binaries_or_fail()
    end = datetime.fromtimestamp(history_end(), UTC)
    sim = simulate(generate_scenario(workloads=8, containers_per_workload=2, days=2, step_seconds=300, seed=5,
                                     end=end, cluster="budget-sim"))
    workdir = tmp_path_factory.mktemp("budget-cur")
    write_openmetrics_file(sim, workdir / "sim.om", spread=0.0)
    server = PrometheusServer(workdir)
    try:
        server.backfill(workdir / "sim.om")
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"cannot start a backfilled Prometheus: {exc}", pytrace=False)
    yield sim, simulate_bill(sim, PriceBook.for_region(sim.state.region)), server.url, workdir
    server.stop()


def upload_cur(client, bill, workdir: Path) -> None:
    """The bill as AWS delivers the CUR 2.0 export: one Parquet object per billing period."""
    arn = next((x.resource_id for x in bill.lines if x.category is CostCategory.CONTROL_PLANE), "")
    for period in sorted({x.start.strftime("%Y-%m") for x in bill.lines}):
        part = type(bill)(bill.source, bill.start, bill.end, [x for x in bill.lines if x.start.strftime("%Y-%m") == period])
        path = write_cur_parquet(part, workdir / "upload" / f"{period}.parquet", account_id=ACCOUNT,
                                 cluster="budget-sim", cluster_arn=arn)
        client.upload_file(str(path), BUCKET, f"reports/cur2/data/BILLING_PERIOD={period}/{period}-0001.snappy.parquet")


def test_a_cluster_budget_is_reconciled_with_the_cur_and_falls_back_on_the_price_book(
        crds, kube_namespace, cluster, aws_endpoint, aws_session, tmp_path):
    sim, bill, prometheus, _ = cluster
    ns, region = kube_namespace, sim.state.region
    s3 = aws_session.client("s3", region_name=region, endpoint_url=aws_endpoint.url)
    s3.create_bucket(Bucket=BUCKET)
    upload_cur(s3, bill, tmp_path)
    cur = {"bucket": BUCKET, "prefix": "reports", "exportName": "cur2"}
    apply(crds, policy_doc(ns, "cur", {"region": region, "costSource": "CUR", "cur": cur}, prometheus))
    apply(crds, policy_doc(ns, "lost", {"region": region, "costSource": "CUR", "cur": {**cur, "bucket": "no-such"}},
                           prometheus))
    for name, policy in (("cluster", "cur"), ("fallback", "lost")):      # a year from the 1st: the whole bill is in
        apply(crds, budget_doc(ns, name, {"amount": "100000", "policyRef": {"name": policy}, "period": "Yearly",
                                          "startDate": f"{bill.start:%Y-%m}-01",
                                          "thresholds": [{"percent": 90, "action": "Notify"}]}))
    now = bill.end             # the hour after it: Prometheus has its first sample, no bill yet (priced at list)
    run = dict(connect=connect(aws_endpoint, aws_session), cluster="budget-sim")

    outcome = evaluate(crds, ns, "cluster", now, [], workdir=tmp_path / "work-cluster", **run)
    assert outcome.error is None and not any("bill" in n for n in outcome.notes), outcome.status
    want = bill.total()
    status = get(crds, "budget/cluster", "-n", ns)["status"]
    assert status["periodStart"] <= f"{bill.start:%Y-%m-%dT%H:%M:%SZ}"
    assert float(status["currentSpend"]) == pytest.approx(want, rel=0.01)
    assert list((tmp_path / "work-cluster" / "cur").rglob("*.parquet"))     # the bill came from S3, via DuckDB

    fallback = evaluate(crds, ns, "fallback", now, [], workdir=tmp_path / "work-fallback", **run)
    assert fallback.error is None and fallback.result is not None
    ready = {c["type"]: c for c in get(crds, "budget/fallback", "-n", ns)["status"]["conditions"]}["Ready"]
    assert ready["status"] == "True" and "could not be read, the price book priced those days" in ready["message"]
    spent = float(get(crds, "budget/fallback", "-n", ns)["status"]["currentSpend"])
    assert spent > 0 and not math.isclose(spent, want, rel_tol=1e-6)   # list prices, not the bill's
