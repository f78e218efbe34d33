"""`finops demo`: a throwaway GitOps repo + a simulated cluster -> findings and branches.

Needs no cluster and no network: the GitOps repo is copied from ``examples/gitops``,
the cluster is the bundled demo scenario run through the simulator, and the
branches are written into the throwaway repo's own git history.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from .. import bundled
from ..actuation.proof import Prover
from ..errors import ConfigError
from ..costreport import CostReport
from ..guardrails import GuardrailContext
from ..models import Verdict
from ..models.insights import Persona
from ..pipeline import ScanResult, scan
from ..money import usd
from ..pricing import HOURS_PER_MONTH
from ..settings import PolicySettings
from .apply import apply_branches
from .common import DEMO_POLICY, DEMO_SCENARIO, load_policy_file, progress
from .output import result_to_json, show_result

__all__ = ["DEMO_POLICY", "DEMO_SCENARIO", "cost_and_savings_table", "examples_dir", "make_gitops_repo", "run_demo"]
CLUSTER_WIDE = "cluster-wide findings (nodes, volumes)"


def examples_dir() -> Path:
    """The demo's GitOps repository: examples/gitops, carried inside the package."""
    return bundled.path("gitops")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def make_gitops_repo(dest: Path) -> Path:
    """Copy examples/gitops into ``dest`` and commit it on ``main``."""
    shutil.copytree(examples_dir(), dest)
    _git(dest, "init", "-q", "-b", "main")
    _git(dest, "config", "user.name", "finops demo")
    _git(dest, "config", "user.email", "demo@finops-operator.invalid")
    _git(dest, "add", "-A")
    _git(dest, "commit", "-q", "-m", "GitOps repository (copied from finops-operator examples/gitops)")
    return dest


def run_demo(args: argparse.Namespace, console: Console) -> int:
    from ..simulator import load_scenario, simulate
    from ..snapshot import save_snapshot
    from ..usage import state_for_policy

    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="finops-demo-"))).resolve()
    if workdir.exists() and any(workdir.iterdir()):
        raise ConfigError(f"{workdir} is not empty; pass an empty or new --workdir", field="--workdir")
    workdir.mkdir(parents=True, exist_ok=True)
    repo = make_gitops_repo(workdir / "gitops")
    settings = load_policy_file(DEMO_POLICY)
    spec = load_scenario(args.scenario or DEMO_SCENARIO)
    with progress(console) as bar:
        task = bar.add_task("Simulating the demo cluster", total=3)
        simulation = simulate(spec)
        snapshot = simulation.snapshot()
        save_snapshot(workdir / "snapshot.npz", snapshot)
        bar.update(task, advance=1, description="Summarising usage")
        state = state_for_policy(snapshot, settings)
        bar.update(task, advance=1, description="Scanning")
        # The demo runs "one hour after the data ends", so its output is the same every time.
        context = GuardrailContext(now=state.window.end + timedelta(hours=1))
        result = scan(state, settings, repo_root=repo, context=context, prover=Prover())
        applied = apply_branches(repo, result, "main")
        bar.update(task, advance=1)
    prs = workdir / "pull-requests"
    prs.mkdir()
    for cs in result.change_sets:
        (prs / f"{cs.id}.md").write_text(cs.body)
    (workdir / "scan.json").write_text(json.dumps(result_to_json(result), indent=2))

    console.print(Panel.fit(
        f"Cluster [bold]{state.cluster}[/] ({state.region}): {len(state.workloads)} workloads, "
        f"{sum(len(w.containers) for w in state.workloads)} containers, {len(state.nodes)} nodes, "
        f"{len(state.volumes)} volumes; {state.window.expected_points:,} samples per series "
        f"({round((state.window.end - state.window.start).total_seconds() / 86400)} days at "
        f"{state.window.step_seconds}s).",
        title="finops demo"))
    show_result(console, result)
    console.print()
    console.print(f"[bold]Wrote {len(applied)} branches[/] worth {usd(sum(cs.monthly_savings for cs in result.change_sets))}/month "
                  f"into [bold]{repo}[/]:")
    for a in applied:
        console.print(f"  {a.branch}  [dim]{a.commit[:10]}[/]  {', '.join(a.files)}")
    console.print("\nWhere to look:")
    console.print(f"  cd {repo}")
    console.print("  git branch --list 'finops/*'")
    if applied:
        console.print(f"  git diff main..{applied[0].branch}")
    console.print(f"  {prs}/   (the pull-request bodies)")
    console.print(f"  {workdir / 'scan.json'}   (everything as JSON)")
    show_cost_and_savings(console, simulation, settings, result)
    show_top_insights(console, simulation, settings, spec, result)
    show_health(console, simulation, settings, result)
    from .report import demo_report
    report = demo_report(simulation, settings, spec, result, workdir / "report.html")
    console.print(f"\n[bold]Weekly report[/] (simulated ledger history): {escape(str(report))}")
    return 0


