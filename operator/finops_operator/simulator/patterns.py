"""Traffic patterns: vectorised, deterministic usage curves in real units.

Every pattern is a pure function of the sample times (epoch seconds, UTC), its
parameters and a seeded ``numpy.random.Generator``; it returns the *demand*
curve (cores for CPU, bytes for memory) as float64. Noise, limits, throttling
and gaps are applied afterwards by :mod:`.scenario` so every pattern gets them
the same way. Parameter names below are the YAML keys (``cpu: {pattern: daily,
base: 0.15, amplitude: 0.1}``); *quantity* parameters take cores / bytes or a
Kubernetes quantity string (``"250m"``, ``"600Mi"``), the others plain numbers.

=============  =================================================================
pattern        parameters (default)
=============  =================================================================
steady         base
daily          base, amplitude (0), peakHour (14) — cosine day cycle, UTC hours
weekend        base, amplitude (0), peakHour (14), weekendFactor (0.4) — daily
               cycle, Saturday and Sunday scaled by weekendFactor
seasonal       base, amplitude, periodDays (7; 30 = monthly swell), peakDay (0),
               dailyAmplitude (0)
burst          base, burstsPerDay (2), burstMinutes (15), minFactor (5),
               maxFactor (20) — short bursts of 5-20x base at random times
viral          base, factor (10), at (0.6), decayHours (48) — sudden jump to
               factor x base at fraction ``at`` of the window, slow exp decay
decline        base, endFactor (0.3), dailySwing (0) — linear fall to
               base x endFactor at the end of the window
growth         base, endFactor (2.0), dailySwing (0) — steady linear growth
launch         base, endFactor (4.0), at (0.5), widthHours (12), dailySwing (0)
               — feature launch, logistic S-curve centred on fraction ``at``
migration      base, endFactor (0.5), at (0.5) — step change (model/instance
               migration) at fraction ``at`` of the window
leak           base, rate (per hour), limit (container limit) — memory only:
               grows by ``rate`` per hour until ``limit``, is OOM-killed and
               restarts at ``base`` (sawtooth); ``sawtooth`` is an alias
multitenant    base (total mean), tenants (5) — sum of independent tenants, each
               with its own day cycle, peak hour, weekend dip and bursts
batch          base, factor (20), everyHours (24), atHour (2), durationMinutes (60)
               — periodic jobs: near-idle at base, runs of factor x base (+-10%
               per run) starting at atHour UTC and every everyHours after it
jvm            base, heap (0), gcDepth (0.15), gcMinutes (10), restartEveryHours
               (72; 0 = never), warmupMinutes (10), startupFactor (1) — a JVM.
               Memory: base (non-heap) + heap (-Xmx) x a flat plateau at -Xmx
               with a GC sawtooth below it (climbs from (1 - gcDepth) x heap to
               heap in 70% of gcMinutes, sits there until the GC), ramping up over warmupMinutes after each
               restart. CPU: leave heap 0 and set startupFactor: base, with
               startupFactor x base over the warmupMinutes after each restart
               (JIT and class loading). Restarts fall at multiples of
               restartEveryHours since the epoch, so a container's CPU and
               memory series restart together; they are deploys, not OOM kills
=============  =================================================================

``dailySwing`` is relative (0.3 = +-30% around the trend); ``amplitude`` is in
the pattern's unit. ``noise`` (relative standard deviation, default 0.05) is
common to all patterns and handled by the caller.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

DAY = 86400.0
HOUR = 3600.0
#: Parameters given in the series' unit (cores / bytes); the rest are plain numbers.
QUANTITY_PARAMS = frozenset({"base", "amplitude", "rate", "limit", "heap"})


@dataclass(frozen=True, slots=True)
class Curve:
    """A pattern's output: demand values and the sample indexes of OOM kills."""

    values: np.ndarray
    oom_steps: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


