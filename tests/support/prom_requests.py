"""How many HTTP requests one live usage scan sends, written out from the design (sources/promscan.py's
module doc), so the tests check the scan against the design rather than against its own ``planned``."""
from __future__ import annotations

from finops_operator.settings import PolicySettings
from finops_operator.stats import needed_percentiles


def scan_requests(percentiles: dict[str, tuple[int, ...]] | None = None, *, node_query: bool,
                  rules: bool = False, remote: bool = False) -> int:
    """The probe and objects; the six container facts (restarts, OOM kills, throttled and total CFS periods,
    requests, limits); per resource one range query per statistic (count, mean or rate, max,
    std, each percentile) and one instant query per window percentile; with ``remote`` the statistics come
    from one remote read per recorded series (with ``rules``), or the raw CPU max, std and percentiles
    from one remote read of the counter; with ``node_query``
    (a scope narrower than the cluster, or a timeWindow) the pods' per-bucket usage: memory sum and count,
    and the CPU rate (raw) or sum and count (rules)."""
    if percentiles is None:
        percentiles = needed_percentiles(PolicySettings())
    memory = 4 + 2 * len(percentiles.get("memory", ()))
    cpu = 4 + 2 * len(percentiles.get("cpu", ()))
    if remote and rules:        # every statistic of both recorded series: one remote read each
        memory, cpu = 1, 1
    elif remote:                # raw CPU: count and rate stay queries, the rest is one remote read
        cpu = 2 + 1
    return 2 + 6 + memory + cpu + ((4 if rules else 3) if node_query else 0)
