"""`finops scan`: snapshot (or live cluster) + GitOps repo -> findings, decisions, branches."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from ..errors import ConfigError
from ..models import ClusterState
from ..pipeline import ScanResult, scan
from ..settings import PolicySettings, settings_from_document
from .output import change_sets_table, findings_table, print_summary, result_to_json


def load_policy_file(path: Path | None) -> PolicySettings:
    if path is None:
        return PolicySettings()
    try:
        docs = [d for d in YAML(typ="safe").load_all(path.read_text()) if d]
    except FileNotFoundError:
        raise ConfigError("file not found", source=str(path)) from None
    except YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", source=str(path)) from None
    if len(docs) != 1:
        raise ConfigError(f"expected one document, found {len(docs)}", source=str(path))
    return settings_from_document(docs[0], source=str(path))


def progress(console: Console) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                    console=console, transient=True, disable=not console.is_terminal)


def load_state(snapshot: Path, settings: PolicySettings, console: Console) -> ClusterState:
    """Read a snapshot and summarise usage for the detectors' windows."""
    from ..snapshot import load_snapshot
    from ..usage import state_for_policy
    with progress(console) as bar:
        task = bar.add_task(f"Loading {snapshot.name}", total=2)
        snap = load_snapshot(snapshot)
        bar.update(task, advance=1, description=f"Summarising {len(snap.keys):,} containers")
        state = state_for_policy(snap, settings)
        bar.update(task, advance=1)
    return state


@dataclass
class AppliedBranch:
    branch: str
    commit: str
    files: list[str]


def apply_branches(repo: Path, result: ScanResult, base: str | None) -> list[AppliedBranch]:
    """Write one branch per change set into a local repository (no push)."""
    from ..actuation.git import GitRepo
    from ..actuation.render import render_commit_message
    git = GitRepo(repo)
    base = base or f"refs/heads/{git.current_branch()}"   # the local branch, even when a remote exists
    applied = []
    for cs in result.change_sets:
        sha = git.write_branch(cs, base_branch=base, message=render_commit_message(cs))
        applied.append(AppliedBranch(cs.branch, sha, [e.path for e in cs.edits]))
    return applied


def run_scan(args: argparse.Namespace, console: Console) -> int:
    from .main import print_json
    settings = load_policy_file(args.policy)
    if args.snapshot is None:
        from .live import load_live_state
        state = load_live_state(args, settings, console)
    else:
        state = load_state(args.snapshot, settings, console)
    if args.apply and args.repo is None:
        raise ConfigError("--apply needs --repo (the GitOps checkout to write branches into)", field="--apply")
    from ..actuation.proof import Prover
    result = scan(state, settings, repo_root=args.repo, prover=Prover() if args.repo is not None else None)
    applied = apply_branches(args.repo, result, args.base) if args.apply else []
    if args.output == "json":
        data = result_to_json(result)
        data["applied"] = [vars(a) for a in applied]
        print_json(data)
        return 0
    show_result(console, result, verbose=args.verbose)
    for a in applied:
        console.print(f"[green]wrote[/] branch [bold]{a.branch}[/] ({a.commit[:10]}): {', '.join(a.files)}")
    return 0


def show_result(console: Console, result: ScanResult, *, verbose: bool = False, limit: int | None = None) -> None:
    console.print(findings_table(result, limit=limit))
    if result.change_sets:
        console.print(change_sets_table(result))
    for error in result.errors:
        console.print(f"[yellow]not applied:[/] {error}")
    if verbose:
        for skip in result.skipped:
            console.print(f"[dim]skipped {skip.target} ({skip.detector}): {skip.reason}[/]")
    print_summary(console, result)
