"""The bill from AWS on moto's server (loopback): CUR 2.0 Parquet in S3 read by DuckDB, the same SQL on
moto's Athena (its results fed through moto's /moto-api/static/athena/query-results), Cost Explorer -> Bill."""
from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from finops_operator.errors import ConfigError, DataSourceError
from finops_operator.models.costs import CostCategory
from finops_operator.sources.aws import AwsSource
from finops_operator.sources.curathena import AthenaCur
from finops_operator.sources.curduck import VIEW, CurCache, connect, query_cur_files, read_bill_duckdb
from finops_operator.cur.parquet import write_cur_parquet
from finops_operator.cur.sql import bill_sql
from tests.unit.test_cur import ACCOUNT, ARN, demo_bill, scope

pytestmark = pytest.mark.integration
REGION = "eu-west-1"
BUCKET = "billing-exports"
BASE = "reports/cur2"


def aws(aws_endpoint, aws_session) -> AwsSource:
    return AwsSource(REGION, endpoint_url=aws_endpoint.url, session=aws_session)


def s3(aws_endpoint, aws_session):
    client = aws_session.client("s3", region_name=REGION, endpoint_url=aws_endpoint.url)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    return client


def upload_bill(client, tmp_path: Path) -> Path:
    """The demo bill as AWS delivers it: one Parquet object per billing period (the window spans May/June)."""
    bill = demo_bill()
    local = write_cur_parquet(bill, tmp_path / "upload" / "all.parquet", account_id=ACCOUNT, cluster="demo",
                              cluster_arn=ARN)
    for period, lines in (("2024-05", [x for x in bill.lines if x.start.month == 5]),
                          ("2024-06", [x for x in bill.lines if x.start.month == 6])):
        part = type(bill)(bill.source, bill.start, bill.end, lines)
        path = write_cur_parquet(part, tmp_path / "upload" / f"{period}.parquet", account_id=ACCOUNT,
                                 cluster="demo", cluster_arn=ARN)
        client.upload_file(str(path), BUCKET, f"{BASE}/data/BILLING_PERIOD={period}/{period}-0001.snappy.parquet")
    client.put_object(Bucket=BUCKET, Key=f"{BASE}/data/BILLING_PERIOD=2024-04/old.parquet", Body=b"not read")
    client.put_object(Bucket=BUCKET, Key=f"{BASE}/metadata/BILLING_PERIOD=2024-05/manifest.json", Body=b"{}")
    return local


def cache(aws_endpoint, aws_session, tmp_path: Path, **kw) -> CurCache:
    return CurCache(aws(aws_endpoint, aws_session), bucket=BUCKET, prefix="reports", export_name="cur2",
                    cache_dir=tmp_path / "cache", **kw)


def test_duckdb_reads_the_cur_from_s3_incrementally(aws_endpoint, aws_session, tmp_path):
    client = s3(aws_endpoint, aws_session)
    upload_bill(client, tmp_path)
    cur = cache(aws_endpoint, aws_session, tmp_path)
    bill = read_bill_duckdb(cur, scope())
    want = demo_bill()
    assert bill.total() == pytest.approx(want.total()) and bill.source == "cur:duckdb"
    for category, total in want.by_category().items():
        assert bill.total(category) == pytest.approx(total)
    assert (cur.stats.downloaded, cur.stats.kept) == (2, 0)
    assert not (tmp_path / "cache" / "cur2" / "data" / "BILLING_PERIOD=2024-04").exists()

    again = cache(aws_endpoint, aws_session, tmp_path)          # a new process: nothing new to fetch
    assert read_bill_duckdb(again, scope()).total() == pytest.approx(want.total())
    assert (again.stats.downloaded, again.stats.kept) == (0, 2)

    # AWS re-delivers June under a new name (overwrite mode): the new object is fetched, the old one removed
    june = f"{BASE}/data/BILLING_PERIOD=2024-06/2024-06-0001.snappy.parquet"
    client.copy_object(Bucket=BUCKET, Key=june.replace("0001", "0002"), CopySource={"Bucket": BUCKET, "Key": june})
    client.delete_object(Bucket=BUCKET, Key=june)
    third = cache(aws_endpoint, aws_session, tmp_path)
    assert read_bill_duckdb(third, scope()).total() == pytest.approx(want.total())
    assert (third.stats.downloaded, third.stats.kept, third.stats.removed) == (1, 1, 1)
    files = sorted(p.name for p in (tmp_path / "cache").rglob("*.parquet"))
    assert files == ["2024-05-0001.snappy.parquet", "2024-06-0002.snappy.parquet"]


def test_duckdb_download_is_bounded_and_stays_in_the_cache(aws_endpoint, aws_session, tmp_path):
    upload_bill(s3(aws_endpoint, aws_session), tmp_path)
    with pytest.raises(ConfigError, match="download limit; use aws.cur.engine Athena"):
        read_bill_duckdb(cache(aws_endpoint, aws_session, tmp_path, max_bytes=1000), scope())
    assert not list((tmp_path / "cache").rglob("*.parquet"))
    with pytest.raises(DataSourceError, match="refusing object key"):
        cache(aws_endpoint, aws_session, tmp_path).local_path(f"{BASE}/data/BILLING_PERIOD=2024-05/../../../x.parquet")


def test_duckdb_says_when_the_export_has_no_files(aws_endpoint, aws_session, tmp_path):
    s3(aws_endpoint, aws_session)
    with pytest.raises(DataSourceError, match=r"no CUR 2.0 Parquet files under s3://billing-exports/reports/cur2/"):
        read_bill_duckdb(cache(aws_endpoint, aws_session, tmp_path), scope())


