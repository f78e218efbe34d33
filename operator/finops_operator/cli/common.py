"""What the subcommands share: the policy file, the --repo check, progress bars, JSON output.

Imports only the package core, never a subcommand: ``main`` imports the subcommands,
the subcommands import this module (and ``output`` / ``apply``), nothing imports ``main``.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from .. import bundled, safeio
from ..errors import ConfigError
from ..settings import PolicySettings, settings_from_document

DEMO_SCENARIO = bundled.path("demo-scenario.yaml")
DEMO_POLICY = bundled.path("demo-policy.yaml")


def load_policy_file(path: Path | None) -> PolicySettings:
    """A --policy file (a FinOpsPolicy, its spec, or bare settings): bounded, one document, no unknown keys."""
    if path is None:
        return PolicySettings()
    text = safeio.read_user_file(path, safeio.MAX_POLICY_BYTES)
    try:
        docs = [d for d in safeio.load_yaml(text, str(path)) if d]
    except yaml.YAMLError as exc:
        problem, line = safeio.yaml_problem(exc)
        raise ConfigError(f"not valid YAML: {problem}", source=str(path), field=line) from None
    if len(docs) != 1:
        raise ConfigError(f"expected one document, found {len(docs)}", source=str(path))
    return settings_from_document(docs[0], source=str(path))


def check_repo(repo: Path) -> Path:
    """``--repo`` must be the top directory of a git checkout; returns it resolved."""
    if not repo.exists():
        raise ConfigError(f"{repo} does not exist; pass the GitOps checkout's directory", field="--repo")
    if not repo.is_dir():
        raise ConfigError(f"{repo} is not a directory; pass the GitOps checkout's directory", field="--repo")
    proc = subprocess.run(["git", "-C", str(repo), "rev-parse", "--show-toplevel"], capture_output=True,
                          text=True, check=False)
    top = proc.stdout.strip()
    if proc.returncode != 0 or not top:
        raise ConfigError(f"{repo} is not a git repository; pass a local clone of the GitOps repository "
                          "(`git clone ...`)", field="--repo")
    resolved = repo.resolve()
    if Path(top).resolve() != resolved:
        raise ConfigError(f"{repo} is inside the git checkout {top}, not its top directory; pass {top} "
                          "(paths in the repository are relative to its root)", field="--repo")
    return resolved


def progress(console: Console) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                    console=console, transient=True, disable=not console.is_terminal)


def print_json(data: object) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
