"""A bill as Cost Explorer would answer ``GetCostAndUsage`` (daily, grouped by SERVICE), as JSON.

The document is exactly the documented response shape (``GroupDefinitions``,
``ResultsByTime`` of ``TimePeriod`` / ``Total`` / ``Groups`` / ``Estimated``,
``DimensionValueAttributes``; no ``NextPageToken``: one page), so a client
written against the API reads it unchanged. Two metrics, as Cost Explorer
computes them for a no-upfront Compute Savings Plan that is fully used:

* ``AmortizedCost``: what each service's usage effectively cost (the lines' ``cost``);
* ``UnblendedCost``: covered usage is negated in its own service, and the plan's
  recurring fee appears under ``Savings Plans for AWS Compute usage``.

Both add up to the same total each day. Amounts are strings with 10 decimals, unit ``USD``.
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..models.costs import Bill, BillLine, CostCategory

SAVINGS_PLANS_SERVICE = "Savings Plans for AWS Compute usage"
METRICS = ("AmortizedCost", "UnblendedCost")

#: CUR product code -> Cost Explorer SERVICE dimension value (EC2 splits into compute and "EC2 - Other").
CE_SERVICES = {"AmazonEKS": "Amazon Elastic Container Service for Kubernetes",
               "AWSELB": "Amazon Elastic Load Balancing", "AWSDataTransfer": "AWS Data Transfer"}


def ce_service(line: BillLine) -> str:
    """The Cost Explorer SERVICE a bill line is grouped under."""
    if line.service == "AmazonEC2":
        return "Amazon Elastic Compute Cloud - Compute" if line.category is CostCategory.NODE else "EC2 - Other"
    return CE_SERVICES.get(line.service, line.service)


def cost_explorer_response(bill: Bill) -> dict[str, Any]:
    """The GetCostAndUsage response for ``bill`` (Granularity DAILY, GroupBy DIMENSION SERVICE)."""
    days: dict[Any, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(lambda: dict.fromkeys(METRICS, 0.0)))
    for line in bill.lines:
        groups = days[line.start.date()]
        service = ce_service(line)
        groups[service]["AmortizedCost"] += line.cost
        if line.line_item_type == "SavingsPlanCoveredUsage":
            groups[SAVINGS_PLANS_SERVICE]["UnblendedCost"] += line.cost     # the plan's fee; usage negated
        else:
            groups[service]["UnblendedCost"] += line.cost
    start, end = bill.start.date(), (bill.end - timedelta(microseconds=1)).date()
    results = []
    day = start
    while day <= end:
        groups = days.get(day, {})
        results.append({
            "TimePeriod": {"Start": day.isoformat(), "End": (day + timedelta(days=1)).isoformat()},
            "Total": {},
            "Groups": [{"Keys": [service], "Metrics": {m: _amount(v) for m, v in metrics.items()}}
                       for service, metrics in sorted(groups.items())],
            "Estimated": False,
        })
        day += timedelta(days=1)
    return {"GroupDefinitions": [{"Type": "DIMENSION", "Key": "SERVICE"}], "ResultsByTime": results,
            "DimensionValueAttributes": []}


def _amount(value: float) -> dict[str, str]:
    return {"Amount": f"{value:.10f}", "Unit": "USD"}


def write_cost_explorer_json(bill: Bill, path: str | os.PathLike) -> Path:
    """Write :func:`cost_explorer_response` of ``bill`` to ``path`` atomically; returns the path."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(cost_explorer_response(bill), indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
