"""The test control plane is a real, RBAC-enforcing Kubernetes API at the pinned version."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.support.controlplane import ControlPlane, ControlPlaneError, reap_stale_dirs
from tests.support.fixtures_operator import wait_established
from tests.support.kubeprocs import ROOT, Binaries, find_binaries, pid_alive, pinned_versions, tools_dir

pytestmark = pytest.mark.integration


def test_apiserver_and_tools_report_pinned_versions(kube: ControlPlane) -> None:
    pins = pinned_versions()
    assert kube.version == pins["kube-apiserver"]
    server = json.loads(kube.kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert server["gitVersion"] == pins["kube-apiserver"]
    assert (server["major"], server["minor"]) == ("1", pins["kube-apiserver"].split(".")[1])
    etcd = subprocess.run([str(kube.binaries.etcd), "--version"], capture_output=True, text=True, check=True)
    assert f"etcd Version: {pins['etcd'].lstrip('v')}" in etcd.stdout
    assert kube.helm("version", "--short").stdout.strip().split("+")[0] == pins["helm"]


def test_missing_or_stale_binaries_say_how_to_build_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real_bin = tools_dir() / "bin"
    monkeypatch.setenv("FINOPS_TOOLS_DIR", str(tmp_path))
    (tmp_path / "bin").mkdir()
    for tool in ("etcd", "kube-apiserver"):
        (tmp_path / "bin" / tool).symlink_to(real_bin / tool)
        (tmp_path / "bin" / f".{tool}.version").write_text("v0.0.1\n")
    with pytest.raises(ControlPlaneError) as err:
        ControlPlane()
    message = str(err.value)
    assert f"{tmp_path}/bin/helm is missing" in message
    assert f"{tmp_path}/bin/etcd is not the pinned {pinned_versions()['etcd']}" in message
    assert "run tests/tools/install-kube-tools.sh" in message


def test_an_apiserver_that_dies_is_reported_with_its_log(tmp_path: Path) -> None:
    real = find_binaries()
    fake = tmp_path / "kube-apiserver"
    fake.write_text("#!/bin/sh\necho 'E0101 boom: --etcd-servers must be set' >&2\nexit 3\n")
    fake.chmod(0o755)
    plane = ControlPlane(binaries=Binaries(real.etcd, fake, real.helm, real.kubectl), start_timeout=20)
    with pytest.raises(ControlPlaneError) as err:
        plane.start()
    message = str(err.value)
    assert "kube-apiserver died before ready (/livez); it exited with code 3" in message
    assert "E0101 boom: --etcd-servers must be set" in message  # the log tail
    assert plane.dir is None and not plane._servers  # etcd stopped, temp dir removed


def test_kubectl_lists_namespaces(kube: ControlPlane, kube_namespace: str) -> None:
    names = kube.kubectl("get", "namespaces", "-o", "name").stdout.split()
    assert {"namespace/default", "namespace/kube-system", f"namespace/{kube_namespace}"} <= set(names)
    assert kube.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout == "admin"


def _until(check, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_rbac_denies_until_a_role_is_granted(kube: ControlPlane, kube_namespace: str) -> None:
    ns = kube_namespace
    sa_config = kube.sa_kubeconfig(ns, "reader", create=True)
    denied = kube.kubectl("get", "pods", "-n", ns, kubeconfig=sa_config, check=False)
    assert denied.returncode != 0
    assert f'User "system:serviceaccount:{ns}:reader" cannot list resource "pods"' in denied.stderr

    kube.kubectl("create", "role", "pod-reader", "-n", ns, "--verb=get,list,watch", "--resource=pods")
    kube.kubectl("create", "rolebinding", "reader", "-n", ns, "--role=pod-reader", f"--serviceaccount={ns}:reader")
    assert _until(lambda: kube.kubectl("get", "pods", "-n", ns, kubeconfig=sa_config, check=False).returncode == 0)
    # The grant is exactly what the Role says: no Secrets, nothing in other namespaces.
    secrets = kube.kubectl("get", "secrets", "-n", ns, kubeconfig=sa_config, check=False)
    assert secrets.returncode != 0 and 'cannot list resource "secrets"' in secrets.stderr
    other = kube.kubectl("get", "pods", "-n", "default", kubeconfig=sa_config, check=False)
    assert other.returncode != 0 and 'in the namespace "default"' in other.stderr


def test_service_account_kubeconfig_needs_an_existing_account(kube: ControlPlane, kube_namespace: str) -> None:
    with pytest.raises(Exception, match=f"ServiceAccount {kube_namespace}/ghost does not exist"):
        kube.sa_kubeconfig(kube_namespace, "ghost")


CRD = textwrap.dedent("""\
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata: {name: widgets.cptest.finops.dev}
    spec:
      group: cptest.finops.dev
      scope: Namespaced
      names: {plural: widgets, singular: widget, kind: Widget}
      versions:
        - name: v1
          served: true
          storage: true
          schema:
            openAPIV3Schema:
              type: object
              properties:
                spec:
                  type: object
                  required: [size]
                  properties:
                    size: {type: integer, minimum: 1, maximum: 10}
                    color: {type: string, enum: [red, blue]}
    """)


def _widget(ns: str, name: str, size: int, color: str) -> str:
    return json.dumps({"apiVersion": "cptest.finops.dev/v1", "kind": "Widget",
                       "metadata": {"name": name, "namespace": ns}, "spec": {"size": size, "color": color}})


def test_crd_becomes_established_and_validates(kube: ControlPlane, kube_namespace: str, tmp_path: Path) -> None:
    crd_file = tmp_path / "crd.yaml"
    crd_file.write_text(CRD)
    kube.kubectl("apply", "-f", str(crd_file))
    try:
        wait_established(kube, ["widgets.cptest.finops.dev"])
        ok = kube.kubectl("apply", "-f", "-", input=_widget(kube_namespace, "good", 3, "red"), check=False)
        # Discovery of a brand-new group can lag a moment behind Established.
        if ok.returncode != 0 and "no matches for kind" in ok.stderr:
            time.sleep(2)
            ok = kube.kubectl("apply", "-f", "-", input=_widget(kube_namespace, "good", 3, "red"))
        assert ok.returncode == 0, ok.stderr
        bad = kube.kubectl("apply", "-f", "-", input=_widget(kube_namespace, "bad", 0, "green"), check=False)
        assert bad.returncode != 0
        assert "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1" in bad.stderr
        assert 'spec.color: Unsupported value: "green": supported values: "red", "blue"' in bad.stderr
        names = kube.kubectl("get", "widgets", "-n", kube_namespace, "-o", "name").stdout.split()
        assert names == ["widget.cptest.finops.dev/good"]
    finally:
        kube.kubectl("delete", "-f", str(crd_file), "--wait=false", check=False)


CHART_TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-greeting
data:
  greeting: {{ .Values.greeting | quote }}
  kubeVersion: {{ .Capabilities.KubeVersion.Version | quote }}
"""


