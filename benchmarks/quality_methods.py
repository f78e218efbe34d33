"""The methods the quality benchmark compares, each a function ``workloads -> {name: Sizing}``.

* **finops-operator**: the real right-sizers on the real summary path. The training weeks become a
  :class:`~finops_operator.snapshot.Snapshot` (inventory + series matrices), summarised by
  :func:`finops_operator.usage.state_for_policy` (the scan's own call, through ``stats.summarise``),
  then :class:`CpuRightsizing` and :class:`MemoryRightsizing` run with the policy's settings; what a
  finding changes is read back from its typed ``changes``, a skipped container keeps its values.
* **finops-operator, unattended**: the same findings through the policy's guardrails
  (:func:`finops_operator.guardrails.engine.evaluate`, one finding at a time, so the daily cap, which only
  spreads changes over days, is left out): only the ALLOW ones are applied; one that needs an approval or
  is denied keeps the container's current values. What the operator changes with nobody approving.
* **KRR simple** (robusta-dev/krr ``robusta_krr/strategies/simple.py`` at 6cef9fa, its defaults):
  CPU request = p95 of the history (``cpu_percentile = 95``), no CPU limit; memory request = limit =
  max x (1 + 15%) (``memory_buffer_percentage = 15``); history 14 days (``history_duration`` 336 h).
* **VPA-like** (kubernetes/autoscaler ``vertical-pod-autoscaler/docs/flags.md``, recommender defaults):
  decaying histograms with a 24 h half-life (``cpu-`` / ``memory-histogram-decay-half-life``);
  CPU target = p90 of the decayed CPU samples (``target-cpu-percentile 0.9``) x (1 + 15%)
  (``recommendation-margin-fraction 0.15``), at least 25m; memory target = p90 of the decayed daily
  peaks (``memory-aggregation-interval 24h`` x ``memory-aggregation-interval-count 8``,
  ``target-memory-percentile 0.9``) x 1.15, at least 250Mi; an OOM kill adds a peak of
  max(limit x 1.2, limit + 100Mi) (``oom-bump-up-ratio``, ``oom-min-bump-up-bytes``). Limits keep
  their ratio to the request (VPA's default ``controlledValues: RequestsAndLimits``). Percentiles are read
  as VPA's histogram reads them (``pkg/recommender/util/histogram.go``: the END of the bucket holding the
  percentile; buckets grow 5%, the first 0.001 cores / 1e7 bytes wide, ``model/aggregations_config.go``).
  Simplified: CPU samples weigh 1 (VPA weighs them by the request, constant here).
* **oracle**: knows the replay week: CPU request = its p95, no CPU limit; memory request = limit = just
  above its max (+0.1%: the replay's peak must stay below the limit).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
from quality_workloads import MI, PER_DAY, STEP, TIMES, TRAIN, Workload

from finops_operator.detectors.cpu import CpuRightsizing
from finops_operator.detectors.memory import MemoryRightsizing
from finops_operator.guardrails.engine import evaluate
from finops_operator.guardrails.rules import GuardrailContext
from finops_operator.models import (ClusterState, Container, ContainerKey, Resources, Verdict, Window,
                                    Workload as Wl, WorkloadRef)
from finops_operator.pricing.allocation import Rates
from finops_operator.pricing.catalog import PriceBook
from finops_operator.settings import PolicySettings
from finops_operator.snapshot import Snapshot
from finops_operator.units import format_cpu, format_memory, parse_cpu, parse_memory
from finops_operator.usage import state_for_policy

#: m5.xlarge split 4 cores / 16 GiB in the catalog's 0.031611 : 0.004237 ratio (USD per hour)
RATES = Rates(cpu_core_hour=0.03125, memory_gib_hour=0.00419, nodes_priced=1)
HALF_LIFE_S = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Sizing:
    cpu_request: float
    cpu_limit: float | None
    memory_request: float
    memory_limit: float | None


def krr_simple(ws: list[Workload]) -> dict[str, Sizing]:
    out = {}
    for w in ws:
        mem = float(w.train_memory.max()) * 1.15
        out[w.name] = Sizing(float(np.percentile(w.train_cpu, 95)), None, mem, mem)
    return out


def weighted_percentile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """Smallest value whose cumulative weight reaches ``q`` (0..1) of the total."""
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][min(len(values) - 1, int(np.searchsorted(cum, q * cum[-1])))])


def vpa_bucket_end(value: float, first: float, growth: float = 1.05) -> float:
    """End of VPA's exponential histogram bucket holding ``value`` (bucket k starts at first x (g^k - 1)/(g - 1))."""
    k = int(np.floor(np.log(1 + value * (growth - 1) / first) / np.log(growth)))
    end = first * (growth ** (k + 1) - 1) / (growth - 1)
    return end if end > value else first * (growth ** (k + 2) - 1) / (growth - 1)


def _scaled_limit(limit: float | None, request_before: float, request_after: float) -> float | None:
    return None if limit is None else limit * request_after / request_before


