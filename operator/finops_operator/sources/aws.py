"""AWS adapter (boto3): Cost Explorer costs (daily bills), EBS volumes, snapshots, instance types.

Usage::

    aws = AwsSource("eu-west-1", cache=CostCache(Path("ce-cache.json")))
    rows = aws.cost_by("SERVICE", date(2024, 5, 1), date(2024, 6, 1))
    rows = aws.cost_by("namespace", start, end)           # a cost allocation tag
    bill = aws.cost_explorer_bill(start, end, tag=("kubernetes.io/cluster/prod", "owned"))   # -> models.costs.Bill
    aws.unattached_volumes()                              # models.Volume, state "available"
    aws.calls, aws.cache_hits                             # for the scan summary

Credentials come the normal boto3 way (environment, shared profile, IRSA via
``AWS_WEB_IDENTITY_TOKEN_FILE``/``AWS_ROLE_ARN``, instance metadata); nothing
here reads or logs them. The region comes from the policy. Cost Explorer is a
global service answered in us-east-1 (cn-northwest-1 in China), whatever the
policy region. ``endpoint_url`` points every client elsewhere (moto in tests).

Throttling (``ThrottlingException``, ``RequestLimitExceeded``,
``LimitExceededException`` ...) is retried by botocore's own retry handler
(``retry_mode`` standard or adaptive, ``max_attempts`` in all); when it still
fails the call raises DataSourceError saying it was throttled, after how many
attempts, and what to do. Every Cost Explorer answer goes through the cache
(each request costs $0.01), so ``calls`` counts real API requests (one per
page) and ``cache_hits`` the answers served without one.
"""
from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, Callable, Iterable

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from ..errors import ConfigError, DataSourceError
from ..models import Volume, VolumeSource
from ..models.costs import CURRENCY, Bill, BillLine, CostCategory, PriceSource
from ..scrub import redact_url, scrub
from .cost_cache import CostCache
from ..cur.sql import category_of     # the one category rule, shared with the CUR

log = logging.getLogger(__name__)

# IAM actions each method needs (to generate policies and docs from code).
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "cost_by": ("ce:GetCostAndUsage",),
    "unattached_volumes": ("ec2:DescribeVolumes",),
    "snapshots_for": ("ec2:DescribeSnapshots",),
    "instance_types_of": ("ec2:DescribeInstances",),
    "on_demand": ("pricing:GetProducts",),                 # sources/awsprices.py (spec.pricing.live)
    "spot": ("ec2:DescribeSpotPriceHistory",),             # sources/awsprices.py (spec.pricing.live)
    "cost_explorer_bill": ("ce:GetCostAndUsage",),
    "cur_duckdb": ("s3:ListBucket", "s3:GetObject"),                  # curduck.CurCache
    "cur_athena": ("athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults",
                   "athena:StopQueryExecution", "glue:GetTable", "glue:GetPartitions", "s3:GetBucketLocation",
                   "s3:GetObject", "s3:ListBucket", "s3:PutObject"),  # curathena.AthenaCur (table + results)
}
THROTTLING_CODES = {"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
                    "TooManyRequestsException", "RequestLimitExceeded", "LimitExceededException",
                    "RequestThrottled", "SlowDown", "EC2ThrottledException", "BandwidthLimitExceeded"}
_DIMENSIONS = {"SERVICE", "LINKED_ACCOUNT", "REGION", "USAGE_TYPE", "INSTANCE_TYPE", "AZ", "PURCHASE_TYPE"}
_PROVIDER_ID = re.compile(r"^aws:///[^/]*/(i-[0-9a-f]+)$")
_INSTANCE_ID = re.compile(r"^i-[0-9a-f]+$")
MAX_ANSWER = 300   # characters of an AWS error message kept in an error (status, Events)


@dataclass(frozen=True, slots=True)
class CostRow:
    """Cost of one group (service name or tag value; "" for untagged) in one period."""

    start: date
    end: date
    group: str
    amount: float
    unit: str
    estimated: bool
    metric: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    id: str
    volume_id: str
    state: str
    size_gib: int
    started_at: datetime | None
    tags: dict[str, str] = field(default_factory=dict)


def _day(text: str) -> date:
    return date.fromisoformat(text[:10])


def _tags(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in items or []}


