"""Process plumbing for the test control plane: binaries, ports, children, waiting.

Each server runs in its own process group (``start_new_session``) with its
output in a log file. Owned children also get ``PR_SET_PDEATHSIG`` so that even
a SIGKILLed test run leaves no etcd or kube-apiserver behind; ``atexit`` in
:mod:`tests.support.controlplane` covers the ordinary exits.
"""
from __future__ import annotations

import ctypes
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
VERSIONS_ENV = ROOT / "tests" / "tools" / "versions.env"
ETCD_GOMOD = ROOT / "tests" / "tools" / "kube" / "etcd" / "go.mod"
INSTALL_HINT = "run tests/tools/install-kube-tools.sh (builds etcd, kube-apiserver and helm from Go modules)"


class ControlPlaneError(RuntimeError):
    """The test control plane could not be built, started, used or stopped."""


class CommandError(subprocess.CalledProcessError):
    """A kubectl/helm call failed; the message carries the command and its stderr."""

    def __str__(self) -> str:
        cmd = " ".join(str(c) for c in self.cmd)
        err = (self.stderr or "").strip() or (self.output or "").strip()
        return f"`{cmd}` exited with {self.returncode}: {err}"


def tools_dir() -> Path:
    """Where install-kube-tools.sh puts its binaries (FINOPS_TOOLS_DIR overrides)."""
    default = Path.home() / ".cache" / "finops-operator" / "tools"
    return Path(os.environ.get("FINOPS_TOOLS_DIR") or default)


def read_versions_env() -> dict[str, str]:
    """The KEY=value pins of tests/tools/versions.env (the one place tool versions are written)."""
    pins: dict[str, str] = {}
    for n, line in enumerate(VERSIONS_ENV.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(\S+)", line)
        if m is None:
            raise ControlPlaneError(f"{VERSIONS_ENV}:{n}: {line!r} is not KEY=value (no quotes, spaces or inline comments)")
        pins[m.group(1)] = m.group(2)
    return pins


def pinned_versions() -> dict[str, str]:
    """The versions the install script pins: {'kube-apiserver': 'v1.32.N', 'helm': ..., 'etcd': ...}."""
    pins = read_versions_env()
    found = {
        "kube-apiserver": pins.get("K8S_VERSION"),
        "helm": pins.get("HELM_VERSION"),
        "etcd": _etcd_pin(),
    }
    missing = [k for k, v in found.items() if v is None]
    if missing:
        raise ControlPlaneError(f"{VERSIONS_ENV} / {ETCD_GOMOD}: cannot find the pinned version of {missing}")
    return {k: v for k, v in found.items() if v}


def _etcd_pin() -> str | None:
    m = re.search(r"^require go\.etcd\.io/etcd/server/v3 (\S+)", ETCD_GOMOD.read_text(), re.M)
    return m.group(1) if m else None


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of the built tools plus the machine's kubectl."""

    etcd: Path
    kube_apiserver: Path
    helm: Path
    kubectl: Path


def find_binaries() -> Binaries:
    """Locate the tools and check their stamps name the pinned versions; raise with the fix."""
    bin_dir = tools_dir() / "bin"
    problems = []
    for tool, version in pinned_versions().items():
        path, stamp = bin_dir / tool, bin_dir / f".{tool}.version"
        if not os.access(path, os.X_OK):
            problems.append(f"{path} is missing")
        elif not stamp.exists() or stamp.read_text().strip() != version:
            problems.append(f"{path} is not the pinned {version}")
    kubectl = _which("kubectl")
    if kubectl is None:
        problems.append("kubectl is not on PATH (install kubectl v1.31-v1.33)")
    if problems:
        raise ControlPlaneError("control-plane binaries not ready: " + "; ".join(problems) + f" -- {INSTALL_HINT}")
    return Binaries(bin_dir / "etcd", bin_dir / "kube-apiserver", bin_dir / "helm", Path(kubectl or ""))


def _which(name: str) -> str | None:
    for d in os.environ.get("PATH", "").split(os.pathsep):
        p = Path(d) / name
        if d and os.access(p, os.X_OK) and p.is_file():
            return str(p)
    return None


def free_port() -> int:
    """A currently unused loopback TCP port (a race is possible; callers retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def tail(path: Path, lines: int = 40) -> str:
    """Last lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text[-lines:])


class Server:
    """One long-running child process in its own process group, logging to a file."""

    def __init__(self, name: str, argv: list[str], log: Path, *, owned: bool = True):
        self.name, self.argv, self.log = name, argv, log
        self.owned = owned
        self.pid: int | None = None
        self._popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Spawn the process; with ``owned`` it dies when this Python process dies."""
        with open(self.log, "ab") as out:
            self._popen = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_die_with_parent if self.owned else None,
            )
        self.pid = self._popen.pid

    def exited(self) -> int | None:
        """Exit code if the process has ended, else None."""
        if self._popen is not None:
            return self._popen.poll()
        return None if self.pid and pid_alive(self.pid) else -1

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``timeout`` seconds."""
        if self.pid is None:
            return
        stop_group(self.pid, timeout, self._popen)
        self.pid, self._popen = None, None

    def failure(self, what: str) -> ControlPlaneError:
        """An error naming what failed, the exit state and the log tail."""
        code = self.exited()
        state = f"exited with code {code}" if code is not None else "is still running"
        return ControlPlaneError(
            f"{self.name} {what}; it {state}. Command: {' '.join(self.argv)}\n"
            f"--- last lines of {self.log} ---\n{tail(self.log)}"
        )


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def pid_runs(pid: int, needle: str) -> bool:
    """True if ``pid`` is alive and its command line mentions ``needle`` (guards against pid reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return pid_alive(pid) and needle in cmdline


def stop_group(pid: int, timeout: float, popen: subprocess.Popen | None = None) -> None:
    """Terminate the process group led by ``pid``; escalate to SIGKILL; reap if we are the parent."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if popen is not None and popen.poll() is not None:
                break
            if popen is None and not pid_alive(pid):
                break
            time.sleep(0.05)
        else:
            continue
        break
    if popen is not None:
        try:
            popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def wait_for(check: Callable[[], bool], server: Server, what: str, timeout: float) -> None:
    """Poll ``check`` until true; fail early if ``server`` dies, with its log in the message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.exited() is not None:
            raise server.failure(f"died before {what}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise server.failure(f"did not become {what} within {timeout:.0f}s")
