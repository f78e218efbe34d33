"""Additive Holt-Winters with a damped trend and a 7-day season, fitted by grid search (numpy only).

    level    l_t = a (y_t - s_{t-7}) + (1 - a)(l_{t-1} + phi b_{t-1})
    trend    b_t = b (l_t - l_{t-1}) + (1 - b) phi b_{t-1}
    season   s_t = g (y_t - l_t) + (1 - g) s_{t-7}
    forecast y_{n+h} = l_n + (phi + ... + phi^h) b_n + s_{n+h-7k}

Every (a, b, g, phi) of :data:`GRID` runs at once as one numpy vector per state, and the one with the least
one-step error (Huber loss: squared, linear beyond the clip; the two weeks that start the states excluded) wins. Robust to one-off
spikes and dips: a one-step error beyond :data:`CLIP` robust standard deviations updates the states as if it were
CLIP of them (Gelper, Fried & Croux 2010), so an injected anomaly does not drag the level or season; from the
:data:`SHIFT_DAYS`-th day in a row off the same way, the error counts in full (a level shift is the new normal).

Why not statsmodels' ExponentialSmoothing: it pulls scipy, pandas and patsy (~100 MB) into the operator
image for a recursion of twenty lines; a grid of 126 parameter sets fits 120 days in about 10 ms.
"""
from __future__ import annotations

import itertools

import numpy as np

SEASON = 7
MIN_DAYS = 2 * SEASON            # the states are started from the first two weeks
CLIP = 3.0
SHIFT_DAYS = 3
# Trends are damped hard and learnt slowly: after a launch or a level shift a quick, lightly damped trend
# extrapolates the jump (benchmarks/bench_forecast.py: phi 0.98 and beta 0.2 cost 0.5-1 point of 30-day error).
_ALPHA = (0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7)
_BETA = (0.0, 0.02, 0.08)
_GAMMA = (0.02, 0.1, 0.25)
_PHI = (0.8, 0.9)
GRID = np.array(list(itertools.product(_ALPHA, _BETA, _GAMMA, _PHI)), dtype=np.float64).T   # [4, G]


def _start(y: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Level, trend and season from the first two weeks."""
    first, second = y[:SEASON], y[SEASON:2 * SEASON]
    level = float(np.mean(second))
    trend = float(np.mean(second) - np.mean(first)) / SEASON
    season = ((first - np.mean(first)) + (second - np.mean(second))) / 2.0
    return level, trend, season


def _robust_scale(y: np.ndarray) -> float:
    """Standard deviation of day-to-day noise from the seasonal differences, by the median (spikes ignored)."""
    diff = y[SEASON:] - y[:-SEASON]
    mad = float(np.median(np.abs(diff - np.median(diff))))
    scale = 1.4826 * mad / np.sqrt(2.0)
    return scale if scale > 0 else max(1e-9, 1e-6 * float(np.mean(np.abs(y))))


def _run(y: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All parameter sets through the series: (loss [G], level [G], trend [G], season [7, G])."""
    alpha, beta, gamma, phi = grid
    level0, trend0, season0 = _start(y)
    g = grid.shape[1]
    level = np.full(g, level0)
    trend = np.full(g, trend0)
    season = np.repeat(season0[:, None], g, axis=1)          # season[t % 7] is the weekday's state
    sse = np.zeros(g)
    bound = CLIP * _robust_scale(y)
    streak = np.zeros(g)                                      # days in a row off by more than the bound, signed
    recent = np.zeros((SHIFT_DAYS, g))                        # the last SHIFT_DAYS one-step errors
    for t in range(2 * SEASON, len(y)):
        s = season[t % SEASON]
        predicted = level + phi * trend + s
        error = y[t] - predicted
        size = np.abs(error)
        sse += np.where(size <= bound, error * error, 2 * bound * size - bound * bound)   # Huber loss
        off = np.sign(error) * (np.abs(error) > bound)
        streak = np.where((off != 0) & (np.sign(streak) == off), streak + off, off)
        recent[t % SHIFT_DAYS] = error
        clipped = np.where(np.abs(streak) >= SHIFT_DAYS, error, np.clip(error, -bound, bound))
        seen = predicted + clipped                                # what the states learn from
        new_level = alpha * (seen - s) + (1 - alpha) * (level + phi * trend)
        # a level shift: the new normal at once (the level moves by the shift's mean size, the trend restarts)
        shifted = np.abs(streak) == SHIFT_DAYS
        new_level = np.where(shifted, level + phi * trend + recent.mean(axis=0), new_level)
        trend = np.where(shifted, 0.0, beta * (new_level - level) + (1 - beta) * phi * trend)
        season[t % SEASON] = gamma * (seen - new_level) + (1 - gamma) * s
        level = new_level
    return sse, level, trend, season


def holt_winters(y: np.ndarray, horizon: int) -> np.ndarray:
    """Fit on ``y`` (at least :data:`MIN_DAYS` days), forecast ``horizon`` days."""
    if len(y) < MIN_DAYS:
        raise ValueError(f"Holt-Winters needs {MIN_DAYS} days, got {len(y)}")
    sse, level, trend, season = _run(y, GRID)
    best = int(np.argmin(sse))
    phi = GRID[3, best]
    steps = np.arange(1, horizon + 1)
    damped = np.cumsum(phi ** steps)
    weekday = (len(y) + steps - 1) % SEASON
    return level[best] + damped * trend[best] + season[weekday, best]
