"""Pytest fixture for the real renderers (kustomize, helm, tofu).

If a binary is missing or not the pinned version the fixture FAILS (never
skips) with the command that builds it; see :mod:`tests.support.renderers`.
"""
from __future__ import annotations

import pytest

from tests.support.renderers import Renderers, find_renderers


@pytest.fixture(scope="session")
def renderers() -> Renderers:
    """The pinned kustomize, helm and tofu from the shared tools dir."""
    return find_renderers()