class AwsSource:
    """Cost Explorer and EC2 reads for one account and region."""

    def __init__(self, region: str, *, endpoint_url: str | None = None, session: boto3.Session | None = None,
                 cache: CostCache | None = None, max_attempts: int = 5, retry_mode: str = "standard",
                 connect_timeout: float = 10, read_timeout: float = 60):
        if not region or not re.match(r"^[a-z]{2}(-[a-z]+)+-\d+$", region):
            raise ConfigError(f"{region!r} is not an AWS region; write e.g. 'eu-west-1'", field="aws.region")
        if retry_mode not in ("standard", "adaptive", "legacy"):
            raise ConfigError(f"retry mode {retry_mode!r}: use 'standard' or 'adaptive'", field="aws.retryMode")
        self.region = region
        self.endpoint_url = endpoint_url
        self.cache = cache if cache is not None else CostCache()
        self.max_attempts = max_attempts
        self.calls: Counter[str] = Counter()        # API requests answered by AWS, by operation (pages count)
        self.cache_hits = 0
        self.retries = 0                            # extra attempts botocore made (throttling, 5xx)
        self._session = session or boto3.Session()
        self._config = Config(retries={"mode": retry_mode, "total_max_attempts": max_attempts},
                              connect_timeout=connect_timeout, read_timeout=read_timeout)
        self._clients: dict[str, Any] = {}

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            region = self.region
            if service == "ce":
                region = "cn-northwest-1" if self.region.startswith("cn-") else "us-east-1"
            self._clients[service] = self._session.client(service, region_name=region, config=self._config,
                                                          endpoint_url=self.endpoint_url)
        return self._clients[service]

    # ------------------------------------------------------------------ calling

    def _call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        """One API request with botocore retries; every failure becomes a DataSourceError."""
        client = self._client(service)
        try:
            answer = getattr(client, operation)(**params)
        except ClientError as exc:
            raise self._client_error(service, operation, exc) from None
        except NoCredentialsError:
            raise DataSourceError("no AWS credentials found; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                                  "AWS_PROFILE, or IRSA (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE)",
                                  source=f"aws {service}", field=operation) from None
        except EndpointConnectionError as exc:
            raise DataSourceError(f"cannot reach the endpoint ({scrub(exc, limit=MAX_ANSWER)})",
                                  source=f"aws {service}", field=operation) from None
        except BotoCoreError as exc:
            raise DataSourceError(f"request failed: {scrub(exc, limit=MAX_ANSWER)}", source=f"aws {service}",
                                  field=operation) from None
        self.calls[f"{service}:{operation}"] += 1
        self.retries += answer.pop("ResponseMetadata", {}).get("RetryAttempts", 0)
        return answer

    def _client_error(self, service: str, operation: str, exc: ClientError) -> DataSourceError:
        self.calls[f"{service}:{operation}"] += 1
        error = exc.response.get("Error", {})
        code, message = scrub(error.get("Code", "?"), limit=80), scrub(error.get("Message", ""), limit=MAX_ANSWER)
        attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) + 1
        self.retries += attempts - 1
        where = f"aws {service} ({redact_url(self.endpoint_url) if self.endpoint_url else self.region})"
        if code in THROTTLING_CODES:
            return DataSourceError(
                f"throttled by AWS ({code}: {message}) after {attempts} attempts with {self._config.retries['mode']} "
                "retries; try again later, raise aws.maxAttempts, or use retryMode 'adaptive'",
                source=where, field=operation)
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            return DataSourceError(f"access denied ({code}: {message}); the role needs "
                                   f"{', '.join(self._permission_for(operation)) or 'this permission'}",
                                   source=where, field=operation)
        return DataSourceError(f"{code}: {message}", source=where, field=operation)

    @staticmethod
    def _permission_for(operation: str) -> tuple[str, ...]:
        wanted = operation.replace("_", "").lower()
        return tuple(p for perms in PERMISSIONS.values() for p in perms if p.split(":")[1].lower() == wanted)

    def _pages(self, service: str, operation: str, params: dict[str, Any], items: str,
               token_in: str, token_out: str) -> list[Any]:
        """Follow a pagination token to the end and return all items."""
        out: list[Any] = []
        token: str | None = None
        while True:
            request = dict(params, **({token_in: token} if token else {}))
            answer = self._call(service, operation, **request)
            out.extend(answer.get(items, []))
            token = answer.get(token_out)
            if not token:
                return out

    def _cached(self, operation: str, params: dict[str, Any], fetch: Callable[[], Any]) -> Any:
        value = self.cache.get(operation, params)
        if value is not None:
            self.cache_hits += 1
            return value
        value = fetch()
        self.cache.put(operation, params, value)
        return value

    # ------------------------------------------------------------------ Cost Explorer

    def cost_by(self, group_by: str, start: date, end: date, *, granularity: str = "DAILY",
                metric: str = "UnblendedCost", cost_filter: dict[str, Any] | None = None) -> list[CostRow]:
        """Costs per period grouped by a dimension (SERVICE, REGION ...) or a cost allocation tag key.

        ``end`` is exclusive (as in Cost Explorer). Untagged costs come back
        with ``group == ""``. All pages are read (NextPageToken) and the whole
        answer is cached under the request.
        """
        if end <= start:
            raise ConfigError(f"end {end} must be after start {start}", field="cost.period")
        if granularity not in ("DAILY", "MONTHLY", "HOURLY"):
            raise ConfigError(f"granularity {granularity!r}: use DAILY, MONTHLY or HOURLY", field="cost.granularity")
        kind = "DIMENSION" if group_by.upper() in _DIMENSIONS else "TAG"
        params: dict[str, Any] = {
            "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()}, "Granularity": granularity,
            "Metrics": [metric], "GroupBy": [{"Type": kind, "Key": group_by.upper() if kind == "DIMENSION" else group_by}],
        }
        if cost_filter:
            params["Filter"] = cost_filter
        periods = self._cached("GetCostAndUsage", params, lambda: self._pages(
            "ce", "get_cost_and_usage", params, "ResultsByTime", "NextPageToken", "NextPageToken"))
        return self._cost_rows(periods, metric, tag=kind == "TAG", tag_key=group_by)

    @staticmethod
    def _cost_rows(periods: list[dict[str, Any]], metric: str, *, tag: bool, tag_key: str) -> list[CostRow]:
        rows = []
        for period in periods:
            start, end = _day(period["TimePeriod"]["Start"]), _day(period["TimePeriod"]["End"])
            for group in period.get("Groups", []):
                value = group.get("Metrics", {}).get(metric, {})
                name = group.get("Keys", [""])[0]
                if tag:   # tag groups come back as "key$value"; "key$" is the untagged remainder
                    name = name.split("$", 1)[1] if "$" in name else name
                rows.append(CostRow(start, end, name, float(value.get("Amount", 0.0)), value.get("Unit", "USD"),
                                    bool(period.get("Estimated", False)), metric))
        return rows

    def cost_explorer_bill(self, start: date, end: date, *, tag: tuple[str, str] | None = None,
                           metric: str = "AmortizedCost") -> Bill:
        """Daily cost by SERVICE as a Bill (no resource ids), optionally only what carries ``tag`` (key, value).

        AmortizedCost is the effective cost (Savings Plans and RI spread over their usage). "EC2 - Other"
        is split by USAGE_TYPE (EBS volumes, NAT gateways, the rest) with one more grouped request.
        Each request is paginated and cached like :meth:`cost_by`.
        """
        scope = {"Tags": {"Key": tag[0], "Values": [tag[1]], "MatchOptions": ["EQUALS"]}} if tag else None
        rows = self.cost_by("SERVICE", start, end, metric=metric, cost_filter=scope)
        split: list[CostRow] = []
        if any(r.group == EC2_OTHER and r.amount for r in rows):
            other = {"Dimensions": {"Key": "SERVICE", "Values": [EC2_OTHER], "MatchOptions": ["EQUALS"]}}
            split = self.cost_by("USAGE_TYPE", start, end, metric=metric,
                                 cost_filter={"And": [scope, other]} if scope else other)
        return ce_bill([r for r in rows if not (split and r.group == EC2_OTHER)], split, start, end,
                       where=f"cost explorer ({metric}{f', tag {tag[0]}={tag[1]}' if tag else ''})")

    # ------------------------------------------------------------------ EC2

    def unattached_volumes(self) -> list[Volume]:
        """EBS volumes in state ``available`` (attached to nothing), with tags, size, type, age, IOPS."""
        items = self._pages("ec2", "describe_volumes", {"Filters": [{"Name": "status", "Values": ["available"]}],
                                                        "MaxResults": 500}, "Volumes", "NextToken", "NextToken")
        return [Volume(id=v["VolumeId"], source=VolumeSource.EBS, size_gib=int(v["Size"]),
                       volume_type=v.get("VolumeType", ""), state=v.get("State", ""),
                       created_at=v.get("CreateTime"), tags=_tags(v.get("Tags")), zone=v.get("AvailabilityZone"),
                       iops=v.get("Iops"), throughput=v.get("Throughput"))
                for v in items]

    def snapshots_for(self, volume_id: str) -> list[Snapshot]:
        """This account's snapshots of a volume, oldest first (for the snapshot-before-delete rule)."""
        items = self._pages("ec2", "describe_snapshots", {"OwnerIds": ["self"], "Filters": [
            {"Name": "volume-id", "Values": [volume_id]}]}, "Snapshots", "NextToken", "NextToken")
        snaps = [Snapshot(s["SnapshotId"], s.get("VolumeId", volume_id), s.get("State", ""), int(s.get("VolumeSize", 0)),
                          s.get("StartTime"), _tags(s.get("Tags"))) for s in items]
        return sorted(snaps, key=lambda s: (s.started_at is None, s.started_at or datetime.min))

    def instance_types_of(self, ids: Iterable[str]) -> dict[str, str]:
        """Instance type per given id; accepts ``i-...`` ids or node provider ids ``aws:///<zone>/i-...``.

        Unknown instances are left out (a node may be gone already); malformed ids raise ConfigError.
        """
        wanted: dict[str, str] = {}
        for raw in ids:
            match = _PROVIDER_ID.match(raw)
            instance = match.group(1) if match else raw
            if not _INSTANCE_ID.match(instance):
                raise ConfigError(f"{raw!r} is not an EC2 instance id or provider id (aws:///zone/i-...)",
                                  field="node.spec.providerID")
            wanted[instance] = raw
        found: dict[str, str] = {}
        ordered = sorted(wanted)
        for i in range(0, len(ordered), 200):           # at most 200 values per filter
            reservations = self._pages("ec2", "describe_instances", {"Filters": [
                {"Name": "instance-id", "Values": ordered[i:i + 200]}]}, "Reservations", "NextToken", "NextToken")
            for reservation in reservations:
                for instance in reservation.get("Instances", []):
                    found[wanted[instance["InstanceId"]]] = instance["InstanceType"]
        return found