def _chart(root: Path) -> Path:
    chart = root / "hello"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: hello\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("greeting: hello\n")
    (chart / "templates" / "configmap.yaml").write_text(CHART_TEMPLATE)
    return chart


def test_helm_templates_and_installs_a_chart(kube: ControlPlane, kube_namespace: str, tmp_path: Path) -> None:
    chart = _chart(tmp_path)
    kube.helm("lint", str(chart))
    rendered = kube.helm("template", "demo", str(chart), "--set", "greeting=hi").stdout
    assert "name: demo-greeting" in rendered and 'greeting: "hi"' in rendered
    assert 'kubeVersion: "v1.32.0"' in rendered  # helm built against client-go v0.32 (ldflags)

    kube.helm("install", "demo", str(chart), "-n", kube_namespace, "--wait", "--timeout=60s")
    data = json.loads(kube.kubectl("get", "configmap", "demo-greeting", "-n", kube_namespace, "-o", "json").stdout)
    assert data["data"]["greeting"] == "hello"
    assert data["data"]["kubeVersion"] == kube.version  # install sees the live apiserver's version
    assert "deployed" in kube.helm("status", "demo", "-n", kube_namespace).stdout


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tests.support.controlplane", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def test_cli_up_and_down(tmp_path: Path) -> None:
    env = dict(os.environ, FINOPS_CONTROLPLANE_STATE=str(tmp_path / "state.json"))
    up = _cli("up", env=env)
    assert up.returncode == 0, up.stderr
    state = json.loads((tmp_path / "state.json").read_text())
    try:
        kubeconfig = up.stdout.strip().splitlines()[-1].removeprefix("export KUBECONFIG=")
        assert kubeconfig == state["kubeconfig"]
        got = subprocess.run([str(find_binaries().kubectl), f"--kubeconfig={kubeconfig}", "get", "ns", "default"],
                             capture_output=True, text=True, timeout=60)
        assert got.returncode == 0, got.stderr
        assert all(pid_alive(pid) for pid in state["pids"].values())
    finally:
        down = _cli("down", env=env)
    assert down.returncode == 0, down.stderr
    assert not any(pid_alive(pid) for pid in state["pids"].values())
    assert not Path(state["dir"]).exists() and not (tmp_path / "state.json").exists()


CRASHER = """\
import json, os, signal, sys
from tests.support.controlplane import ControlPlane
cp = ControlPlane().start()
print(json.dumps({"dir": str(cp.dir), "pids": [s.pid for s in cp._servers]}), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_owner_leaves_no_orphans() -> None:
    crashed = subprocess.run([sys.executable, "-c", CRASHER], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    info = json.loads(crashed.stdout)
    assert len(info["pids"]) == 2
    assert _until(lambda: not any(pid_alive(pid) for pid in info["pids"]), 10), "servers outlived their owner"
    assert Path(info["dir"]) in reap_stale_dirs()
    assert not Path(info["dir"]).exists()
