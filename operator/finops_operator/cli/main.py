"""`finops` command line: scan, costs, health, insights, report, forecast, anomalies, demo, simulate, run.

This module imports the subcommands (lazily, so ``finops --help`` stays fast) and no
subcommand imports it: shared helpers live in :mod:`.common`, :mod:`.output` and :mod:`.apply`.
Every error a user can act on (a :class:`FinOpsError`) ends in exit code 2 with one line on
stderr naming the file and the field.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from .. import __version__
from ..errors import FinOpsError


def _add_scan(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scan", help="Scan a cluster snapshot against a GitOps repository",
                       description="Run the detectors and guardrails over a snapshot (or a live cluster) "
                                   "and show the findings; --apply writes one branch per change set.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--snapshot", type=Path, help="snapshot file written by `finops simulate`")
    src.add_argument("--kubeconfig", nargs="?", const="", metavar="PATH",
                     help="scan a live cluster (default kubeconfig when no path is given); needs --prometheus")
    p.add_argument("--prometheus", metavar="URL", help="Prometheus URL for a live scan")
    p.add_argument("--history", default="14d", help="history window for a live scan (default 14d)")
    p.add_argument("--repo", type=Path, help="GitOps repository to edit (a local git checkout)")
    p.add_argument("--policy", type=Path, help="policy YAML (a FinOpsPolicy spec or its file); default: built-in")
    p.add_argument("--entry-point", metavar="DIR", help="the overlay, chart or values file of --repo that deploys "
                   "this cluster (like the policy's spec.git.paths); needed when several environments deploy a "
                   "workload and no Argo CD / Flux record says which")
    p.add_argument("--apply", action="store_true", help="write one branch per change set into --repo")
    p.add_argument("--base", default=None, help="base branch for --apply (default: the repo's current branch)")
    p.add_argument("--output", choices=["table", "json"], default="table")
    p.add_argument("-v", "--verbose", action="store_true", help="also list skipped targets and reasons")
    p.set_defaults(func=_cmd_scan)


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="End-to-end demo on embedded defaults: no cluster needed")
    p.add_argument("--workdir", type=Path, help="where to create the throwaway GitOps repo (default: a temp dir)")
    p.add_argument("--scenario", type=Path, help="scenario YAML (default: the bundled demo scenario)")
    p.set_defaults(func=_cmd_demo)


def _add_costs(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("costs", help="Cost by namespace, team, workload, node, label, service or category",
                       description="Allocate the cluster's cost (reconciled with the bill where there is one) and "
                                   "show it grouped, with idle and shared costs as their own rows.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--snapshot", type=Path, help="snapshot file written by `finops simulate` (default: the demo's "
                                                   "bundled scenario)")
    src.add_argument("--kubeconfig", nargs="?", const="", metavar="PATH",
                     help="a live cluster (default kubeconfig when no path is given); needs --prometheus")
    p.add_argument("--prometheus", metavar="URL", help="Prometheus URL for a live cluster")
    p.add_argument("--policy", type=Path, help="policy YAML (its allocation and pricing settings); default: built-in")
    p.add_argument("--cur", type=Path, nargs="+", metavar="FILE",
                   help="with a snapshot: CUR 2.0 Parquet files (one directory) as the bill, read with DuckDB; "
                        "default: the bill the simulator writes for the snapshot")
    p.add_argument("--by", default="namespace", metavar="GROUPING",
                   help="namespace (default), team, workload, node, service, category or label:KEY")
    p.add_argument("--window", default="30d", help="7d, 30d (default), month-to-date or FROM..TO (ISO dates, TO "
                                                   "included)")
    p.add_argument("--top", type=_positive, metavar="N", help="show the N largest rows, the rest as one 'other' row")
    p.add_argument("--output", choices=["table", "json", "csv"], default="table")
    p.set_defaults(func=_cmd_costs)


def _add_health(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("health", help="FinOps health score (0-100) per team or namespace, with its breakdown",
                       description="Score each team or namespace on efficiency (used vs requested), waste (idle and "
                                   "orphaned cost share), budget adherence and savings realized; categories without "
                                   "data are left out and the weights renormalised (said in the output).")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--snapshot", type=Path, help="snapshot file written by `finops simulate` (default: the demo's "
                                                   "bundled scenario)")
    src.add_argument("--kubeconfig", nargs="?", const="", metavar="PATH",
                     help="a live cluster (default kubeconfig when no path is given); needs --prometheus")
    p.add_argument("--prometheus", metavar="URL", help="Prometheus URL for a live cluster")
    p.add_argument("--history", default="14d", help="usage history of a live cluster (default 14d)")
    p.add_argument("--policy", type=Path, help="policy YAML (its health weights, allocation and pricing); "
                                               "default: built-in")
    p.add_argument("--by", choices=["team", "namespace"], default="team")
    p.add_argument("--output", choices=["table", "json"], default="table")
    p.set_defaults(func=_cmd_health)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number (e.g. --top 10)")
    return int(text)


def _add_insights(sub: argparse._SubParsersAction) -> None:
    from ..models.insights import Category, Persona, Priority
    p = sub.add_parser("insights", help="Insights for a CFO, an engineer, a finance analyst or a business lead",
                       description="Insights computed from the cluster's cost, usage, forecasts, anomalies, "
                                   "opportunities and business series (offline: the demo or a snapshot; or live).")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--snapshot", type=Path, help="snapshot file written by `finops simulate` (default: the demo's "
                                                   "bundled scenario)")
    src.add_argument("--kubeconfig", nargs="?", const="", metavar="PATH",
                     help="a live cluster (default kubeconfig when no path is given); needs --prometheus")
    p.add_argument("--prometheus", metavar="URL", help="Prometheus URL for a live cluster")
    p.add_argument("--history", default="14d", help="usage history for a live cluster (default 14d)")
    p.add_argument("--window", type=_positive, default=30, metavar="DAYS", help="live: days of cost (default 30)")
    p.add_argument("--policy", type=Path, help="policy YAML (allocation, pricing, detectors); default: built-in")
    p.add_argument("--persona", action="append", choices=[x.value for x in Persona],
                   help="only this persona's insights (repeatable)")
    p.add_argument("--min-priority", choices=[x.value for x in Priority], help="only this priority or higher")
    p.add_argument("--category", action="append", choices=[x.value for x in Category],
                   help="only this category (repeatable)")
    p.add_argument("--since", metavar="YYYY-MM-DD", help="only insights about this day or later")
    p.add_argument("--budget", type=_non_negative, metavar="USD", help="offline: a monthly budget of this amount")
    p.add_argument("--output", choices=["table", "json"], default="table")
    p.set_defaults(func=_cmd_insights)


def _add_report(sub: argparse._SubParsersAction) -> None:
    from ..models.insights import Persona
    p = sub.add_parser("report", help="Weekly or monthly FinOps report (HTML, JSON or Markdown)",
                       description="Estimated vs realized savings and the gap explained, the ledger's activity, "
                                   "breakdowns, trends, lead time, recommendations, spend and budgets, forecast, "
                                   "anomalies, health and insights; sections appear when their data exists.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--snapshot", type=Path, help="snapshot file written by `finops simulate` (default: the demo's "
                                                   "bundled scenario, with a simulated ledger history)")
    src.add_argument("--kubeconfig", nargs="?", const="", metavar="PATH",
                     help="a live cluster's SavingsOpportunities and Budgets (default kubeconfig when no path)")
    p.add_argument("--period", choices=["weekly", "monthly"], default="weekly")
    p.add_argument("--output", choices=["html", "json", "markdown"], default="html")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="where to write the report")
    p.add_argument("--persona", choices=[x.value for x in Persona], default="cfo")
    p.add_argument("--policy", type=Path, help="policy YAML; default: built-in")
    p.set_defaults(func=_cmd_report)


def _add_forecast(sub: argparse._SubParsersAction) -> None:
    from ..forecast import AUTO, METHODS
    p = sub.add_parser("forecast", help="Forecast daily spend from a date,cost CSV, with 95%% intervals",
                       description="Forecast the days after a daily spend CSV (columns date,cost, a header, one row "
                                   "a day; an empty cost or a missing day is 'no data'); auto picks the method by "
                                   "rolling back-test and reports its back-tested MAPE.")
    p.add_argument("--csv", type=Path, required=True, metavar="FILE", help="daily spend: date,cost")
    p.add_argument("--horizon", type=_positive, required=True, metavar="DAYS", help="days to forecast")
    p.add_argument("--method", choices=[AUTO, *METHODS], default=AUTO)
    p.add_argument("--output", choices=["table", "json"], default="table")
    p.set_defaults(func=_cmd_forecast)


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="Generate a cluster snapshot (and OpenMetrics) from a scenario")
    p.add_argument("--scenario", type=Path, help="scenario YAML (default: the bundled demo scenario)")
    p.add_argument("--containers", type=int, help="instead of a scenario file: a random cluster with this many containers")
    p.add_argument("--days", type=int, default=14)
    p.add_argument("--step", type=int, default=300, help="seconds between samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="snapshot file to write (.npz)")
    p.add_argument("--openmetrics", type=Path, help="also write OpenMetrics text for promtool backfill")
    p.add_argument("--cost-explorer", type=Path, metavar="FILE",
                   help="also write the simulated bill as Cost Explorer GetCostAndUsage JSON (daily, by SERVICE)")
    p.add_argument("--cur", type=Path, metavar="FILE",
                   help="also write the simulated bill as a CUR 2.0 Parquet file (hourly, effective costs)")
    p.set_defaults(func=_cmd_simulate)


def _add_anomalies(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("anomalies", help="Cost anomalies (spikes, dips, level shifts) in a daily spend CSV",
                       description="Find anomalous days in a CSV with the columns date,cost (one row a day): "
                                   "weekday and month-end patterns are learned, consecutive days are one episode.")
    p.add_argument("--csv", type=Path, required=True, metavar="FILE", help="daily spend: a header 'date,cost', then "
                                                                           "one 'YYYY-MM-DD,USD' row a day")
    p.add_argument("--threshold", type=_non_negative, metavar="USD", help="also alarm on any day above this many USD")
    p.add_argument("--relative", type=_non_negative, metavar="FRACTION",
                   help="also alarm on any day this far off expected (0.3 = 30%%), whatever the statistics")
    p.add_argument("--output", choices=["table", "json"], default="table")
    p.set_defaults(func=_cmd_anomalies)


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number zero or more (e.g. 500 or 0.3)")
    return value


def _add_notifications(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("notifications", help="Delivery statistics of the NotificationChannels in the cluster",
                       description="Each NotificationChannel's status (sent, batched, suppressed, rate-limited, "
                                   "failed, pending) and its counts per subscription, from the cluster.")
    p.add_argument("--namespace", "-n", default="default", help="the channels of this namespace (default: default)")
    p.add_argument("--all-namespaces", "-A", action="store_true", help="the channels of every namespace")
    p.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: in-cluster, else KUBECONFIG)")
    p.add_argument("--output", choices=["table", "json"], default="table")
    p.set_defaults(func=_cmd_notifications)


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="Run the operator (kopf) against the current kubeconfig")
    p.add_argument("--namespace", action="append", default=[], help="watch only these namespaces")
    p.add_argument("--all-namespaces", action="store_true", default=False)
    p.add_argument("--standalone", action="store_true", help="no peering (single replica)")
    p.add_argument("--peering", default=None, help="kopf peering name (for two or more replicas)")
    p.add_argument("--liveness", default="http://0.0.0.0:8080/healthz")
    p.add_argument("--metrics-port", type=int, default=9090)
    p.set_defaults(func=_cmd_run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="finops", description="Find cloud waste in Kubernetes and fix it through reviewed pull requests.")
    parser.add_argument("--version", action="version", version=f"finops-operator {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_demo, _add_scan, _add_costs, _add_health, _add_insights, _add_report, _add_forecast, _add_anomalies,
                _add_simulate, _add_notifications, _add_run):
        add(sub)
    return parser


def _cmd_scan(args: argparse.Namespace, console: Console) -> int:
    from .scan import run_scan
    return run_scan(args, console)


def _cmd_demo(args: argparse.Namespace, console: Console) -> int:
    from .demo import run_demo
    return run_demo(args, console)


def _cmd_costs(args: argparse.Namespace, console: Console) -> int:
    from .costs import run_costs
    return run_costs(args, console)


def _cmd_health(args: argparse.Namespace, console: Console) -> int:
    from .health import run_health
    return run_health(args, console)


def _cmd_insights(args: argparse.Namespace, console: Console) -> int:
    from .insights import run_insights
    return run_insights(args, console)


def _cmd_report(args: argparse.Namespace, console: Console) -> int:
    from .report import run_report
    return run_report(args, console)


def _cmd_forecast(args: argparse.Namespace, console: Console) -> int:
    from .forecast import run_forecast
    return run_forecast(args, console)


def _cmd_anomalies(args: argparse.Namespace, console: Console) -> int:
    from .anomalies import run_anomalies
    return run_anomalies(args, console)


def _cmd_simulate(args: argparse.Namespace, console: Console) -> int:
    from .simulate import run_simulate
    return run_simulate(args, console)


def _cmd_notifications(args: argparse.Namespace, console: Console) -> int:
    from .notifications import run_notifications
    return run_notifications(args, console)


def _cmd_run(args: argparse.Namespace, console: Console) -> int:
    from ..handlers.runner import run_operator
    return run_operator(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    to_stderr = getattr(args, "output", "table") in ("json", "csv")   # stdout is the document
    stream = sys.stderr if to_stderr else sys.stdout
    # Piped output (CI logs, `| less`) gets a readable width instead of rich's 80-column default.
    console = Console(stderr=to_stderr, width=None if stream.isatty() else 150)
    try:
        return args.func(args, console)
    except FinOpsError as exc:
        errors = Console(stderr=True, width=None if sys.stderr.isatty() else 150, highlight=False)
        errors.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
