"""The package as a user gets it: a wheel, installed into a fresh venv outside the checkout.

``finops_wheel`` (session): the wheel built by ``pip wheel --no-deps`` from a copy of the
checkout's files (tracked and untracked-but-not-ignored, symlinks kept), so nothing
ignored or left over in the work tree can leak into it.
``wheel_venv`` (session): a new venv in a temp dir with that wheel (and its dependencies
from the package index) installed; ``.run(...)`` runs its ``finops`` with cwd outside the
checkout and no PYTHONPATH, so only the installed package can be imported.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a child that must not see the checkout or its venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONNOUSERSITE": "1", **extra}


def _run(argv: list[str], cwd: Path, timeout: float) -> None:
    proc = subprocess.run(argv, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}",
                    pytrace=False)


def copy_checkout(dest: Path) -> Path:
    """The files git would commit (tracked + untracked-not-ignored), symlinks kept as symlinks."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src, dst = ROOT / rel, dest / rel
        if not src.is_symlink() and not src.exists():   # deleted in the work tree, not yet committed
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            dst.symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, dst)
    return dest


@pytest.fixture(scope="session")
def finops_wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = copy_checkout(tmp / "src")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(src)],
         cwd=tmp, timeout=600)
    (wheel,) = (tmp / "dist").glob("finops_operator-*.whl")
    return wheel


@dataclass
class WheelVenv:
    root: Path

    def bin(self, name: str) -> Path:
        return self.root / "bin" / name

    def run(self, *args: str, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None):
        return subprocess.run([str(self.bin("finops")), *args], cwd=cwd, env=env or clean_env(),
                              capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def wheel_venv(finops_wheel, tmp_path_factory) -> WheelVenv:
    tmp = tmp_path_factory.mktemp("wheel-venv")
    venv = WheelVenv(tmp / "venv")
    _run([sys.executable, "-m", "venv", str(venv.root)], cwd=tmp, timeout=120)
    _run([str(venv.bin("python")), "-m", "pip", "install", "-q", str(finops_wheel)], cwd=tmp, timeout=900)
    return venv