def vpa_like(ws: list[Workload]) -> dict[str, Sizing]:
    train_end = float(TIMES[TRAIN - 1])
    age = train_end - TIMES[:TRAIN].astype(float)
    decay = 0.5 ** (age / HALF_LIFE_S)
    out = {}
    for w in ws:
        cpu = max(0.025, vpa_bucket_end(weighted_percentile(w.train_cpu, decay, 0.9), 0.001) * 1.15)
        peaks = w.train_memory.reshape(-1, PER_DAY).max(axis=1)[-8:]           # 8 daily peaks
        peak_w = 0.5 ** (np.arange(len(peaks))[::-1] * 86400 / HALF_LIFE_S)
        if w.train_oom_kills:
            bump = max(w.memory_limit * 1.2, w.memory_limit + 100 * MI)
            peaks, peak_w = np.append(peaks, bump), np.append(peak_w, 1.0)
        mem = max(250 * MI, vpa_bucket_end(weighted_percentile(peaks, peak_w, 0.9), 1e7) * 1.15)
        out[w.name] = Sizing(cpu, _scaled_limit(w.cpu_limit, w.cpu_request, cpu), mem,
                             _scaled_limit(w.memory_limit, w.memory_request, mem))
    return out


def oracle(ws: list[Workload]) -> dict[str, Sizing]:
    return {w.name: Sizing(float(np.percentile(w.replay_cpu, 95)), None, float(w.replay_memory.max()) * 1.001,
                           float(w.replay_memory.max()) * 1.001) for w in ws}


def _ref(w: Workload) -> WorkloadRef:
    return WorkloadRef("Deployment", w.family, w.name)


def training_snapshot(ws: list[Workload]) -> Snapshot:
    """The training weeks as the scan sees them: inventory with today's resources + the series."""
    start, end = TIMES[0], TIMES[TRAIN - 1]
    window = Window(datetime.fromtimestamp(int(start), timezone.utc), datetime.fromtimestamp(int(end), timezone.utc),
                    STEP)
    state = ClusterState(cluster="quality", region="us-east-1", window=window)
    for w in ws:
        raw = {"requests.cpu": format_cpu(w.cpu_request), "requests.memory": format_memory(w.memory_request),
               "limits.memory": format_memory(w.memory_limit)}
        if w.cpu_limit is not None:
            raw["limits.cpu"] = format_cpu(w.cpu_limit)
        res = Resources(parse_cpu(raw["requests.cpu"]), parse_cpu(raw["limits.cpu"]) if w.cpu_limit else None,
                        parse_memory(raw["requests.memory"]), parse_memory(raw["limits.memory"]), raw)
        kills = w.train_oom_kills
        container = Container("app", resources=res, restarts=kills, oom_kills=kills,
                              last_terminated_reason="OOMKilled" if kills else None)
        state.workloads.append(Wl(_ref(w), w.replicas, [container], {"team": w.family}))
    keys = [ContainerKey(_ref(w), "app") for w in ws]
    cpu = np.stack([w.train_cpu for w in ws]).astype(np.float32)
    memory = np.stack([w.train_memory for w in ws]).astype(np.float32)
    throttled = np.array([np.nan if w.throttled_ratio is None else w.throttled_ratio for w in ws], dtype=np.float32)
    return Snapshot(state, keys, TIMES[:TRAIN].copy(), cpu, memory, throttled)


def finops(ws: list[Workload], settings: PolicySettings
           ) -> tuple[dict[str, Sizing], dict[str, Sizing], dict[str, str]]:
    """Sizings written by the real right-sizers, the same with only what the guardrails ALLOW applied, and
    which rule decided each (resource/name -> rule; ``held by guardrails`` appended when not allowed)."""
    state = state_for_policy(training_snapshot(ws), settings)
    prices = PriceBook.load()
    context = GuardrailContext(now=datetime.fromtimestamp(int(TIMES[TRAIN - 1]), timezone.utc))
    current = {w.name: {"cpu_request": w.cpu_request, "cpu_limit": w.cpu_limit, "memory_request": w.memory_request,
                        "memory_limit": w.memory_limit} for w in ws}
    values = {name: dict(v) for name, v in current.items()}
    guarded = {name: dict(v) for name, v in current.items()}
    decided: dict[str, str] = {}
    for detector, resource, parse in ((CpuRightsizing, "cpu", parse_cpu), (MemoryRightsizing, "memory", parse_memory)):
        for finding in detector(settings, prices, RATES).run(state).findings:
            name = finding.target.workload.name
            verdict = evaluate([finding], settings.guardrails, context)[finding.id].verdict
            rule = str(finding.evidence.get("decided_by", "percentile"))
            decided[f"{resource}/{name}"] = rule if verdict == Verdict.ALLOW else f"{rule}, held: {verdict.value}"
            for change in finding.changes:
                kind = "request" if change.field.startswith("resources.requests.") else "limit"
                after = parse(change.after) if change.after is not None else None
                values[name][f"{resource}_{kind}"] = after
                if verdict == Verdict.ALLOW:
                    guarded[name][f"{resource}_{kind}"] = after
    return ({name: Sizing(**v) for name, v in values.items()}, {name: Sizing(**v) for name, v in guarded.items()},
            decided)

