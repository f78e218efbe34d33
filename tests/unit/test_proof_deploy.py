"""The proof knows "this environment" from the finding's DeploySource, not from which rendering changed first."""
from __future__ import annotations

from finops_operator.actuation.entrypoints import EntryPoint
from finops_operator.actuation.proofdiff import Intent, diff, objects
from finops_operator.actuation.proofjudge import judge
from finops_operator.models import DeploySource, EditKind, EditTarget
from tests.unit.test_proof import Rendering, api, finding

CHANGED = {"api": {"requests": {"cpu": "250m"}}}


def _rendering(kind: str, path: str, before: str, after: str) -> Rendering:
    old, new = objects(before), objects(after)
    return Rendering(EntryPoint(kind, path), old, new, diff(old, new))


def _deployed(entry_point: str, kind: str = "kustomize"):
    f = finding("shop", "api", "api", ("resources.requests.cpu", "500m", "250m"))
    f.edit = EditTarget(EditKind.CONTAINER_RESOURCES, deploy=DeploySource(entry_point, "policy-paths", kind))
    return f


def test_with_two_environments_in_one_namespace_the_deployed_one_is_this_environment():
    dev = _rendering("kustomize", "overlays/dev", api("shop"), api("shop", **CHANGED))
    prod = _rendering("kustomize", "overlays/prod", api("shop"), api("shop", **CHANGED))
    f = _deployed("overlays/prod")
    verdict = judge([dev, prod], [Intent.of(f)])
    assert verdict.entries[prod.entry.key].problems == [] and "as intended" in verdict.entries[prod.entry.key].line
    assert "also changes" in verdict.entries[dev.entry.key].line and verdict.entries[dev.entry.key].problems
    guessed = judge([dev, prod], [Intent.of(finding("shop", "api", "api", ("resources.requests.cpu", "500m", "250m")))])
    assert "as intended" in guessed.entries[dev.entry.key].line      # without it the first rendering was taken


def test_an_edit_that_does_not_reach_the_deployed_entry_point_is_unproven():
    dev = _rendering("kustomize", "overlays/dev", api("shop"), api("shop", **CHANGED))
    verdict = judge([dev], [Intent.of(_deployed("overlays/prod"))])
    assert "in overlays/prod, the entry point that deploys it here" in verdict.unproven[_deployed("overlays/prod").id]


def test_a_plain_directory_is_proven_by_its_files():
    plain = _rendering("manifest", "apps/api.yaml", api("shop"), api("shop", **CHANGED))
    verdict = judge([plain], [Intent.of(_deployed("apps", "plain"))])
    assert verdict.unproven == {} and "as intended" in verdict.entries[plain.entry.key].line
