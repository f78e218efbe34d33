"""A real etcd + kube-apiserver on loopback for tests and development.

Modelled on controller-runtime's envtest (pkg/internal/testing/controlplane):
free loopback ports, a temp dir with generated certificates, etcd with
``--unsafe-no-fsync``, and a kube-apiserver with RBAC, client-certificate
authentication, ServiceAccount token signing and the ServiceAccount admission
plugin off (no controller-manager runs, so no ``default`` ServiceAccounts,
no ReplicaSets/Pods from Deployments and no namespace garbage collection).

From Python::

    with ControlPlane() as cp:
        cp.kubectl("get", "namespaces")

From a shell (the processes outlive the command until ``down``)::

    python -m tests.support.controlplane up      # prints export KUBECONFIG=...
    python -m tests.support.controlplane down
"""
from __future__ import annotations

import atexit
import base64
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.support import kubecerts
from tests.support.kubeprocs import (
    Binaries, CommandError, ControlPlaneError, Server, find_binaries, free_port,
    pid_alive, pid_runs, stop_group, wait_for,
)

__all__ = ["ControlPlane", "ControlPlaneError", "CommandError", "main"]

STATE_DIR = Path.home() / ".cache" / "finops-operator" / "controlplane"
SERVICE_CIDR = "10.0.0.0/24"
DIR_PREFIX = "finops-cp-"
OWNER_FILE = "owner.json"


