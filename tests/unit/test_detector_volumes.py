"""Orphan volume detection (unattached EBS, Released / never-bound PVs)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from finops_operator.detectors.volumes import OrphanVolumes
from finops_operator.models import Change, FindingType, TargetKind, VolumeSource
from finops_operator.pricing.catalog import PriceBook
from tests.support.fixtures_detectors import END, StateBuilder, policy

PV = VolumeSource.PV


def run(builder, settings=None):
    return OrphanVolumes(settings or policy(), PriceBook.load()).run(builder.build())


def by_id(result):
    return {f.target.name: f for f in result.findings}


def test_unattached_ebs_volume_is_an_orphan_with_full_evidence():
    b = StateBuilder().volume("vol-1", size=100, vtype="gp3", iops=6000, throughput=250, zone="us-east-1a",
                              tags={"Name": "old-data", "team": "data"}, age_days=40)
    f = run(b).findings[0]
    assert f.type == FindingType.ORPHAN_VOLUME and f.target.kind == TargetKind.VOLUME and f.target.name == "vol-1"
    assert f.changes == [Change("delete", "present", None)]
    # 100 GiB x 0.08 + (6000 - 3000) IOPS x 0.005 + (250 - 125) MiB/s x 0.04
    assert f.monthly_savings == pytest.approx(8.0 + 15.0 + 5.0)
    assert f.evidence["cost_monthly"] == {"storage": 8.0, "iops": 15.0, "throughput": 5.0}
    assert f.evidence["age_days"] == 40.0 and f.evidence["size_gib"] == 100 and f.evidence["volume_type"] == "gp3"
    assert f.evidence["snapshot_before_delete"] is True and f.evidence["snapshot_monthly_upper_bound"] == 5.0
    assert f.labels == {"Name": "old-data", "team": "data"} and f.team == "data" and f.cluster == "test"


@pytest.mark.parametrize("vtype,size,iops,expected", [
    ("gp2", 200, None, 20.0),
    ("io1", 100, 1000, 12.5 + 65.0),
    ("io2", 100, 40000, 12.5 + 32000 * 0.065 + 8000 * 0.0455),
    ("st1", 500, None, 22.5),
    ("sc1", 1000, None, 15.0),
    ("standard", 10, None, 0.5),
])
def test_savings_per_volume_type(vtype, size, iops, expected):
    f = run(StateBuilder().volume("vol-x", vtype=vtype, size=size, iops=iops)).findings[0]
    assert f.monthly_savings == pytest.approx(expected, abs=0.01)


def test_in_use_and_bound_volumes_are_left_alone():
    b = StateBuilder().volume("vol-used", state="in-use")
    b.volume("pv-bound", source=PV, state="Bound", claim="shop/data")
    b.volume("pv-avail-claimed", source=PV, state="Available", claim="shop/pre")
    result = run(b)
    assert not result.findings and not result.skipped


def test_young_orphans_are_skipped():
    b = StateBuilder().volume("vol-new", age_days=2)
    result = run(b)
    assert not result.findings and "2.0 days (minAgeDays 7)" in result.skipped[0].reason
    assert run(b, policy(volumes={"minAgeDays": 1})).findings


def test_released_pv_counts_from_release_time():
    b = StateBuilder()
    b.volume("pv-old", source=PV, state="Released", claim="shop/db-0", age_days=300,
             released_at=END - timedelta(days=3), storage_class="gp3")
    b.volume("pv-long", source=PV, state="Released", claim="shop/db-1", age_days=300,
             released_at=END - timedelta(days=30))
    result = run(b)
    assert list(by_id(result)) == ["pv-long"]
    f = by_id(result)["pv-long"]
    assert f.evidence["orphan_kind"] == "released" and f.evidence["claim"] == "shop/db-1"
    assert f.target.namespace == "shop" and f.team == "shop"
    assert "3.0 days" in result.skipped[0].reason


def test_never_bound_pv_is_low_risk_and_needs_no_snapshot():
    f = run(StateBuilder().volume("pv-spare", source=PV, state="Available")).findings[0]
    assert f.evidence["orphan_kind"] == "never-bound" and f.evidence["snapshot_before_delete"] is False
    assert f.risk < 0.1


def test_snapshot_flag_follows_policy_and_changes_risk():
    b = StateBuilder().volume("vol-1")
    with_snap = run(b).findings[0]
    without = run(b, policy(volumes={"snapshotBeforeDelete": False})).findings[0]
    assert with_snap.evidence["snapshot_before_delete"] and not without.evidence["snapshot_before_delete"]
    assert without.risk > with_snap.risk


def test_pv_and_its_backing_ebs_volume_are_reported_once():
    b = StateBuilder().volume("vol-back", size=50)
    b.volume("pv-a", source=PV, state="Released", claim="shop/x", backing_volume_id="vol-back", size=50)
    result = run(b)
    assert list(by_id(result)) == ["pv-a"]
    assert "pv-a" in result.skipped[0].reason and result.skipped[0].target == "volume/vol-back"


def test_unknown_type_or_age_is_skipped_with_reason():
    b = StateBuilder().volume("vol-odd", vtype="gp9")
    b.state.volumes.append(type(b.state.volumes[0])("vol-noage", VolumeSource.EBS, 10, "gp3", "available"))
    result = run(b)
    reasons = {s.target: s.reason for s in result.skipped}
    assert not result.findings
    assert "'gp9'" in reasons["volume/vol-odd"] and "gp3" in reasons["volume/vol-odd"]
    assert "age is unknown" in reasons["volume/vol-noage"]


def test_source_hint_from_tag():
    f = run(StateBuilder().volume("vol-1", tags={"finops.dev/source": "infra/volumes.tf"})).findings[0]
    assert f.evidence["source_hint"] == "infra/volumes.tf" and f.edit.source_hint == "infra/volumes.tf"