def show_health(console: Console, simulation: object, settings: PolicySettings, result: ScanResult) -> None:
    """The team health table, after the cost table and the top insights (`finops health` has the breakdown)."""
    from .health import show_team_health
    show_team_health(console, simulation, settings, result=result)


def show_top_insights(console: Console, simulation: object, settings: PolicySettings, spec: object,
                      result: ScanResult | None = None) -> None:
    """The demo's last table: the top insight of each persona (`finops insights` has them all)."""
    from ..insights import generate, top_per_persona
    from .insights import insights_table, offline_data
    data = offline_data(simulation, settings, business=spec.business, seed=spec.seed,   # type: ignore[attr-defined]
                        scanned=result)
    best = top_per_persona(generate(data))
    console.print()
    console.print(insights_table([best[p] for p in Persona if p in best], title="Top insight per persona "
                                 "(finops insights --persona P for all)", describe=True))


def demo_cost_report(simulation: object, settings: PolicySettings) -> CostReport:
    """The demo cluster's cost by namespace, exactly as `finops costs` (its default window) shows it."""
    from .costs import CostData, allocate_offline, build_report
    window = simulation.state.window                                    # type: ignore[attr-defined]
    data = CostData(description="the demo cluster", now=window.end, span=(window.start, window.end),
                    allocate=lambda w: allocate_offline(simulation, settings, w))
    days = round((window.end - window.start) / timedelta(days=1))        # the simulated span, e.g. 14d
    return build_report(data, by="namespace", window_text=f"{days}d", top=None)


def show_cost_and_savings(console: Console, simulation: object, settings: PolicySettings,
                          result: ScanResult) -> None:
    from .costs import footer_lines
    report = demo_cost_report(simulation, settings)
    console.print()
    console.print(cost_and_savings_table(report, result))
    for line in footer_lines(report):
        console.print(line, soft_wrap=True)


def savings_by_namespace(result: ScanResult) -> dict[str, float]:
    """Allowed findings' monthly savings per namespace (findings of no namespace under CLUSTER_WIDE)."""
    out: dict[str, float] = {}
    for finding in result.findings:
        if result.verdict_of(finding) == Verdict.ALLOW:
            key = finding.target.namespace or CLUSTER_WIDE
            out[key] = out.get(key, 0.0) + finding.monthly_savings
    return out


def cost_and_savings_table(report: CostReport, result: ScanResult) -> Table:
    """The month's cost by namespace (reconciled: idle, shared and unallocated as rows) next to its savings."""
    w = report.window
    days = w.hours / 24
    table = Table(title=f"Cost by namespace ({days:.0f} days, {w.start:%Y-%m-%d} .. {w.end:%Y-%m-%d}) and savings",
                  header_style="bold")
    for name in ("Namespace", f"Cost, {days:.0f} days", "$/month", "Savings $/month", "Savings %"):
        table.add_column(name, justify="left" if name == "Namespace" else "right")
    savings = savings_by_namespace(result)

    def add(label: str, cost: float | None, saving: float) -> None:
        monthly = None if cost is None else report.per_hour(cost) * HOURS_PER_MONTH
        table.add_row(escape(label), "—" if cost is None else usd(cost), "—" if monthly is None else usd(monthly),
                      usd(saving) if saving else "", f"{100 * saving / monthly:.1f}%" if saving and monthly else "")

    for row in report.rows:
        add(row.label, row.cost, savings.pop(row.key, 0.0) if row.kind == "allocated" else 0.0)
    for label, saving in sorted(savings.items(), key=lambda kv: (kv[0] == CLUSTER_WIDE, kv[0])):
        add(label, None, saving)
    total_saving = sum(savings_by_namespace(result).values())
    table.add_section()
    add("total", report.total, total_saving)
    return table
