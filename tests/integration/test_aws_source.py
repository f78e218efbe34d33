"""AwsSource against moto in server mode on loopback (through the recording/throttling proxy)."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import boto3
import pytest

from finops_operator.errors import DataSourceError
from finops_operator.models import VolumeSource
from finops_operator.sources.aws import AwsSource
from finops_operator.sources.cost_cache import CostCache

pytestmark = pytest.mark.integration
REGION = "eu-west-1"
MOTO_AMI = "ami-12c6146b"      # one of moto's built-in images (listing all images is slow)


def source(aws_endpoint, aws_session, **kwargs) -> AwsSource:
    return AwsSource(REGION, endpoint_url=aws_endpoint.url, session=aws_session, **kwargs)


def ec2(aws_endpoint, aws_session):
    return aws_session.client("ec2", region_name=REGION, endpoint_url=aws_endpoint.url)


def ce_period(day: str, nxt: str, groups: list[tuple[str, str]], estimated: bool = False) -> dict:
    return {"TimePeriod": {"Start": day, "End": nxt}, "Total": {}, "Estimated": estimated,
            "Groups": [{"Keys": [k], "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}}
                       for k, amount in groups]}


# --------------------------------------------------------------------------- EC2


def test_unattached_volumes_with_tags_size_type_and_age(aws_endpoint, aws_session):
    client = ec2(aws_endpoint, aws_session)
    before = datetime.now(timezone.utc) - timedelta(minutes=1)
    orphan = client.create_volume(AvailabilityZone="eu-west-1a", Size=100, VolumeType="gp3", Iops=4000,
                                  Throughput=250, TagSpecifications=[{"ResourceType": "volume", "Tags": [
                                      {"Key": "team", "Value": "payments"}, {"Key": "Name", "Value": "old-data"}]}])
    io1 = client.create_volume(AvailabilityZone="eu-west-1b", Size=20, VolumeType="io1", Iops=1000)
    used = client.create_volume(AvailabilityZone="eu-west-1a", Size=8, VolumeType="gp2")
    image = MOTO_AMI
    instance = client.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                    Placement={"AvailabilityZone": "eu-west-1a"})["Instances"][0]["InstanceId"]
    client.attach_volume(VolumeId=used["VolumeId"], InstanceId=instance, Device="/dev/sdf")

    volumes = {v.id: v for v in source(aws_endpoint, aws_session).unattached_volumes()}
    assert used["VolumeId"] not in volumes
    got = volumes[orphan["VolumeId"]]
    assert got.source is VolumeSource.EBS and got.state == "available"
    assert (got.size_gib, got.volume_type, got.zone) == (100, "gp3", "eu-west-1a")
    assert (got.iops, got.throughput) == (4000, 250)
    assert got.tags == {"team": "payments", "Name": "old-data"}
    assert got.created_at.tzinfo is not None and got.created_at >= before
    assert volumes[io1["VolumeId"]].volume_type == "io1" and volumes[io1["VolumeId"]].tags == {}
    assert aws_endpoint.count("DescribeVolumes") == 1


def test_snapshots_and_instance_types(aws_endpoint, aws_session):
    client = ec2(aws_endpoint, aws_session)
    volume = client.create_volume(AvailabilityZone="eu-west-1a", Size=10, VolumeType="gp2")["VolumeId"]
    other = client.create_volume(AvailabilityZone="eu-west-1a", Size=10, VolumeType="gp2")["VolumeId"]
    first = client.create_snapshot(VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": [
        {"Key": "finops", "Value": "before-delete"}]}])["SnapshotId"]
    second = client.create_snapshot(VolumeId=volume)["SnapshotId"]
    client.create_snapshot(VolumeId=other)
    aws = source(aws_endpoint, aws_session)
    snaps = aws.snapshots_for(volume)
    assert {s.id for s in snaps} == {first, second}
    assert all(s.volume_id == volume and s.size_gib == 10 for s in snaps)
    assert next(s for s in snaps if s.id == first).tags == {"finops": "before-delete"}
    assert aws.snapshots_for("vol-00000000000000000") == []

    image = MOTO_AMI
    ids = [client.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType=kind)["Instances"][0]["InstanceId"]
           for kind in ("m5.large", "c6i.2xlarge")]
    provider = f"aws:///eu-west-1a/{ids[0]}"
    types = aws.instance_types_of([provider, ids[1], "i-0123456789abcdef0"])
    assert types == {provider: "m5.large", ids[1]: "c6i.2xlarge"}     # a gone instance is left out
    with pytest.raises(Exception) as err:
        aws.instance_types_of(["gce://project/zone/vm"])
    assert "providerID" in str(err.value)


# --------------------------------------------------------------------------- Cost Explorer


def test_cost_by_service_follows_pages(aws_endpoint, aws_session):
    page1 = {"ResultsByTime": [ce_period("2024-05-01", "2024-05-02", [("Amazon Elastic Compute Cloud - Compute", "120.5"),
                                                                     ("Amazon Simple Storage Service", "3.25")])],
             "NextPageToken": "page-2", "DimensionValueAttributes": []}
    page2 = {"ResultsByTime": [ce_period("2024-05-02", "2024-05-03", [("Amazon Elastic Compute Cloud - Compute", "99.0")],
                                         estimated=True)], "DimensionValueAttributes": []}
    aws_endpoint.set_cost_and_usage([page1, page2])
    aws = source(aws_endpoint, aws_session)
    rows = aws.cost_by("SERVICE", date(2024, 5, 1), date(2024, 5, 3))
    assert [(r.start.isoformat(), r.group, r.amount, r.estimated) for r in rows] == [
        ("2024-05-01", "Amazon Elastic Compute Cloud - Compute", 120.5, False),
        ("2024-05-01", "Amazon Simple Storage Service", 3.25, False),
        ("2024-05-02", "Amazon Elastic Compute Cloud - Compute", 99.0, True)]
    assert aws_endpoint.count("GetCostAndUsage") == 2 and aws.calls["ce:get_cost_and_usage"] == 2
    bodies = [json.loads(b) for a, b in aws_endpoint.bodies if a == "GetCostAndUsage"]
    assert bodies[0]["GroupBy"] == [{"Type": "DIMENSION", "Key": "SERVICE"}] and "NextPageToken" not in bodies[0]
    assert bodies[1]["NextPageToken"] == "page-2" and bodies[0]["Granularity"] == "DAILY"


def test_cost_by_tag_strips_the_key_and_keeps_untagged(aws_endpoint, aws_session):
    aws_endpoint.set_cost_and_usage([{"ResultsByTime": [ce_period("2024-05-01", "2024-05-02", [
        ("namespace$payments", "40"), ("namespace$shop", "10.5"), ("namespace$", "7")])]}])
    rows = source(aws_endpoint, aws_session).cost_by("namespace", date(2024, 5, 1), date(2024, 5, 2))
    assert {r.group: r.amount for r in rows} == {"payments": 40.0, "shop": 10.5, "": 7.0}
    body = json.loads(aws_endpoint.bodies[-1][1])
    assert body["GroupBy"] == [{"Type": "TAG", "Key": "namespace"}]


def test_cache_hit_avoids_a_second_call(aws_endpoint, aws_session, tmp_path):
    aws_endpoint.set_cost_and_usage([{"ResultsByTime": [ce_period("2024-05-01", "2024-05-02", [("AWS Lambda", "1.5")])]}])
    now = [datetime(2024, 5, 2, 6, tzinfo=timezone.utc)]
    cache = CostCache(tmp_path / "ce.json", ttl=timedelta(hours=6), clock=lambda: now[0])
    aws = source(aws_endpoint, aws_session, cache=cache)
    first = aws.cost_by("SERVICE", date(2024, 5, 1), date(2024, 5, 2))
    again = aws.cost_by("SERVICE", date(2024, 5, 1), date(2024, 5, 2))
    assert first == again and aws.cache_hits == 1 and aws.total_calls == 1
    assert aws_endpoint.count("GetCostAndUsage") == 1
    # a new process reuses the file-backed cache
    later = source(aws_endpoint, aws_session, cache=CostCache(tmp_path / "ce.json", clock=lambda: now[0]))
    assert later.cost_by("SERVICE", date(2024, 5, 1), date(2024, 5, 2)) == first
    assert later.total_calls == 0 and aws_endpoint.count("GetCostAndUsage") == 1
    # after the TTL the answer is fetched again
    now[0] += timedelta(hours=7)
    assert aws.cost_by("SERVICE", date(2024, 5, 1), date(2024, 5, 2)) == first
    assert aws_endpoint.count("GetCostAndUsage") == 2 and aws.total_calls == 2


# --------------------------------------------------------------------------- throttling and credentials


def test_throttling_is_retried_by_botocore(aws_endpoint, aws_session):
    ec2(aws_endpoint, aws_session).create_volume(AvailabilityZone="eu-west-1a", Size=5, VolumeType="gp3")
    aws_endpoint.throttle("DescribeVolumes", 2)
    aws = source(aws_endpoint, aws_session, max_attempts=4)
    assert len(aws.unattached_volumes()) == 1
    assert aws_endpoint.count("DescribeVolumes") == 3 and aws.retries == 2


@pytest.mark.parametrize("action, call, code", [
    ("DescribeVolumes", lambda aws: aws.unattached_volumes(), "RequestLimitExceeded"),
    ("GetCostAndUsage", lambda aws: aws.cost_by("SERVICE", date(2024, 5, 1), date(2024, 5, 2)), "ThrottlingException"),
])
def test_persistent_throttling_ends_in_a_clear_error(aws_endpoint, aws_session, action, call, code):
    aws_endpoint.throttle(action, 100)
    aws = source(aws_endpoint, aws_session, max_attempts=3)
    with pytest.raises(DataSourceError) as err:
        call(aws)
    text = str(err.value)
    assert "throttled" in text and code in text and "after 3 attempts" in text and "maxAttempts" in text
    assert aws_endpoint.count(action) == 3
    assert len(aws.cache.__dict__["_entries"]) == 0           # nothing half-made was cached


def test_credentials_come_from_the_environment(aws_endpoint, monkeypatch, tmp_path):
    for name in ("AWS_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    with pytest.raises(DataSourceError) as err:
        AwsSource(REGION, endpoint_url=aws_endpoint.url).unattached_volumes()
    assert "no AWS credentials" in str(err.value) and "IRSA" in str(err.value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "env-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    assert AwsSource(REGION, endpoint_url=aws_endpoint.url).unattached_volumes() == []
    assert "env-secret" not in str(aws_endpoint.bodies)


def test_bad_region_is_a_config_error():
    from finops_operator.errors import ConfigError
    with pytest.raises(ConfigError) as err:
        AwsSource("Ireland")
    assert "aws.region" in str(err.value) and "eu-west-1" in str(err.value)
