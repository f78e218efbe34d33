"""The ``github`` fixture: the loopback GitHub emulator over a real bare remote."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.github_emulator import GitHubEmulator


@pytest.fixture
def github(bare_remote: Path) -> Iterator[GitHubEmulator]:
    """Emulator for ``acme/gitops`` backed by ``bare_remote``.

    Exposes ``.api_url``, ``.git_url`` (bare repo path), ``.git_http_url`` (smart HTTP with
    token auth), ``.token``, ``.readonly_token``, ``.merge(n)``, ``.close(n)``, ``.pulls()``,
    ``.fail_next(n, status)``, ``.rate_limit_next(...)``, ``.calls(method, path_regex)``.
    """
    emu = GitHubEmulator(bare_remote, "acme/gitops")
    try:
        emu.start()
    except OSError as exc:  # pragma: no cover - environment problem, not a product bug
        pytest.fail(f"cannot start the GitHub emulator on 127.0.0.1: {exc}")
    yield emu
    emu.stop()
    assert not emu.unhandled, f"requests the emulator does not implement (GitHub would 404): {emu.unhandled}"