# --------------------------------------------------------------------------- Cost Explorer -> Bill

EC2_OTHER = "EC2 - Other"
SERVICE_CODES = {   # Cost Explorer SERVICE names -> the CUR product codes a Bill uses
    "Amazon Elastic Compute Cloud - Compute": "AmazonEC2", EC2_OTHER: "AmazonEC2",
    "Amazon Elastic Kubernetes Service": "AmazonEKS", "Amazon Elastic Load Balancing": "AWSELB",
    "Amazon Virtual Private Cloud": "AmazonVPC", "Amazon Elastic Block Store": "AmazonEC2",
    "Amazon Simple Storage Service": "AmazonS3", "AmazonCloudWatch": "AmazonCloudWatch",
}
SERVICE_CATEGORIES = {
    "Amazon Elastic Compute Cloud - Compute": CostCategory.NODE,
    "Amazon Elastic Kubernetes Service": CostCategory.CONTROL_PLANE,
    "Amazon Elastic Load Balancing": CostCategory.LOAD_BALANCER,
    "Amazon Elastic Block Store": CostCategory.VOLUME,
}


def _ce_line(row: CostRow, *, service: str, usage_type: str, category: CostCategory) -> BillLine:
    start = datetime.combine(row.start, time(), UTC)
    end = datetime.combine(row.end, time(), UTC)
    return BillLine(start, end, "", category, service, usage_type, row.amount, row.amount, PriceSource.EFFECTIVE)


