"""Orphan volumes: unattached EBS volumes and PersistentVolumes nobody claims.

Orphans are EBS volumes in state ``available`` (attached to nothing), PVs in
phase ``Released`` (their claim was deleted; with reclaimPolicy Retain the disk
stays and bills) and PVs ``Available`` that were never bound (no claim). A
volume must have been orphaned for at least ``minAgeDays``: a Released PV counts
from ``released_at`` when known, everything else from ``created_at``; an unknown
age is skipped (it could be seconds old).

When a Released PV is backed by an EBS volume that is also listed as
``available``, only the PV finding is kept (one disk, one finding); the EBS
entry is skipped with a pointer to it.

Finding: target VOLUME name=<volume id or PV name>, change ``delete``
(before "present", after None); evidence has age, size, type, IOPS/throughput,
tags, claim, storage class, the cost breakdown and ``snapshot_before_delete``
(from the policy; the Terraform editor adds a snapshot first when it is true).
Savings = storage + provisioned IOPS/throughput above what the type includes.
The snapshot taken first is not subtracted (it stores only used blocks and is
usually deleted later); its upper bound (full size) is in the evidence.

Confidence: 0.9 for ``available`` EBS volumes and Released PVs (state is
exact; the only doubt is a planned re-attach), 0.8 for never-bound PVs
(may be pre-provisioned for a claim to come). Risk (data loss): 0.05 for a
never-bound PV (holds no data), else 0.2 with a snapshot first, 0.5 without.
"""
from __future__ import annotations

from datetime import datetime

from typing import TYPE_CHECKING

from pydantic import Field

from ..errors import ConfigError
from ..models import (Change, ClusterState, EditKind, EditTarget, Finding, FindingType, Target, TargetKind, Volume,
                      VolumeSource)
from ..pricing.allocation import Rates
from ..safeio import SOURCE_HINT_KEY
from ..settings_base import SettingsModel
from .base import Detector, DetectorResult, Grouping, Skip, now_of, register

if TYPE_CHECKING:
    from ..ledger import Opportunity


class VolumeSettings(SettingsModel):
    """Orphan volumes (EBS volumes in state available, Released/unbound PersistentVolumes)."""

    enabled: bool = True
    min_age_days: int = Field(default=7, ge=0, le=3650, description="Unattached for at least this long.")
    snapshot_before_delete: bool = Field(default=True, description="The proposed change snapshots the volume before removing it.")


def _orphan_kind(volume: Volume) -> str | None:
    """'unattached' / 'released' / 'never-bound', or None when the volume is in use."""
    if volume.source == VolumeSource.EBS:
        return "unattached" if volume.state == "available" else None
    if volume.state == "Released":
        return "released"
    if volume.state == "Available" and not volume.claim:
        return "never-bound"
    return None


