"""Which window percentiles the statistics compute: derived from the policy, never hard-coded."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..settings import PolicySettings

RESOURCES = ("cpu", "memory")


def needed_percentiles(settings: "PolicySettings") -> dict[str, frozenset[int]]:
    """The integer percentiles (50..99) each resource's statistics must hold for ``settings``.

    The right-sizers' policy percentile of each resource; 100 is left out because it is the
    max, which every summary carries. This is the one place where a rule that needs another
    quantile (of the window or of the per-day buckets) adds it.
    """
    detectors = settings.detectors
    chosen = {"cpu": {detectors.cpu.percentile}, "memory": {detectors.memory.percentile}}
    return {name: frozenset(q for q in chosen[name] if q < 100) for name in RESOURCES}
