"""One rule, one place: guards that fail when a twin of a folded rule comes back (issue 7)."""
from __future__ import annotations

import re
from pathlib import Path

import yaml
from finops_operator.api.policy import DEFAULT_EXCLUDED

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "finops_operator"


def sources() -> dict[str, str]:
    return {str(p.relative_to(PACKAGE)): p.read_text() for p in PACKAGE.rglob("*.py")}


def where(pattern: str) -> list[str]:
    return sorted(name for name, text in sources().items() if re.search(pattern, text, re.MULTILINE))


def test_one_money_formatter():
    assert where(r"^\s*def (money|signed_money|usd|signed_usd|decimal_string)\(") == ["money.py"]
    assert where(r":,\.2f\}") == ["money.py"], "format dollars with finops_operator.money"


def test_one_approval_annotation_name():
    assert where(r"[\"']finops\.dev/approved[\"']") == ["guardrails/rules.py"]


def test_one_reopen_rule_and_one_material_change_threshold():
    assert where(r"^def should_reopen\(") == ["ledger.py"]
    assert where(r"^MATERIAL_CHANGE\s*=") == ["ledger.py"]
    assert "materially" not in (PACKAGE / "templates" / "pr_body.md.j2").read_text(), \
        "the PR body quotes ledger.REOPEN_PROMISE"


def test_one_open_pr_limit():
    assert where(r"max_open_prs") == ["actuation/plan.py", "settings.py"]   # read through plan.open_pr_limit


def test_one_namespace_exclusion_list():
    assert where(r"[\"']kube-node-lease[\"']") == ["api/specs.py"]
    crd = yaml.safe_load((ROOT / "crds" / "finopspolicies.yaml").read_text())
    scope = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["scope"]
    assert tuple(scope["properties"]["excludeNamespaces"]["default"]) == DEFAULT_EXCLUDED