PatternFn = Callable[[np.ndarray, dict[str, float], np.random.Generator], Curve]


@dataclass(frozen=True, slots=True)
class Pattern:
    name: str
    fn: PatternFn
    params: dict[str, float | None]   # name -> default (None = required)
    memory_only: bool = False


@functools.lru_cache(maxsize=8)
def _axis(first: int, step: int, points: int) -> tuple[np.ndarray, np.ndarray]:
    """UTC hour of day and weekday (0 = Monday) for an evenly spaced timeline, computed once."""
    t = first + step * np.arange(points, dtype=np.int64)
    hour = (t % 86400) / HOUR
    weekday = (t // 86400 + 3) % 7          # 1970-01-01 was a Thursday
    hour.flags.writeable = weekday.flags.writeable = False
    return hour, weekday


def _cached(t: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    if len(t) > 2 and t[1] - t[0] == t[-1] - t[-2] and (t[-1] - t[0]) == (t[1] - t[0]) * (len(t) - 1) \
            and float(t[0]).is_integer() and float(t[1] - t[0]).is_integer():
        return _axis(int(t[0]), int(t[1] - t[0]), len(t))
    return None


def _hour(t: np.ndarray) -> np.ndarray:
    cached = _cached(t)
    return cached[0] if cached is not None else (t % DAY) / HOUR


def _weekday(t: np.ndarray) -> np.ndarray:
    """0 = Monday (1970-01-01 was a Thursday)."""
    cached = _cached(t)
    return cached[1] if cached is not None else ((t // DAY).astype(np.int64) + 3) % 7


def _frac(t: np.ndarray) -> np.ndarray:
    """Position in the window, 0 at the first sample, 1 at the last."""
    span = float(t[-1] - t[0]) if len(t) > 1 else 1.0
    return (t - t[0]) / (span or 1.0)


def _cycle(t: np.ndarray, peak_hour: float) -> np.ndarray:
    return np.cos(2 * math.pi * (_hour(t) - peak_hour) / 24.0)


def _swing(t: np.ndarray, p: dict[str, float]) -> np.ndarray:
    return 1.0 + p.get("dailySwing", 0.0) * _cycle(t, 14.0)


def steady(t, p, rng) -> Curve:
    return Curve(np.full(len(t), p["base"], dtype=np.float64))


def daily(t, p, rng) -> Curve:
    return Curve(p["base"] + p["amplitude"] * _cycle(t, p["peakHour"]))


def weekend(t, p, rng) -> Curve:
    values = daily(t, p, rng).values
    return Curve(np.where(_weekday(t) >= 5, values * p["weekendFactor"], values))


def seasonal(t, p, rng) -> Curve:
    days = t / DAY
    swell = np.cos(2 * math.pi * (days - p["peakDay"]) / p["periodDays"])
    return Curve(p["base"] + p["amplitude"] * swell + p["dailyAmplitude"] * _cycle(t, 14.0))


def burst(t, p, rng) -> Curve:
    values = np.full(len(t), p["base"], dtype=np.float64)
    step = float(t[1] - t[0]) if len(t) > 1 else 300.0
    span_days = max((t[-1] - t[0]) / DAY, step / DAY)
    count = int(rng.poisson(p["burstsPerDay"] * span_days))
    width = max(1, int(round(p["burstMinutes"] * 60 / step)))
    starts = rng.integers(0, len(t), size=count)
    factors = rng.uniform(p["minFactor"], p["maxFactor"], size=count)
    mult = np.ones(len(t))
    for start, factor in zip(starts, factors):
        window = slice(start, min(len(t), start + width))
        mult[window] = np.maximum(mult[window], factor)
    return Curve(values * mult)


def viral(t, p, rng) -> Curve:
    frac = _frac(t)
    t0 = t[0] + p["at"] * (t[-1] - t[0])
    after = frac >= p["at"]
    decay = np.exp(-np.clip(t - t0, 0, None) / (p["decayHours"] * HOUR))
    return Curve(p["base"] * (1.0 + np.where(after, (p["factor"] - 1.0) * decay, 0.0)))


def decline(t, p, rng) -> Curve:
    return Curve(p["base"] * (1.0 + (p["endFactor"] - 1.0) * _frac(t)) * _swing(t, p))


def growth(t, p, rng) -> Curve:
    return decline(t, p, rng)


def launch(t, p, rng) -> Curve:
    t0 = t[0] + p["at"] * (t[-1] - t[0])
    s_curve = 1.0 / (1.0 + np.exp(-(t - t0) / (p["widthHours"] * HOUR / 4.0)))
    return Curve(p["base"] * (1.0 + (p["endFactor"] - 1.0) * s_curve) * _swing(t, p))


def migration(t, p, rng) -> Curve:
    return Curve(p["base"] * np.where(_frac(t) >= p["at"], p["endFactor"], 1.0))


def leak(t, p, rng) -> Curve:
    """Sawtooth: base + rate x age, OOM-killed at ``limit``; random phase."""
    base, limit = p["base"], p["limit"]
    step_hours = (float(t[1] - t[0]) if len(t) > 1 else 300.0) / HOUR
    per_step = p["rate"] * step_hours
    if per_step <= 0 or limit <= base:
        return Curve(np.full(len(t), min(base, limit), dtype=np.float64))
    period = max(2, int(math.ceil((limit - base) / per_step)))   # steps from restart to OOM
    phase = int(rng.integers(0, period))
    age = (np.arange(len(t)) + phase) % period
    values = base + per_step * age
    # The sample after the last one below the limit is the restarted container.
    oom = np.nonzero(age == 0)[0]
    oom = oom[oom > 0]
    values[np.maximum(oom - 1, 0)] = limit     # last sample before the kill touches the limit
    return Curve(values, oom.astype(np.int64))


def multitenant(t, p, rng) -> Curve:
    tenants = max(1, int(p["tenants"]))
    shares = rng.dirichlet(np.ones(tenants)) * p["base"]
    total = np.zeros(len(t))
    for share in shares:
        tp = {"base": float(share), "amplitude": float(share * rng.uniform(0.2, 0.8)),
              "peakHour": float(rng.uniform(0, 24)), "weekendFactor": float(rng.uniform(0.3, 1.0))}
        curve = weekend(t, tp, rng).values
        if rng.random() < 0.5:
            bp = {"base": 1.0, "burstsPerDay": 0.5, "burstMinutes": 20, "minFactor": 2.0, "maxFactor": 5.0}
            curve = curve * burst(t, bp, rng).values
        total += np.clip(curve, 0, None)
    return Curve(total)


def batch(t, p, rng) -> Curve:
    """Near-idle at base; a job of about factor x base runs for durationMinutes at fixed hours."""
    every = max(p["everyHours"], 1.0 / 60) * HOUR
    offset = (t - p["atHour"] * HOUR) % every            # seconds since the latest scheduled start
    run_index = np.floor((t - p["atHour"] * HOUR) / every).astype(np.int64)
    running = offset < p["durationMinutes"] * 60
    runs, inverse = np.unique(run_index, return_inverse=True)
    levels = p["factor"] * rng.uniform(0.9, 1.1, size=len(runs))
    return Curve(p["base"] * np.where(running, levels[inverse], 1.0))


#: Share of a GC cycle the JVM heap takes to climb back to -Xmx; it sits at -Xmx for the rest.
GC_CLIMB = 0.7


def _jvm_age(t: np.ndarray, p: dict[str, float]) -> np.ndarray:
    """Seconds since the JVM's latest restart (restarts at multiples of restartEveryHours since the epoch)."""
    every = p["restartEveryHours"] * HOUR
    return t % every if every > 0 else np.full(len(t), np.inf)


def jvm(t, p, rng) -> Curve:
    """Heap plateau at -Xmx with a GC sawtooth below it, plus a CPU startup spike after each restart."""
    age = _jvm_age(t, p)
    warmup = max(p["warmupMinutes"] * 60, 1.0)
    ramp = np.clip(age / warmup, 0.0, 1.0)
    gc_period = max(p["gcMinutes"] * 60, 1.0)
    saw = (np.where(np.isfinite(age), age, t) % gc_period) / gc_period    # 0 after a GC, 1 just before
    fill = np.minimum(1.0, saw / GC_CLIMB)                                   # reaches -Xmx, stays until the GC
    heap = p["heap"] * ramp * (1.0 - p["gcDepth"] * (1.0 - fill))
    startup = np.where(age < warmup, p["startupFactor"], 1.0)
    return Curve(p["base"] * startup + heap)


PATTERNS: dict[str, Pattern] = {
    pattern.name: pattern for pattern in (
        Pattern("steady", steady, {"base": None}),
        Pattern("daily", daily, {"base": None, "amplitude": 0.0, "peakHour": 14.0}),
        Pattern("weekend", weekend, {"base": None, "amplitude": 0.0, "peakHour": 14.0,
                                     "weekendFactor": 0.4}),
        Pattern("seasonal", seasonal, {"base": None, "amplitude": None, "periodDays": 7.0,
                                       "peakDay": 0.0, "dailyAmplitude": 0.0}),
        Pattern("burst", burst, {"base": None, "burstsPerDay": 2.0, "burstMinutes": 15.0,
                                 "minFactor": 5.0, "maxFactor": 20.0}),
        Pattern("viral", viral, {"base": None, "factor": 10.0, "at": 0.6, "decayHours": 48.0}),
        Pattern("decline", decline, {"base": None, "endFactor": 0.3, "dailySwing": 0.0}),
        Pattern("growth", growth, {"base": None, "endFactor": 2.0, "dailySwing": 0.0}),
        Pattern("launch", launch, {"base": None, "endFactor": 4.0, "at": 0.5, "widthHours": 12.0,
                                   "dailySwing": 0.0}),
        Pattern("migration", migration, {"base": None, "endFactor": 0.5, "at": 0.5}),
        Pattern("leak", leak, {"base": None, "rate": None, "limit": None}, memory_only=True),
        Pattern("sawtooth", leak, {"base": None, "rate": None, "limit": None}, memory_only=True),
        Pattern("multitenant", multitenant, {"base": None, "tenants": 5.0}),
        Pattern("batch", batch, {"base": None, "factor": 20.0, "everyHours": 24.0, "atHour": 2.0,
                                 "durationMinutes": 60.0}),
        Pattern("jvm", jvm, {"base": None, "heap": 0.0, "gcDepth": 0.15, "gcMinutes": 10.0,
                             "restartEveryHours": 72.0, "warmupMinutes": 10.0, "startupFactor": 1.0}),
    )
}


def render(pattern: str, t: np.ndarray, params: dict[str, float], noise: float,
           rng: np.random.Generator) -> Curve:
    """Evaluate ``pattern`` with defaults filled in, add multiplicative noise, clip at 0.

    Noise never moves an OOM kill: leak curves keep their exact sawtooth
    timing and only the growth between kills is noisy.
    """
    spec = PATTERNS[pattern]
    full = {name: (params[name] if name in params else default) for name, default in spec.params.items()}
    curve = spec.fn(np.asarray(t, dtype=np.float64), full, rng)
    values = curve.values
    if noise > 0:
        values = values * (1.0 + noise * rng.standard_normal(len(values)))
        if "limit" in full and full["limit"] is not None:
            values = np.minimum(values, full["limit"])
            if len(curve.oom_steps):
                values[np.maximum(curve.oom_steps - 1, 0)] = full["limit"]
    return Curve(np.clip(values, 0.0, None), curve.oom_steps)
