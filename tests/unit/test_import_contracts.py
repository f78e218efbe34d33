"""The import contracts in pyproject.toml ([tool.importlinter]) hold, and cover the whole package."""
from __future__ import annotations

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import finops_operator

ROOT = Path(__file__).resolve().parents[2]


def contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["name"]: c for c in config["contracts"]}


def top_level_modules() -> set[str]:
    return {f"finops_operator.{m.name}" for m in pkgutil.iter_modules(finops_operator.__path__)}


def test_lint_imports_keeps_every_contract():
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(lint), "--no-logo", "--no-cache", str(ROOT / "pyproject.toml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Contracts: {len(contracts())} kept, 0 broken." in proc.stdout, proc.stdout


def test_only_handlers_may_import_kopf_is_checked_for_every_module():
    listed = set(contracts()["Only the handlers import kopf"]["source_modules"])
    assert listed == top_level_modules() - {"finops_operator.handlers"}


def test_the_pure_core_covers_pipeline_ledger_usage_and_rendering():
    pure = set(contracts()["Pure core stays free of I/O clients"]["source_modules"])
    assert {"finops_operator.pipeline", "finops_operator.ledger", "finops_operator.usage",
            "finops_operator.actuation.render", "finops_operator.actuation.render_evidence"} <= pure
