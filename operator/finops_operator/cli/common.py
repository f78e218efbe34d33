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
from ..gitops.deploymap import DeployPolicy
from ..pricing import PriceBook
from ..settings import PolicySettings, settings_from_document
from ..settings_base import validate_spec

DEMO_SCENARIO = bundled.path("demo-scenario.yaml")
DEMO_POLICY = bundled.path("demo-policy.yaml")


def _policy_document(path: Path) -> object:
    text = safeio.read_user_file(path, safeio.MAX_POLICY_BYTES)
    try:
        docs = [d for d in safeio.load_yaml(text, str(path)) if d]
    except yaml.YAMLError as exc:
        problem, line = safeio.yaml_problem(exc)
        raise ConfigError(f"not valid YAML: {problem}", source=str(path), field=line) from None
    if len(docs) != 1:
        raise ConfigError(f"expected one document, found {len(docs)}", source=str(path))
    return docs[0]


def load_policy_file(path: Path | None) -> PolicySettings:
    """A --policy file (a FinOpsPolicy, its spec, or bare settings): bounded, one document, no unknown keys."""
    if path is None:
        return PolicySettings()
    return settings_from_document(_policy_document(path), source=str(path))


def load_prices(path: Path | None, region: str) -> PriceBook:
    """The book of the snapshot's region with the --policy file's ``spec.pricing`` applied.

    A ``configMapRef`` names a ConfigMap in the cluster, which an offline scan cannot read: refused with the fix.
    """
    from ..api.policy import read_pricing
    from ..api.specs import PricingSpec
    from ..pricing import apply_overrides
    book = PriceBook.for_region(region)
    doc = _policy_document(path) if path is not None else None
    spec = doc.get("spec", doc) if isinstance(doc, dict) else None
    raw = spec.get("pricing") if isinstance(spec, dict) else None
    if raw is None:
        return book
    pricing = read_pricing(validate_spec(PricingSpec, raw, source=str(path), prefix="spec.pricing"), str(path))
    if pricing.table is not None:
        raise ConfigError("a ConfigMap cannot be read by an offline scan; remove configMapRef from the --policy "
                          "file (its instancePrices and discountPercent still apply)", source=str(path),
                          field="spec.pricing.configMapRef")
    return apply_overrides(book, pricing.overrides)


def load_deploy_policy(path: Path | None, repo: Path | None, entry_point: str | None) -> DeployPolicy:
    """Which files deploy this cluster: ``spec.git.paths`` / ``repository`` of --policy, and --entry-point.

    Without ``spec.git.repository`` the checkout's ``origin`` decides which Argo CD Applications count.
    """
    paths: tuple[str, ...] = ()
    repository = None
    doc = _policy_document(path) if path is not None else None
    spec = doc.get("spec", doc) if isinstance(doc, dict) and (doc.get("kind") == "FinOpsPolicy" or "spec" in doc) \
        else doc
    git = spec.get("git") if isinstance(spec, dict) else None
    if isinstance(git, dict):
        paths = _git_paths(git.get("paths"), str(path))
        repository = git.get("repository") if isinstance(git.get("repository"), str) else None
    if entry_point is not None:
        entry_point = _entry_point(entry_point, repo)
    if repository is None and repo is not None:
        proc = subprocess.run(["git", "-C", str(repo), "remote", "get-url", "origin"], capture_output=True,
                              text=True, check=False)
        repository = proc.stdout.strip() or None if proc.returncode == 0 else None
    return DeployPolicy(repository=repository, paths=paths, entry_point=entry_point)


def _git_paths(raw: object, source: str) -> tuple[str, ...]:
    """``spec.git.paths`` of a --policy file: repository-relative paths (the CRD's RepoPath rule, safeio's check)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError("paths must be a list of repository paths", source=source, field="spec.git.paths")
    paths = tuple(str(p).strip().removeprefix("./").strip("/") for p in raw)
    for p in paths:
        problem = safeio.relpath_problem(p)
        if problem:
            raise ConfigError(f"{p!r} {problem}", source=source, field="spec.git.paths")
    return paths


def _entry_point(raw: str, repo: Path | None) -> str:
    if repo is None:
        raise ConfigError("--entry-point needs --repo (it is a path in that checkout)", field="--entry-point")
    rel = raw.strip().removeprefix("./").rstrip("/") or "."
    problem = safeio.relpath_problem(rel)
    if problem:
        raise ConfigError(f"{raw!r} {problem}", field="--entry-point")
    if not (repo / rel).exists():
        raise ConfigError(f"{rel} does not exist in {repo}; pass the overlay, chart directory or values file this "
                          "cluster deploys (relative to the repository root)", field="--entry-point")
    return rel


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
