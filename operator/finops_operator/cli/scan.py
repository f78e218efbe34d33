"""`finops scan`: snapshot (or live cluster) + GitOps repo -> findings, decisions, branches.

Every input is checked before anything is written: the policy file, the snapshot, the
``--repo`` directory (the top of a git checkout) and every file in it that finops would
read (:meth:`RepoIndex.check_all`). A file refused by :mod:`..safeio` (outside the
repository, too big, not text, a YAML bomb) stops the scan with exit 2 naming it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from ..errors import ConfigError, UnreadableFile
from ..models import ClusterState
from ..pipeline import scan
from ..settings import PolicySettings
from .apply import apply_branches
from .common import check_repo, load_deploy_policy, load_policy_file, load_prices, print_json, progress
from .output import result_to_json, show_result


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


def check_repo_files(repo: Path) -> None:
    """Refuse a repository holding files finops will not read (all of them named, the first as the error)."""
    from ..actuation.locate import RepoIndex
    rejected = RepoIndex(repo).check_all()
    if rejected:
        first = rejected[0]
        others = f" (and {len(rejected) - 1} more: {', '.join(str(e.source) for e in rejected[1:6])})" \
            if len(rejected) > 1 else ""
        raise UnreadableFile(f"{first.message}{others}", source=f"{repo}/{first.source}", field=first.field)


def run_scan(args: argparse.Namespace, console: Console) -> int:
    if args.apply and args.repo is None:
        raise ConfigError("--apply needs --repo (the GitOps checkout to write branches into)", field="--apply")
    repo = check_repo(args.repo) if args.repo is not None else None
    settings = load_policy_file(args.policy)
    deploy = load_deploy_policy(args.policy, repo, getattr(args, "entry_point", None))
    if args.snapshot is None:
        from .live import load_live_state
        state = load_live_state(args, settings, console)
    else:
        state = load_state(args.snapshot, settings, console)
    if repo is not None:
        check_repo_files(repo)
    from ..actuation.proof import Prover
    prices = load_prices(args.policy, state.region)      # the snapshot's region, with --policy's spec.pricing
    result = scan(state, settings, prices=prices, repo_root=repo, prover=Prover() if repo is not None else None,
                  deploy=deploy)
    applied = apply_branches(repo, result, args.base) if args.apply and repo is not None else []
    if args.output == "json":
        data = result_to_json(result)
        data["applied"] = [vars(a) for a in applied]
        print_json(data)
        return 0
    show_result(console, result, verbose=args.verbose)
    for a in applied:
        console.print(f"[green]{'wrote' if a.action == 'created' else a.action}[/] branch [bold]{a.branch}[/] "
                      f"({a.commit[:10]}): {', '.join(a.files)}")
    return 0
