"""`finops notifications`: delivery statistics of the NotificationChannels in the cluster.

    finops notifications [--namespace NS | --all-namespaces] [--kubeconfig FILE] [--output table|json]

JSON: ``{"channels": [{"namespace", "name", "type", "ready", "reason", "delivery": {sent, failed, inDoubt,
pending, batched, suppressed, rateLimited, lastError, lastDelivery, receipts}, "bySubscription":
{"ns/name": {"Sent": 3, "Failed": 1}}}]}`` (the channel's status and the counts kept in its queue).
"""
from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from ..api.notifycluster import channel_report
from ..api.wiring import api_client_from
from .common import print_json

COLUMNS = ("sent", "batched", "suppressed", "rateLimited", "failed", "inDoubt", "pending")


def run_notifications(args: argparse.Namespace, console: Console) -> int:
    api = api_client_from(args.kubeconfig)
    try:
        rows = channel_report(api, None if args.all_namespaces else args.namespace)
    finally:
        api.close()
    if args.output == "json":
        print_json({"channels": rows})
        return 0
    console.print(channels_table(rows))
    return 0


def channels_table(rows: list[dict]) -> Table:
    table = Table(title="Notification channels", title_justify="left")
    for name in ("Channel", "Type", "Ready", *COLUMNS, "By subscription", "Last error"):
        table.add_column(name, justify="right" if name in COLUMNS else "left")
    for row in rows:
        d = row["delivery"]
        subs = "; ".join(f"{s}: " + ", ".join(f"{o} {c}" for o, c in sorted(counts.items()))
                         for s, counts in sorted(row["bySubscription"].items()))
        table.add_row(f"{row['namespace']}/{row['name']}", row["type"] or "?", row["ready"],
                      *(str(d.get(c, 0)) for c in COLUMNS), subs or "-", d.get("lastError") or row["reason"] or "")
    return table
