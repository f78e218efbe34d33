"""The rendering proof judges a NodePool edit: fields of the object itself, no container (proofdiff.Intent)."""
from __future__ import annotations

from dataclasses import dataclass

from finops_operator.actuation.entrypoints import EntryPoint
from finops_operator.actuation.proofdiff import Intent, diff, objects
from finops_operator.actuation.proofjudge import judge
from finops_operator.models import Change, EditKind, EditTarget, Finding, FindingType, Target, TargetKind

POLICY = "spec.disruption.consolidationPolicy"
AFTER = "spec.disruption.consolidateAfter"


@dataclass
class Rendering:
    entry: EntryPoint
    before_objects: dict
    after_objects: dict
    changes: list


def pool(policy: str = "WhenEmpty", after: str = "30m", cpu: str = "400") -> str:
    return ("apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata: {name: general}\nspec:\n"
            f"  disruption: {{consolidationPolicy: {policy}, consolidateAfter: {after}}}\n  limits: {{cpu: '{cpu}'}}\n")


def rendered(before: str, after: str) -> Rendering:
    old, new = objects(before), objects(after)
    return Rendering(EntryPoint("kustomize", "clusters/prod"), old, new, diff(old, new))


FINDING = Finding("nodepool-consolidation", FindingType.NODEPOOL_CONSOLIDATION, Target(TargetKind.NODE_POOL, "general"),
                  "t", [Change(POLICY, "WhenEmpty", "WhenEmptyOrUnderutilized"), Change(AFTER, "30m", "5m"),
                        Change("nodes", "3", "1")], 280.0, 0.7, 0.3, EditTarget(EditKind.NODE_POOL))


def test_the_intent_is_the_nodepool_and_its_spec_fields_only():
    intent = Intent.of(FINDING)
    assert (intent.kind, intent.namespace, intent.name, intent.container) == ("NodePool", None, "general", None)
    assert intent.fields == ((POLICY, "WhenEmptyOrUnderutilized"), (AFTER, "5m"))     # "nodes" is not written


def test_the_intended_disruption_fields_are_proven():
    r = rendered(pool(), pool("WhenEmptyOrUnderutilized", "5m"))
    verdict = judge([r], [Intent.of(FINDING)])
    assert verdict.unproven == {}
    assert verdict.entries[r.entry.key].line == "rendered clusters/prod: 2 fields changed, as intended"


def test_another_field_or_a_wrong_value_fails():
    other = rendered(pool(), pool("WhenEmptyOrUnderutilized", "5m", cpu="200"))
    line = judge([other], [Intent.of(FINDING)]).entries[other.entry.key].line
    assert line == ("rendered clusters/prod: FAILED: NodePool/general spec.limits.cpu 400 -> 200 changed, "
                    "which no finding intends")
    wrong = rendered(pool(), pool("WhenEmptyOrUnderutilized", "5m0s"))
    verdict = judge([wrong], [Intent.of(FINDING)])
    assert verdict.unproven[FINDING.id] == ("proof failed: rendered clusters/prod: NodePool/general "
                                            "spec.disruption.consolidateAfter renders 5m0s, intended 5m")