class ControlPlane:
    """etcd + kube-apiserver in a temp dir; ``start()``/``stop()`` or use as a context manager.

    ``owned=True`` (tests): the servers die with this process (PDEATHSIG + atexit).
    ``owned=False`` (the ``up`` command): they keep running until ``down``.
    """

    def __init__(self, *, owned: bool = True, start_timeout: float = 90.0, binaries: Binaries | None = None):
        self.owned = owned
        self.start_timeout = start_timeout
        self.binaries = binaries or find_binaries()
        self.dir: Path | None = None
        self.url = ""
        self.etcd_url = ""
        self.kubeconfig = Path()
        self.version = ""
        self.version_info: dict[str, Any] = {}
        self.certs: kubecerts.CertFiles | None = None
        self._servers: list[Server] = []

    # ---- lifecycle -------------------------------------------------------------------
    def start(self, attempts: int = 3) -> "ControlPlane":
        """Start etcd, then the apiserver; wait for /livez, /readyz and the default namespace."""
        reap_stale_dirs()
        self.dir = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
        (self.dir / OWNER_FILE).write_text(json.dumps({"pid": os.getpid(), "owned": self.owned}))
        if self.owned:
            atexit.register(self.stop)
        self.certs = kubecerts.generate(self.dir / "pki")
        for attempt in range(1, attempts + 1):
            try:
                self._start_servers()
                break
            except ControlPlaneError as exc:
                self._stop_servers()
                shutil.rmtree(self.dir / "etcd", ignore_errors=True)
                if attempt == attempts or "address already in use" not in str(exc):
                    self.stop()
                    raise
        self.kubeconfig = self._write_admin_kubeconfig()
        self.version_info = json.loads(self._get("/version"))
        self.version = str(self.version_info.get("gitVersion", ""))
        return self

    def _start_servers(self) -> None:
        assert self.dir is not None
        etcd = self._etcd()
        self._servers.append(etcd)
        etcd.start()
        wait_for(lambda: b'"true"' in _http_get(self.etcd_url + "/health"), etcd, "healthy", self.start_timeout)
        api = self._apiserver()
        self._servers.append(api)
        api.start()
        for path in ("/livez", "/readyz", "/api/v1/namespaces/default"):
            wait_for(lambda: bool(self._get(path, quiet=True)), api, f"ready ({path})", self.start_timeout)

    def _etcd(self) -> Server:
        assert self.dir is not None
        client, peer = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
        self.etcd_url = client
        argv = [
            str(self.binaries.etcd), "--name=default", f"--data-dir={self.dir / 'etcd'}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}", "--unsafe-no-fsync=true", "--log-level=warn",
        ]
        return Server("etcd", argv, self.dir / "etcd.log", owned=self.owned)

    def _apiserver(self) -> Server:
        assert self.dir is not None and self.certs is not None
        port = free_port()
        self.url = f"https://127.0.0.1:{port}"
        c = self.certs
        argv = [
            str(self.binaries.kube_apiserver),
            f"--etcd-servers={self.etcd_url}", f"--cert-dir={self.dir / 'pki'}",
            f"--tls-cert-file={c.serving_cert}", f"--tls-private-key-file={c.serving_key}",
            f"--client-ca-file={c.ca_cert}",
            f"--service-account-issuer={self.url}/", f"--service-account-key-file={c.sa_public_key}",
            f"--service-account-signing-key-file={c.sa_private_key}",
            "--authorization-mode=Node,RBAC", "--disable-admission-plugins=ServiceAccount",
            f"--service-cluster-ip-range={SERVICE_CIDR}", f"--secure-port={port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            "--allow-privileged=true", "--profiling=false", "--v=1",
        ]
        return Server("kube-apiserver", argv, self.dir / "kube-apiserver.log", owned=self.owned)

    def stop(self) -> None:
        """Kill both servers (their process groups) and remove the temp dir. Idempotent."""
        self._stop_servers()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        if self.owned:
            atexit.unregister(self.stop)

    def _stop_servers(self) -> None:
        for server in reversed(self._servers):  # apiserver first, then etcd
            server.stop()
        self._servers.clear()

    def __enter__(self) -> "ControlPlane":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- HTTP to the apiserver with the admin client certificate ---------------------
    def _ssl(self) -> ssl.SSLContext:
        assert self.certs is not None
        ctx = ssl.create_default_context(cafile=str(self.certs.ca_cert))
        ctx.load_cert_chain(str(self.certs.admin_cert), str(self.certs.admin_key))
        return ctx

    def _get(self, path: str, quiet: bool = False) -> bytes:
        """GET ``path`` as admin; with ``quiet`` return b'' on HTTP errors instead of raising."""
        try:
            return _http_get(self.url + path, self._ssl())
        except urllib.error.HTTPError as exc:
            if quiet:
                return b""
            raise ControlPlaneError(f"GET {self.url}{path}: HTTP {exc.code}: {exc.read()[:500]!r}") from exc

    def api_get(self, path: str, *, timeout: float = 60.0) -> Any:
        """GET ``path`` as admin and decode the JSON answer (a ControlPlaneError on an HTTP error): the
        cheap read for polling, about 3 ms of CPU where a kubectl process takes about 65 ms. A 429 with
        Retry-After (a CRD's storage still initialising) is waited out up to 10 times, as kubectl does."""
        for attempt in range(11):
            try:
                return json.loads(_http_get(self.url + path, self._ssl(), timeout=timeout))
            except urllib.error.HTTPError as exc:
                wait = exc.headers.get("Retry-After") if exc.code == 429 else None
                if wait is None or not wait.isdigit() or attempt == 10:
                    raise ControlPlaneError(f"GET {self.url}{path}: HTTP {exc.code}: {exc.read()[:500]!r}") from exc
                time.sleep(int(wait))
        raise AssertionError("unreachable")

    # ---- kubeconfigs and CLI helpers -------------------------------------------------
    def _kubeconfig(self, path: Path, user: str, creds: dict[str, str], namespace: str = "default") -> Path:
        assert self.certs is not None
        ca = base64.b64encode(self.certs.ca_cert.read_bytes()).decode()
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": user, "preferences": {},
            "clusters": [{"name": "finops-test", "cluster": {"server": self.url, "certificate-authority-data": ca}}],
            "users": [{"name": user, "user": creds}],
            "contexts": [{"name": user, "context": {"cluster": "finops-test", "user": user, "namespace": namespace}}],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path

    def _write_admin_kubeconfig(self) -> Path:
        assert self.dir is not None and self.certs is not None
        b64 = lambda p: base64.b64encode(p.read_bytes()).decode()  # noqa: E731
        creds = {"client-certificate-data": b64(self.certs.admin_cert), "client-key-data": b64(self.certs.admin_key)}
        return self._kubeconfig(self.dir / "kubeconfig", "admin", creds)

    def environ(self, kubeconfig: Path | None = None) -> dict[str, str]:
        """Environment for child processes: KUBECONFIG set, helm's dirs inside the temp dir."""
        assert self.dir is not None, "control plane is not started"
        env = dict(os.environ, KUBECONFIG=str(kubeconfig or self.kubeconfig))
        for var, sub in (("HELM_CACHE_HOME", "cache"), ("HELM_CONFIG_HOME", "config"), ("HELM_DATA_HOME", "data")):
            env[var] = str(self.dir / "helm" / sub)
        return env

    def _run(self, argv: list[str], check: bool, input: str | None, timeout: float, env: dict[str, str]):
        proc = subprocess.run(argv, input=input, text=True, capture_output=True, timeout=timeout, env=env)
        if check and proc.returncode != 0:
            raise CommandError(proc.returncode, argv, proc.stdout, proc.stderr)
        return proc

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,
                kubeconfig: Path | None = None, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Run the machine's kubectl against this control plane (admin unless ``kubeconfig``)."""
        assert self.dir is not None, "control plane is not started"
        cfg = kubeconfig or self.kubeconfig
        argv = [str(self.binaries.kubectl), f"--kubeconfig={cfg}", f"--cache-dir={self.dir / 'kube-cache'}", *args]
        return self._run(argv, check, input, timeout, self.environ(cfg))

    def helm(self, *args: str, check: bool = True, input: str | None = None,
             kubeconfig: Path | None = None, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        """Run the built helm against this control plane (admin unless ``kubeconfig``)."""
        cfg = kubeconfig or self.kubeconfig
        argv = [str(self.binaries.helm), f"--kubeconfig={cfg}", *args]
        return self._run(argv, check, input, timeout, self.environ(cfg))

    def create_service_account_kubeconfig(self, namespace: str, name: str, *, create: bool = False,
                                          duration: str = "24h") -> Path:
        """Kubeconfig authenticating as ServiceAccount ``namespace/name`` via a TokenRequest token.

        With ``create`` the ServiceAccount is created first if missing; otherwise it must
        exist (e.g. created by ``helm install``), which keeps Helm's ownership intact.
        """
        assert self.dir is not None, "control plane is not started"
        exists = self.kubectl("get", "serviceaccount", name, "-n", namespace, check=False).returncode == 0
        if not exists and not create:
            raise ControlPlaneError(
                f"ServiceAccount {namespace}/{name} does not exist: install the chart that creates it "
                "first, or pass create=True"
            )
        if not exists:
            self.kubectl("create", "serviceaccount", name, "-n", namespace)
        token = self.kubectl("create", "token", name, "-n", namespace, f"--duration={duration}").stdout.strip()
        user = f"system:serviceaccount:{namespace}:{name}"
        path = self.dir / "kubeconfigs" / f"sa-{namespace}-{name}.yaml"
        return self._kubeconfig(path, user, {"token": token}, namespace=namespace)

    sa_kubeconfig = create_service_account_kubeconfig

    # ---- state for the up/down commands -----------------------------------------------
    def state(self) -> dict[str, Any]:
        """What ``down`` needs to find and stop a detached control plane."""
        return {
            "dir": str(self.dir), "url": self.url, "kubeconfig": str(self.kubeconfig), "version": self.version,
            "pids": {s.name: s.pid for s in self._servers},
            "binaries": {"etcd": str(self.binaries.etcd), "kube-apiserver": str(self.binaries.kube_apiserver)},
        }


def reap_stale_dirs(base: Path | None = None) -> list[Path]:
    """Remove temp dirs of owned control planes whose test process died (e.g. SIGKILL).

    Their servers are already gone (PDEATHSIG); only the files remain. Detached
    (``up``) control planes and dirs of live owners are left alone.
    """
    removed = []
    for d in Path(base or tempfile.gettempdir()).glob(DIR_PREFIX + "*"):
        try:
            owner = json.loads((d / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if owner.get("owned") and not pid_alive(int(owner.get("pid", 0))):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


def _http_get(url: str, ctx: ssl.SSLContext | None = None, timeout: float = 5) -> bytes:
    with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:  # noqa: S310 (loopback only)
        return resp.read()


# ---- command line ----------------------------------------------------------------------
def _up(state_file: Path) -> int:
    if state_file.exists():
        print(f"a control plane is already recorded in {state_file}; run `down` first", file=sys.stderr)
        return 1
    started = time.monotonic()
    cp = ControlPlane(owned=False).start()
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(cp.state(), indent=2))
    print(f"# kube-apiserver {cp.version} at {cp.url} (up in {time.monotonic() - started:.1f}s)")
    print(f"# logs in {cp.dir}; stop with: python -m tests.support.controlplane down")
    print(f"export KUBECONFIG={cp.kubeconfig}")
    return 0


def _down(state_file: Path) -> int:
    if not state_file.exists():
        print(f"no control plane recorded in {state_file}", file=sys.stderr)
        return 0
    state = json.loads(state_file.read_text())
    for name in ("kube-apiserver", "etcd"):
        pid = state["pids"].get(name)
        if pid and pid_runs(pid, state["binaries"][name]):  # never signal a reused pid
            stop_group(pid, 15.0)
    shutil.rmtree(state["dir"], ignore_errors=True)
    state_file.unlink()
    print(f"stopped the control plane at {state['url']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``up`` | ``down`` | ``status``; FINOPS_CONTROLPLANE_STATE overrides the state file."""
    args = sys.argv[1:] if argv is None else argv
    state_file = Path(os.environ.get("FINOPS_CONTROLPLANE_STATE") or STATE_DIR / "state.json")
    command = args[0] if args else ""
    try:
        if command == "up":
            return _up(state_file)
        if command == "down":
            return _down(state_file)
        if command == "status":
            print(state_file.read_text() if state_file.exists() else "down")
            return 0
    except ControlPlaneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("usage: python -m tests.support.controlplane up|down|status", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