@register
class OrphanVolumes(Detector):
    """Disks that bill without being used."""

    name = "orphan-volumes"
    finding_type = FindingType.ORPHAN_VOLUME
    target_kind = TargetKind.VOLUME
    edit_kinds = (EditKind.EBS_VOLUME, EditKind.PERSISTENT_VOLUME)
    settings_key = "volumes"
    settings_model = VolumeSettings
    grouping = Grouping(label="orphan volumes", change_set="orphan-volumes", verb="Delete", noun="orphan volume")
    permissions = ("ec2:DescribeVolumes", "kubernetes:list:persistentvolumes")

    @classmethod
    def realized_savings(cls, opp: "Opportunity", state: ClusterState, rates: Rates) -> float | None:
        """The estimate, once the volume is gone from the inventory."""
        name = opp.target.split("/", 1)[-1]              # "volume/<id>"
        return opp.estimated_monthly_savings if all(v.id != name for v in state.volumes) else None

    def run(self, state: ClusterState) -> DetectorResult:
        result = DetectorResult()
        now = now_of(state)
        backed = {v.backing_volume_id: v.id for v in state.volumes
                  if v.source == VolumeSource.PV and v.backing_volume_id and _orphan_kind(v)}
        for volume in state.volumes:
            kind = _orphan_kind(volume)
            if kind is None:
                continue
            target = f"volume/{volume.id}"
            if volume.source == VolumeSource.EBS and volume.id in backed:
                result.skipped.append(self.skip(target, f"backs orphaned PV {backed[volume.id]}: "
                                                        "reported once, under the PV"))
                continue
            outcome = self._judge(state, volume, kind, now)
            if isinstance(outcome, Skip):
                result.skipped.append(outcome)
            else:
                result.findings.append(outcome)
        return result

    def _judge(self, state: ClusterState, volume: Volume, kind: str, now: datetime) -> Finding | Skip:
        cfg = self.config
        target = f"volume/{volume.id}"
        since = volume.released_at if kind == "released" and volume.released_at else volume.created_at
        if since is None:
            return self.skip(target, f"{kind} but its age is unknown (no creation time): not judged")
        age_days = (now - since).total_seconds() / 86400
        if age_days < cfg.min_age_days:
            return self.skip(target, f"{kind} for only {age_days:.1f} days (minAgeDays {cfg.min_age_days})")
        try:
            parts = self.prices.volume_monthly_parts(volume.volume_type, volume.size_gib, iops=volume.iops,
                                                     throughput=volume.throughput)
        except ConfigError as exc:
            return self.skip(target, f"{kind}, but cannot be priced: {exc.message}")
        return self._finding(state, volume, kind, age_days, parts)

    def _finding(self, state: ClusterState, volume: Volume, kind: str, age_days: float,
                 parts: dict[str, float]) -> Finding:
        snapshot = self.config.snapshot_before_delete and kind != "never-bound"
        cost = sum(parts.values())
        snapshot_cost = self.prices.snapshot_monthly(volume.size_gib) if snapshot else 0.0
        savings = cost
        confidence = 0.8 if kind == "never-bound" else 0.9
        risk = 0.05 if kind == "never-bound" else (0.2 if snapshot else 0.5)
        what = "EBS volume" if volume.source == VolumeSource.EBS else "PersistentVolume"
        evidence: dict[str, object] = {
            "source": volume.source.value, "orphan_kind": kind, "state": volume.state,
            "age_days": round(age_days, 1), "size_gib": volume.size_gib, "volume_type": volume.volume_type,
            "iops": volume.iops, "throughput": volume.throughput, "zone": volume.zone,
            "tags": dict(volume.tags), "claim": volume.claim, "storage_class": volume.storage_class,
            "backing_volume_id": volume.backing_volume_id,
            "created_at": volume.created_at.isoformat() if volume.created_at else None,
            "released_at": volume.released_at.isoformat() if volume.released_at else None,
            "snapshot_before_delete": snapshot,
            "cost_monthly": {k: round(v, 2) for k, v in parts.items()},
            "snapshot_monthly_upper_bound": round(snapshot_cost, 2),
            "savings_formula": "size GiB x GB-month price + IOPS/throughput above the included amounts",
            "prices": {"source": self.prices.source, "retrieved": self.prices.retrieved,
                       "region": self.prices.region},
        }
        hint = (volume.tags.get(SOURCE_HINT_KEY) or "").strip() or None
        if hint:
            evidence["source_hint"] = hint      # shown to reviewers; editors use Finding.edit.source_hint
        notes = [f"{what} {kind} for {age_days:.0f} days"]
        if snapshot:
            notes.append("a snapshot is taken before the delete (snapshotBeforeDelete); it costs at most "
                         f"${snapshot_cost:.2f}/month until removed")
        team = volume.tags.get("team") or (volume.claim.split("/")[0] if volume.claim and "/" in volume.claim
                                           else None)
        return Finding(
            detector=self.name, type=self.finding_type,
            target=Target(TargetKind.VOLUME, volume.id,
                          namespace=volume.claim.split("/")[0] if volume.claim and "/" in volume.claim else None),
            title=f"Delete {kind} {what} {volume.id} ({volume.size_gib} GiB {volume.volume_type}, "
                  f"{age_days:.0f} days)",
            changes=[Change("delete", "present", None)], monthly_savings=round(savings, 2),
            confidence=confidence, risk=risk,
            edit=EditTarget(EditKind.EBS_VOLUME if volume.source == VolumeSource.EBS else EditKind.PERSISTENT_VOLUME,
                            source_hint=hint, snapshot_before_delete=snapshot, size_gib=volume.size_gib),
            cost_before=round(cost, 2), cost_after=round(snapshot_cost, 2), evidence=evidence,
            labels=dict(volume.tags), team=team,
            cluster=state.cluster, notes=notes)
