"""Insight generators: the built-ins and the ones other packages add through a Python entry point.

A generator is a callable ``(data: InsightData) -> list[Insight]``. A package adds one by declaring an
entry point in the group :data:`GROUP` (its name is the generator's name), e.g. in its ``pyproject.toml``::

    [project.entry-points."finops_operator.insights"]
    "acme.gpu-idle" = "acme_insights:gpu_idle"

and ``pip install``-ing it next to the operator (examples/insights_plugin is a runnable one). A plugin that
fails to load, raises, or returns something else than a list of Insight is logged and skipped: it never stops
the other generators nor the operator.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import entry_points

from ..models.insights import Insight
from . import business, cfo, engineer, finance
from .data import InsightData

Generator = Callable[[InsightData], list[Insight]]
GROUP = "finops_operator.insights"
log = logging.getLogger(__name__)

BUILTINS: dict[str, Generator] = {**cfo.GENERATORS, **engineer.GENERATORS, **finance.GENERATORS,
                                  **business.GENERATORS}


def plugins() -> dict[str, Generator]:
    """Generators declared in the entry point group :data:`GROUP` (a built-in's name is not overridden)."""
    found: dict[str, Generator] = {}
    for ep in entry_points(group=GROUP):
        if ep.name in BUILTINS:
            log.warning("insight plugin %s (%s) is skipped: a built-in generator has that name", ep.name, ep.value)
            continue
        try:
            fn = ep.load()
        except Exception as exc:           # a broken plugin is skipped, never fatal
            log.warning("insight plugin %s (%s) failed to load and is skipped: %s: %s", ep.name, ep.value,
                        type(exc).__name__, exc)
            continue
        if not callable(fn):
            log.warning("insight plugin %s (%s) is not callable and is skipped", ep.name, ep.value)
            continue
        found[ep.name] = fn
    return found


def generators() -> dict[str, Generator]:
    """Every generator by name: built-ins, then plugins."""
    return {**BUILTINS, **plugins()}


def run(name: str, fn: Generator, data: InsightData) -> list[Insight]:
    """One generator's insights; an exception or a wrong result is logged and gives none."""
    try:
        result = fn(data)
    except Exception as exc:               # noqa: BLE001 - one generator never stops the others
        log.warning("insight generator %s failed and is skipped: %s: %s", name, type(exc).__name__, exc)
        return []
    if not isinstance(result, list) or not all(isinstance(i, Insight) for i in result):
        log.warning("insight generator %s returned %s, not a list of Insight; skipped", name, type(result).__name__)
        return []
    return result
