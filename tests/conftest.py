"""Root conftest: loads every ``tests/support/fixtures_*.py`` as a pytest plugin.

Each real component (kube-apiserver, Prometheus, moto, git, GitHub emulator)
keeps its fixtures in its own ``fixtures_<name>.py`` so they stay independent.
"""
from __future__ import annotations

import gzip
import hashlib
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


def pytest_make_parametrize_id(config, val, argname):
    """A gzip blob's test id names its content, not its bytes: ``gzip.compress`` stamps the current
    time into the header, so the default id (the escaped bytes) changed between two collections and
    pytest-xdist's workers, which each collect, disagreed on the test names and refused to run."""
    if isinstance(val, bytes) and val[:2] == b"\x1f\x8b":
        try:
            content = gzip.decompress(val)
        except (OSError, EOFError):
            return None
        return f"gzip-{hashlib.sha256(content).hexdigest()[:12]}"
    return None
