"""Root conftest: loads every ``tests/support/fixtures_*.py`` as a pytest plugin.

Each real component (kube-apiserver, Prometheus, moto, git, GitHub emulator)
keeps its fixtures in its own ``fixtures_<name>.py`` so they stay independent.
"""
from __future__ import annotations

import pkgutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

pytest_plugins = sorted(
    f"tests.support.{m.name}"
    for m in pkgutil.iter_modules([str(Path(__file__).parent / "support")])
    if m.name.startswith("fixtures_")
)
