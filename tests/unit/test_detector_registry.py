"""Detector registry and run_all."""
from __future__ import annotations

import pytest

import finops_operator.detectors as detectors
from finops_operator.detectors import REGISTRY, Detector, DetectorResult, register, run_all
from finops_operator.errors import SnapshotError
from finops_operator.models import FindingType
from tests.support.fixtures_detectors import GIB, MIB, StateBuilder, app, policy, stats


def test_builtin_detectors_are_registered_with_permissions():
    assert set(REGISTRY) >= {"cpu-rightsizing", "memory-rightsizing", "idle-nodes", "orphan-volumes",
                             "nodepool-consolidation"}
    for cls in REGISTRY.values():
        assert cls.permissions and isinstance(cls.finding_type, FindingType)


def _mixed_state() -> StateBuilder:
    b = StateBuilder()
    b.node("n1", cpu=4.0, memory=16 * GIB).node("n2", cpu=4.0, memory=16 * GIB)
    b.pod("busy", "n1", 2.0, 4 * GIB).pod("idle", "n2", 0.1, GIB)
    b.workload("web", app("api", cpu="2", memory="4Gi"))
    b.usage("web", "api", cpu=stats(0.2), memory=stats(300 * MIB))
    b.volume("vol-1")
    return b


def test_run_all_merges_every_detector(price_book):
    result = run_all(_mixed_state().build(), policy(), price_book)
    assert sorted(f.detector for f in result.findings) == [
        "cpu-rightsizing", "idle-nodes", "memory-rightsizing", "orphan-volumes"]
    assert len({f.id for f in result.findings}) == 4


def test_disabled_detectors_do_not_run(price_book):
    settings = policy(cpu={"enabled": False}, nodes={"enabled": False}, volumes={"enabled": False})
    result = run_all(_mixed_state().build(), settings, price_book)
    assert [f.detector for f in result.findings] == ["memory-rightsizing"]


def test_only_and_unknown_names(price_book):
    result = run_all(_mixed_state().build(), policy(), price_book, only=["orphan-volumes"])
    assert [f.detector for f in result.findings] == ["orphan-volumes"]
    with pytest.raises(KeyError, match="no-such"):
        run_all(_mixed_state().build(), policy(), price_book, only=["no-such"])


def test_a_failing_detector_is_reported_and_others_still_run(price_book, monkeypatch):
    class Broken(detectors.nodes.IdleNodes):
        name = "broken-test"

        def run(self, state):
            raise SnapshotError("usage series has a gap", source="snap.json", field="usage[3]")

    monkeypatch.setitem(REGISTRY, "broken-test", Broken)
    result = run_all(_mixed_state().build(), policy(), price_book)
    assert len(result.findings) == 4
    (skip,) = [s for s in result.skipped if s.detector == "broken-test"]
    assert "snap.json: usage[3]: usage series has a gap" in skip.reason


def test_register_rejects_incomplete_and_duplicate_declarations():
    class Nameless(Detector):
        finding_type = FindingType.IDLE_NODE

        def run(self, state):
            return DetectorResult()

    with pytest.raises(TypeError, match="name, target_kind, edit_kinds, settings_key, settings_model, grouping"):
        register(Nameless)

    class SameName(detectors.cpu.CpuRightsizing):
        pass

    class SameType(detectors.cpu.CpuRightsizing):
        name = "cpu-rightsizing-2"
        settings_key = "cpu2"

    with pytest.raises(TypeError, match="name, finding_type, settings_key already registered by CpuRightsizing"):
        register(SameName)
    with pytest.raises(TypeError, match="finding_type already registered by CpuRightsizing"):
        register(SameType)
    assert REGISTRY["cpu-rightsizing"] is detectors.cpu.CpuRightsizing


def test_every_finding_type_is_declared_once_and_drives_the_core():
    """The core iterates the registry: settings blocks, CRD target kinds, grouping, editors."""
    from pydantic.alias_generators import to_camel

    from finops_operator.actuation.edits import _EDITORS
    from finops_operator.settings import PolicySettings

    declared = [cls.finding_type for cls in REGISTRY.values()]
    assert sorted(t.value for t in declared) == sorted(t.value for t in FindingType)
    settings = PolicySettings()
    for cls in REGISTRY.values():
        assert detectors.type_spec(cls.finding_type) is cls
        assert isinstance(getattr(settings.detectors, cls.settings_key), cls.settings_model)
        assert all(kind in _EDITORS for kind in cls.edit_kinds)
    assert set(PolicySettings.model_json_schema(by_alias=True)["$defs"]["DetectorSettings"]["properties"]) == {
        to_camel(cls.settings_key) for cls in REGISTRY.values()}
    with pytest.raises(KeyError, match="unknown finding type 'gp2-to-gp3'; registered: freeze-growth, idle-node"):
        detectors.type_spec("gp2-to-gp3")


def test_detectors_do_not_mutate_the_state(price_book):
    import copy
    state = _mixed_state().build()
    before = copy.deepcopy(state)
    run_all(state, policy(), price_book)
    assert state == before


def test_a_type_declared_in_its_module_reaches_settings_crds_and_editors():
    """The NodePool type (detectors/karpenter.py) declares everything; the core and the CRDs follow."""
    from pathlib import Path

    import yaml
    from pydantic.alias_generators import to_camel

    from finops_operator.actuation.edits import _EDITORS
    from finops_operator.api.opportunities import format_target, parse_target

    crds = Path(__file__).resolve().parents[2] / "crds"
    opp = yaml.safe_load((crds / "savingsopportunities.yaml").read_text())
    opp_spec = opp["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    policy_crd = yaml.safe_load((crds / "finopspolicies.yaml").read_text())
    blocks = policy_crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "detectors"]["properties"]
    cls = REGISTRY["nodepool-consolidation"]
    assert cls.finding_type.value in opp_spec["type"]["enum"]
    assert cls.target_kind.value in opp_spec["target"]["properties"]["kind"]["enum"]
    assert to_camel(cls.settings_key) == "nodePools" and "consolidateAfterSeconds" in blocks["nodePools"]["properties"]
    assert all(kind in _EDITORS for kind in cls.edit_kinds)
    assert policy(nodePools={"consolidateAfterSeconds": 60}).detectors.node_pools.consolidate_after_seconds == 60
    target = parse_target(cls.finding_type.value, "node-pool/general", None)
    assert target == {"kind": "node-pool", "name": "general"} and format_target(target) == "node-pool/general"
    assert (cls.grouping.change_set, cls.grouping.noun) == ("node-pools", "NodePool")
