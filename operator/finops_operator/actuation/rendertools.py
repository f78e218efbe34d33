"""The real renderers that prove edits: find them, run them bounded and without credentials.

    tools = RenderTools.from_environment()       # reads FINOPS_KUSTOMIZE / FINOPS_HELM / FINOPS_TOFU once
    tools.kustomize_build(directory, enable_helm=True)    -> rendered YAML
    tools.helm_template(chart, release=..., values=[...]) -> rendered YAML
    tools.tofu_fmt(text)                                  -> the text as ``tofu fmt`` formats it

A binary is found through its variable, else ``PATH``, else the test tools
directory (``$FINOPS_TOOLS_DIR/bin``, default ``~/.cache/finops-operator/tools/bin``,
where ``make tools`` builds the pinned versions). A missing one raises
:class:`ToolMissing` naming the tool and how to install it: a change that needs
it is refused, never committed unproven.

Every run has a timeout, a cap on its output, a scratch ``HOME`` and an
environment of its own (no cloud, Git or cluster credentials reach it), no
standard input but what is given, and the renderers' defaults for file access
(kustomize's ``LoadRestrictionsRootOnly``). Charts are local directories; helm
never fetches.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ProofError, ToolMissing

TIMEOUT_SECONDS = 60.0
MAX_OUTPUT_BYTES = 16 * 2**20
MAX_ERROR_CHARS = 600

# tool -> (variable naming its binary, how to install it)
TOOLS: dict[str, tuple[str, str]] = {
    "kustomize": ("FINOPS_KUSTOMIZE", "`tests/tools/install-render-tools.sh kustomize` (or `make tools`)"),
    "helm": ("FINOPS_HELM", "`tests/tools/install-kube-tools.sh helm` (or `make tools`)"),
    "tofu": ("FINOPS_TOFU", "`tests/tools/install-render-tools.sh tofu` (or `make tools`)"),
}


def default_tools_dir(env: Mapping[str, str]) -> Path:
    base = env.get("FINOPS_TOOLS_DIR") or str(Path(env.get("HOME") or Path.home()) / ".cache" / "finops-operator" / "tools")
    return Path(base) / "bin"


def trim(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """One line of at most ``limit`` characters: a tool's stderr as a reason."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


@dataclass
class RenderTools:
    """Resolves and runs kustomize, helm and tofu."""

    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float = TIMEOUT_SECONDS
    max_output: int = MAX_OUTPUT_BYTES
    _found: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def from_environment(cls, **kwargs) -> "RenderTools":
        """Tools located through this process's environment (read here, once)."""
        keys = [v for v, _ in TOOLS.values()] + ["PATH", "HOME", "FINOPS_TOOLS_DIR"]
        return cls({k: os.environ[k] for k in keys if k in os.environ}, **kwargs)

    def find(self, tool: str) -> Path:
        """The binary of ``tool``; ToolMissing naming the variable, PATH and the install command."""
        if tool in self._found:
            return self._found[tool]
        variable, install = TOOLS[tool]
        explicit = self.env.get(variable)
        if explicit:
            path = Path(explicit)
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise ToolMissing(f"{variable}={explicit} is not an executable file; point it at the {tool} binary",
                                  source=variable)
        else:
            on_path = shutil.which(tool, path=self.env.get("PATH", ""))
            fallback = default_tools_dir(self.env) / tool
            if on_path:
                path = Path(on_path)
            elif fallback.is_file() and os.access(fallback, os.X_OK):
                path = fallback
            else:
                raise ToolMissing(
                    f"{tool} is needed to prove this change by rendering but was not found (not in {variable}, "
                    f"not on PATH, not in {fallback.parent}); install it with {install}, or set {variable}")
        self._found[tool] = path
        return path

    # ------------------------------------------------------------------ runners

    def kustomize_build(self, directory: Path, *, enable_helm: bool = False) -> str:
        args = [str(self.find("kustomize")), "build", str(directory)]
        if enable_helm:
            args += ["--enable-helm", "--helm-command", str(self.find("helm"))]
        return self.run(args, cwd=directory)

    def helm_template(self, chart: Path, *, release: str, namespace: str | None = None,
                      values: Sequence[Path] = (), set_values: Sequence[str] = ()) -> str:
        args = [str(self.find("helm")), "template", release, str(chart)]
        if namespace:
            args += ["--namespace", namespace]
        for path in values:
            args += ["--values", str(path)]
        for item in set_values:
            args += ["--set", item]
        return self.run(args, cwd=chart)

    def tofu_fmt(self, text: str, *, cwd: Path) -> str:
        """``tofu fmt -`` of ``text``: how tofu would format it (ProofError with tofu's message if it cannot)."""
        return self.run([str(self.find("tofu")), "fmt", "-no-color", "-"], cwd=cwd, stdin=text)

    def run(self, args: Sequence[str], *, cwd: Path, stdin: str | None = None) -> str:
        """Run a renderer; its stdout, or ProofError with the command and its trimmed stderr."""
        name = Path(args[0]).name
        with tempfile.TemporaryDirectory(prefix="finops-render-") as scratch, \
                tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                done = subprocess.run(list(args), cwd=cwd, env=_clean_env(Path(scratch)), stdout=out, stderr=err,
                                      input=stdin.encode() if stdin is not None else None,
                                      stdin=None if stdin is not None else subprocess.DEVNULL,
                                      timeout=self.timeout)
            except subprocess.TimeoutExpired:
                raise ProofError(f"`{name} {' '.join(args[1:3])}` ran longer than {self.timeout:.0f}s; refused",
                                 source=name) from None
            except OSError as exc:
                raise ProofError(f"could not run {args[0]}: {exc}", source=name) from None
            size = out.seek(0, os.SEEK_END)
            if size > self.max_output:
                raise ProofError(f"`{name}` printed {size} bytes, more than the {self.max_output} allowed; refused",
                                 source=name)
            out.seek(0)
            err.seek(0)
            stdout = out.read().decode(errors="replace")
            stderr = err.read(64 * 1024).decode(errors="replace")
        if done.returncode != 0:
            raise ProofError(f"`{name} {' '.join(args[1:2])}` failed (exit {done.returncode}): "
                             f"{trim(stderr or stdout) or 'no message'}", source=name)
        return stdout


def _clean_env(scratch: Path) -> dict[str, str]:
    """An environment with no credentials: a scratch HOME and helm dirs, a fixed PATH, no telemetry."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(scratch),
        "TMPDIR": str(scratch),
        "HELM_CACHE_HOME": str(scratch / "helm-cache"),
        "HELM_CONFIG_HOME": str(scratch / "helm-config"),
        "HELM_DATA_HOME": str(scratch / "helm-data"),
        "KUBECONFIG": str(scratch / "no-kubeconfig"),
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
        "NO_COLOR": "1",
        "LANG": "C.UTF-8",
    }