def ce_bill(by_service: list[CostRow], ec2_other: list[CostRow], start: date, end: date, *, where: str) -> Bill:
    """Cost Explorer rows -> Bill: categories by service, "EC2 - Other" by usage type (cur.sql.category_of)."""
    for row in (*by_service, *ec2_other):
        if row.unit != CURRENCY:
            raise ConfigError(f"Cost Explorer answered in {row.unit!r}; only {CURRENCY} is supported",
                              source=where, field="Unit")
    lines = [_ce_line(r, service=SERVICE_CODES.get(r.group, r.group), usage_type="",
                      category=SERVICE_CATEGORIES.get(r.group, CostCategory.OTHER)) for r in by_service if r.amount]
    lines += [_ce_line(r, service="AmazonEC2", usage_type=r.group, category=category_of("AmazonEC2", r.group, ""))
              for r in ec2_other if r.amount]
    bill = Bill("cost-explorer", datetime.combine(start, time(), UTC), datetime.combine(end, time(), UTC), lines)
    bill.problems.append("Cost Explorer gives no public on-demand cost: list_cost is the billed cost")
    estimated = sorted({r.start.isoformat() for r in (*by_service, *ec2_other) if r.estimated})
    if estimated:
        bill.problems.append(f"Cost Explorer marks {len(estimated)} day(s) as estimated ({estimated[0]} ...)")
    if not lines:
        bill.problems.append(f"{where} has no cost from {start} to {end}")
    return bill
