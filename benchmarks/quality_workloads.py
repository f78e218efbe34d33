"""The quality benchmark's workloads: the simulator's usage families, seeded, over train + replay weeks.

Each workload is one container (1-4 replicas) whose CPU and memory *demand* is rendered by
:func:`finops_operator.simulator.patterns.render` over :data:`DAYS` days at 5 minutes. The first
:data:`TRAIN_DAYS` are what a recommender sees (as Prometheus would record them: CPU capped at the
current CPU limit, memory capped at the current memory limit, each up-crossing of it an OOM kill),
the last :data:`REPLAY_DAYS` are held out and judge the recommendation.

Current requests are what people write today: generous over the training usage (CPU 1.3-4x
its p95, memory 1.1-2.5x its max), memory limits 1-2x the request, CPU limits on half the
containers. A leak's sawtooth is OOM-killed at the current memory limit (the simulator's leak
pattern), in training and replay alike.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import numpy as np

from finops_operator.simulator.patterns import render

STEP = 300
TRAIN_DAYS = 14
REPLAY_DAYS = 7
DAYS = TRAIN_DAYS + REPLAY_DAYS
PER_DAY = 86400 // STEP
TRAIN = TRAIN_DAYS * PER_DAY
END = int(datetime(2026, 11, 16, tzinfo=timezone.utc).timestamp())      # a Monday, 00:00 UTC
TIMES = END - STEP * np.arange(DAYS * PER_DAY - 1, -1, -1, dtype=np.int64)
MI = 2**20
FAMILIES = ("steady", "daily", "weekend", "burst", "viral", "growth", "decline", "leak", "batch", "jvm")

Shape = tuple[str, dict[str, float], float]          # pattern, params, noise


@dataclass(slots=True)
class Workload:
    family: str
    name: str
    replicas: int
    cpu: np.ndarray              # demand, cores per replica, DAYS x PER_DAY points
    memory: np.ndarray           # demand, bytes per replica
    cpu_request: float
    cpu_limit: float | None
    memory_request: float
    memory_limit: float

    @property
    def train_cpu(self) -> np.ndarray:
        """CPU as recorded: capped (throttled) at the current limit."""
        cpu = self.cpu[:TRAIN]
        return cpu if self.cpu_limit is None else np.minimum(cpu, self.cpu_limit)

    @property
    def train_memory(self) -> np.ndarray:
        return np.minimum(self.memory[:TRAIN], self.memory_limit)

    @property
    def train_oom_kills(self) -> int:
        over = self.memory[:TRAIN] >= self.memory_limit
        return int(np.count_nonzero(over[1:] & ~over[:-1]) + int(over[0]))

    @property
    def throttled_ratio(self) -> float | None:
        """Share of training samples above the CPU limit (None without a limit)."""
        return None if self.cpu_limit is None else float((self.cpu[:TRAIN] > self.cpu_limit).mean())

    @property
    def replay_cpu(self) -> np.ndarray:
        return self.cpu[TRAIN:]

    @property
    def replay_memory(self) -> np.ndarray:
        return self.memory[TRAIN:]


def _cpu_base(rng: np.random.Generator) -> float:
    return float(rng.uniform(0.05, 1.0))


def _mem_base(rng: np.random.Generator) -> float:
    return float(rng.uniform(128, 2048)) * MI


def _family_shapes(family: str, rng: np.random.Generator) -> tuple[Shape, Shape]:
    """CPU and memory shapes of one workload of ``family`` (parameters drawn from ``rng``)."""
    cb, mb = _cpu_base(rng), _mem_base(rng)
    u = rng.uniform
    shapes: dict[str, Callable[[], tuple[Shape, Shape]]] = {
        "steady": lambda: (("steady", {"base": cb}, u(0.05, 0.2)), ("steady", {"base": mb}, u(0.01, 0.05))),
        "daily": lambda: (("daily", {"base": cb, "amplitude": cb * u(0.3, 0.8), "peakHour": u(8, 20)}, 0.08),
                          ("daily", {"base": mb, "amplitude": mb * u(0.05, 0.3)}, 0.03)),
        "weekend": lambda: (("weekend", {"base": cb, "amplitude": cb * u(0.3, 0.7), "weekendFactor": u(0.2, 0.6)},
                             0.08),
                            ("weekend", {"base": mb, "amplitude": mb * u(0.05, 0.2),
                                         "weekendFactor": u(0.6, 0.9)}, 0.03)),
        "burst": lambda: (("burst", {"base": cb * 0.5, "burstsPerDay": u(0.5, 4), "minFactor": 3, "maxFactor": 12},
                           0.1),
                          ("burst", {"base": mb, "burstsPerDay": u(0.1, 1.0), "burstMinutes": u(5, 30),
                                     "minFactor": 1.5, "maxFactor": 3.0}, 0.03)),
        "viral": lambda: (("viral", {"base": cb * 0.5, "factor": u(3, 10), "at": u(0.3, 0.6),
                                     "decayHours": u(24, 120)}, 0.08),
                          ("viral", {"base": mb, "factor": u(1.5, 3), "at": u(0.3, 0.6),
                                     "decayHours": u(24, 120)}, 0.03)),
        "growth": lambda: (("growth", {"base": cb, "endFactor": u(1.5, 3.0), "dailySwing": u(0, 0.4)}, 0.08),
                           ("growth", {"base": mb, "endFactor": u(1.3, 2.5), "dailySwing": u(0, 0.1)}, 0.03)),
        "decline": lambda: (("decline", {"base": cb, "endFactor": u(0.2, 0.6), "dailySwing": u(0, 0.4)}, 0.08),
                            ("decline", {"base": mb, "endFactor": u(0.4, 0.8), "dailySwing": u(0, 0.1)}, 0.03)),
        "leak": lambda: (("daily", {"base": cb, "amplitude": cb * u(0.1, 0.5)}, 0.08),
                         ("leak", {"base": mb, "rate": mb * u(0.02, 0.08)}, 0.02)),
        "batch": lambda: (("batch", {"base": cb * 0.1, "factor": u(10, 40),
                                     "everyHours": float(rng.choice([6, 12, 24])),
                                     "atHour": float(rng.integers(0, 6)), "durationMinutes": u(20, 120)}, 0.1),
                          ("batch", {"base": mb, "factor": u(1.5, 4), "everyHours": 24.0, "atHour": 2.0,
                                     "durationMinutes": u(20, 120)}, 0.03)),
        "jvm": lambda: (("jvm", {"base": cb, "startupFactor": u(3, 8), "restartEveryHours": u(24, 168),
                                 "warmupMinutes": u(5, 20)}, 0.1),
                        ("jvm", {"base": mb * 0.3, "heap": mb * u(1, 3), "gcDepth": u(0.05, 0.3),
                                 "gcMinutes": u(5, 60), "restartEveryHours": u(24, 168)}, 0.01)),
    }
    return shapes[family]()


def make_workload(family: str, index: int, seed: int) -> Workload:
    """One seeded workload of ``family`` with today's (over-provisioned) requests and limits."""
    rng = np.random.default_rng([seed, FAMILIES.index(family), index])
    (cpu_p, cpu_params, cpu_noise), (mem_p, mem_params, mem_noise) = _family_shapes(family, rng)
    if family == "jvm":        # CPU and memory restart together
        mem_params["restartEveryHours"] = cpu_params["restartEveryHours"]
    mem_limit = None
    if family == "leak":       # the leak is OOM-killed at today's limit, 2-3x its base
        mem_limit = _step_up(mem_params["base"] * rng.uniform(2.0, 3.0))
        mem_params["limit"] = mem_limit
    cpu = render(cpu_p, TIMES.astype(float), cpu_params, cpu_noise, rng).values
    memory = render(mem_p, TIMES.astype(float), mem_params, mem_noise, rng).values
    cpu_request = round(max(0.01, float(np.percentile(cpu[:TRAIN], 95)) * rng.uniform(1.3, 4.0)), 2)
    cpu_limit = cpu_request * 2 if rng.random() < 0.5 else None
    if mem_limit is None:
        memory_request = float(memory[:TRAIN].max()) * rng.uniform(1.1, 2.5)
        mem_limit = memory_request * float(rng.choice([1.0, 1.25, 1.5, 2.0]))
    else:
        memory_request = mem_limit * rng.uniform(0.5, 1.0)
    return Workload(family, f"{family}-{seed}-{index}", int(rng.integers(1, 5)), cpu, memory, cpu_request,
                    cpu_limit, _step_up(memory_request), _step_up(mem_limit))


def _step_up(value: float) -> float:
    return float(np.ceil(value / (16 * MI)) * 16 * MI)


def workloads(seeds: list[int], per_family: int, families: tuple[str, ...] = FAMILIES) -> list[Workload]:
    return [make_workload(f, i, s) for s in seeds for f in families for i in range(per_family)]
