"""The real renderers that prove GitOps edits: kustomize, helm and tofu.

They live where ``make tools`` builds them (``tests/tools/install-render-tools.sh``
for kustomize and tofu, ``install-kube-tools.sh`` for helm), pinned in
``tests/tools/versions.env``. :func:`find_renderers` checks each binary and its
stamp against the pin and raises :class:`RendererMissing` naming every problem
and the command that fixes it: a test that needs a renderer fails, never skips.
"""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.kubeprocs import VERSIONS_ENV, CommandError, read_versions_env, tools_dir

GITOPS_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gitops"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
INSTALL_HINT = (
    "run `make tools` (tests/tools/install-render-tools.sh builds kustomize and tofu, "
    "tests/tools/install-kube-tools.sh builds helm)"
)
# tool -> its KEY in tests/tools/versions.env
PIN_KEYS = {"kustomize": "KUSTOMIZE_VERSION", "helm": "HELM_VERSION", "tofu": "TOFU_VERSION"}


class RendererMissing(RuntimeError):
    """A renderer binary is absent or not the pinned version; the message says how to build it."""


@dataclass(frozen=True)
class Renderers:
    """Absolute paths of the pinned kustomize, helm and tofu, with thin runners."""

    kustomize: Path
    helm: Path
    tofu: Path

    def kustomize_build(self, path: Path, *, enable_helm: bool = False) -> str:
        """``kustomize build PATH`` (with the pinned helm for ``helmCharts`` when asked); the YAML."""
        args = [str(self.kustomize), "build", str(path)]
        if enable_helm:
            args += ["--enable-helm", "--helm-command", str(self.helm)]
        return run(args).stdout

    def helm_template(
        self,
        chart: Path,
        *,
        release: str = "release",
        namespace: str | None = None,
        values: Sequence[Path] = (),
        set_values: Sequence[str] = (),
    ) -> str:
        """``helm template RELEASE CHART -f V...`` of a local chart; the YAML."""
        args = [str(self.helm), "template", release, str(chart)]
        if namespace:
            args += ["--namespace", namespace]
        for v in values:
            args += ["--values", str(v)]
        for s in set_values:
            args += ["--set", s]
        return run(args).stdout

    def tofu_fmt_check(self, path: Path) -> None:
        """``tofu fmt -check -recursive -diff PATH``; raises CommandError listing the badly formatted files."""
        run([str(self.tofu), "fmt", "-check", "-recursive", "-diff", "-no-color", str(path)])


def find_renderers() -> Renderers:
    """Locate kustomize, helm and tofu; check their stamps name the pins; raise with the fix."""
    bin_dir = tools_dir() / "bin"
    pins = read_versions_env()
    problems = []
    for tool, key in PIN_KEYS.items():
        version = pins.get(key)
        path, stamp = bin_dir / tool, bin_dir / f".{tool}.version"
        if version is None:
            problems.append(f"{VERSIONS_ENV} has no {key}")
        elif not (path.is_file() and os.access(path, os.X_OK)):
            problems.append(f"{path} is missing")
        elif not stamp.exists() or stamp.read_text().strip() != version:
            problems.append(f"{path} is not the pinned {version}")
    if problems:
        raise RendererMissing("renderers not ready: " + "; ".join(problems) + f" -- {INSTALL_HINT}")
    return Renderers(bin_dir / "kustomize", bin_dir / "helm", bin_dir / "tofu")


def run(args: Sequence[str], *, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run a renderer without a terminal or telemetry; raise CommandError with its stderr on failure.

    tofu only formats here, so it gets an empty CLI configuration: a
    TF_CLI_CONFIG_FILE naming a missing file makes it print a warning on stdout.
    """
    env = dict(os.environ, CHECKPOINT_DISABLE="1", TF_IN_AUTOMATION="1", NO_COLOR="1", TF_CLI_CONFIG_FILE=os.devnull)
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise CommandError(done.returncode, list(args), done.stdout, done.stderr)
    return done


def objects(rendered: str) -> list[dict[str, Any]]:
    """The objects of a multi-document YAML stream, empty documents dropped."""
    return [d for d in yaml.safe_load_all(rendered) if isinstance(d, dict)]


def find_object(docs: Iterable[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one object of this kind and name; AssertionError listing what was rendered otherwise."""
    docs = list(docs)
    hits = [d for d in docs if d.get("kind") == kind and d.get("metadata", {}).get("name") == name]
    if len(hits) != 1:
        seen = sorted(f"{d.get('kind')}/{d.get('metadata', {}).get('name')}" for d in docs)
        raise AssertionError(f"expected one {kind}/{name}, found {len(hits)} among {seen}")
    return hits[0]


def container_resources(docs: Iterable[dict[str, Any]], kind: str, name: str) -> dict[str, dict[str, Any]]:
    """{container name: its resources} of a workload's pod template (init containers excluded)."""
    pod = find_object(docs, kind, name)["spec"]["template"]["spec"]
    return {c["name"]: c.get("resources", {}) for c in pod["containers"]}


def workload_resources(docs: Iterable[dict[str, Any]]) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """{(kind, name): {container: resources}} of every workload in a rendering."""
    docs = list(docs)
    return {
        (d["kind"], d["metadata"]["name"]): container_resources(docs, d["kind"], d["metadata"]["name"])
        for d in docs
        if d.get("kind") in WORKLOAD_KINDS
    }


def res(req_cpu: str | None, req_mem: str, lim_cpu: str | None, lim_mem: str) -> dict[str, Any]:
    """A container's resources as rendered, for expectations (a None CPU is left out)."""
    requests = {"cpu": req_cpu, "memory": req_mem} if req_cpu else {"memory": req_mem}
    limits = {"cpu": lim_cpu, "memory": lim_mem} if lim_cpu else {"memory": lim_mem}
    return {"requests": requests, "limits": limits}