def _athena_rows(cursor) -> dict:
    """DuckDB's result as Athena returns it: a header row, then every value as text."""
    names = [d[0] for d in cursor.description]
    text = [[None if v is None else (f"{v:%Y-%m-%d %H:%M:%S}.000" if hasattr(v, "hour") else str(v)) for v in row]
            for row in cursor.fetchall()]
    return {"rows": [{"Data": [{"VarCharValue": v} if v is not None else {} for v in row]} for row in [names, *text]],
            "column_info": [{"Name": n, "Label": n, "Type": "varchar", "CatalogName": "hive", "SchemaName": "cur",
                             "TableName": "", "Nullable": "UNKNOWN", "Precision": 0, "Scale": 0,
                             "CaseSensitive": True} for n in names]}


def test_athena_runs_the_same_sql_and_gives_the_same_bill(aws_endpoint, aws_session, tmp_path):
    local = write_cur_parquet(demo_bill(), tmp_path / "cur.parquet", account_id=ACCOUNT, cluster="demo",
                              cluster_arn=ARN)
    duck_sql = bill_sql(scope(), VIEW)
    con = connect([local], cache_dir=tmp_path)
    aws_endpoint.set_athena_results([_athena_rows(con.execute(duck_sql))], REGION)
    duck_bill = query_cur_files([local], scope(), cache_dir=tmp_path)

    athena = AthenaCur(aws(aws_endpoint, aws_session), database="cur", table="cost_and_usage_report",
                       output_location=f"s3://{BUCKET}/athena/", poll_seconds=0.01)
    bill = athena.read_bill(scope())
    client = aws_session.client("athena", region_name=REGION, endpoint_url=aws_endpoint.url)
    received = client.get_query_execution(QueryExecutionId=athena.last_query_id)["QueryExecution"]
    assert received["Query"] == bill_sql(scope(), '"cur"."cost_and_usage_report"')
    assert received["Query"].replace('"cur"."cost_and_usage_report"', VIEW) == duck_sql
    assert received["QueryExecutionContext"]["Database"] == "cur"
    assert bill.source == "cur:athena" and bill.lines == duck_bill.lines
    assert bill.total(CostCategory.NODE) == pytest.approx(demo_bill().total(CostCategory.NODE))


def test_athena_timeout_stops_the_query_and_names_it(aws_endpoint, aws_session):
    aws_endpoint.hold_athena_queries(1000)
    now = [0.0]
    athena = AthenaCur(aws(aws_endpoint, aws_session), database="cur", table="cur2",
                       output_location=f"s3://{BUCKET}/athena/", timeout_seconds=30,
                       sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])
    with pytest.raises(DataSourceError) as err:
        athena.read_bill(scope())
    assert athena.last_query_id in str(err.value) and "stopped" in str(err.value)
    assert aws_endpoint.count("StopQueryExecution") == 1


def test_cost_explorer_bill_by_service_and_ec2_other_usage_types(aws_endpoint, aws_session):
    def period(day, nxt, groups):
        return {"TimePeriod": {"Start": day, "End": nxt}, "Total": {}, "Estimated": False,
                "Groups": [{"Keys": [k], "Metrics": {"AmortizedCost": {"Amount": a, "Unit": "USD"}}}
                           for k, a in groups]}
    by_service = {"ResultsByTime": [period("2024-05-01", "2024-05-02", [
        ("Amazon Elastic Compute Cloud - Compute", "96.5"), ("Amazon Elastic Kubernetes Service", "2.4"),
        ("Amazon Elastic Load Balancing", "0.54"), ("EC2 - Other", "3.1"), ("AmazonCloudWatch", "0.2")])]}
    by_usage = {"ResultsByTime": [period("2024-05-01", "2024-05-02", [
        ("EUW1-EBS:VolumeUsage.gp3", "1.9"), ("EUW1-NatGateway-Hours", "1.08"), ("EUW1-DataTransfer-Regional-Bytes",
                                                                                  "0.12")])]}
    aws_endpoint.set_cost_and_usage([by_service, by_usage])
    bill = aws(aws_endpoint, aws_session).cost_explorer_bill(date(2024, 5, 1), date(2024, 5, 2),
                                                             tag=("kubernetes.io/cluster/demo", "owned"))
    assert bill.source == "cost-explorer" and bill.total() == pytest.approx(96.5 + 2.4 + 0.54 + 3.1 + 0.2)
    assert bill.by_category() == pytest.approx({
        CostCategory.NODE: 96.5, CostCategory.CONTROL_PLANE: 2.4, CostCategory.LOAD_BALANCER: 0.54,
        CostCategory.VOLUME: 1.9, CostCategory.NAT_GATEWAY: 1.08, CostCategory.OTHER: 0.32})
    assert all(line.resource_id == "" and line.end - line.start == timedelta(days=1) for line in bill.lines)
    assert any("no public on-demand cost" in p for p in bill.problems)
    bodies = [json.loads(b) for a, b in aws_endpoint.bodies if a == "GetCostAndUsage"]
    assert [b["GroupBy"][0]["Key"] for b in bodies] == ["SERVICE", "USAGE_TYPE"]
    assert bodies[0]["Filter"]["Tags"] == {"Key": "kubernetes.io/cluster/demo", "Values": ["owned"],
                                           "MatchOptions": ["EQUALS"]}
    assert bodies[1]["Filter"]["And"][1]["Dimensions"]["Values"] == ["EC2 - Other"]
    assert all(b["Metrics"] == ["AmortizedCost"] and b["Granularity"] == "DAILY" for b in bodies)

