"""A bad-file corpus for `finops scan`: every hostile or broken input ends in exit 2, fast and small.

Each case is generated into ``tmp_path`` at test time (nothing big is committed) and run
through the real ``finops`` console script of the venv, under an address-space limit, with
``--apply`` so that "nothing written" means something. Every case must:

- exit 2 with no traceback, naming the file (and the field, where there is one) on stderr;
- finish within ``MAX_SECONDS`` and within ``MAX_ADDRESS_SPACE`` bytes of memory;
- leave the GitOps repository as it was (no branch, no change to the working tree) and
  write no file into the working directory.

A control case (the same scan on clean inputs) must succeed under the same limits, so the
limits themselves cannot be what makes a case fail.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from finops_operator import safeio

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
FINOPS = Path(sys.executable).parent / "finops"
MAX_SECONDS = 20.0
MAX_ADDRESS_SPACE = 1536 * 1024 * 1024
BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8))


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MAX_ADDRESS_SPACE, MAX_ADDRESS_SPACE))


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@dataclass
class Work:
    """A working directory with a clean snapshot, policy and GitOps checkout; cases spoil one of them."""

    dir: Path
    snapshot: Path
    repo: Path
    policy: Path
    outside: Path

    def meta(self) -> dict:
        with np.load(self.snapshot) as npz:
            return json.loads(npz["meta"].tobytes())

    def write_snapshot(self, name: str, *, meta: dict | None = None, **arrays: np.ndarray) -> Path:
        with np.load(self.snapshot) as npz:
            content = {k: npz[k] for k in npz.files}
        if meta is not None:
            content["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        content |= arrays
        path = self.dir / name
        np.savez_compressed(path, **content)
        return path


@pytest.fixture(scope="module")
def clean_snapshot(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("snapshot")
    proc = subprocess.run([str(FINOPS), "simulate", "--out", "clean.npz"], cwd=where, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return where / "clean.npz"


@pytest.fixture
def work(tmp_path: Path, clean_snapshot: Path) -> Work:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "examples" / "gitops", repo)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(clean_snapshot, run / "snap.npz")
    (run / "policy.yaml").write_text("mode: PullRequest\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n")
    return Work(run, run / "snap.npz", repo, run / "policy.yaml", outside)


def _state(work: Work) -> tuple[str, str, list[str]]:
    return (_git(work.repo, "for-each-ref", "--format=%(refname) %(objectname)"),
            _git(work.repo, "status", "--porcelain", "--ignored"),
            sorted(str(p.relative_to(work.dir)) for p in work.dir.rglob("*")))


def finops_scan(work: Work, *args: str) -> subprocess.CompletedProcess:
    argv = [str(FINOPS), "scan", "--apply", *args]
    defaults = {"--snapshot": "snap.npz", "--repo": str(work.repo), "--policy": "policy.yaml"}
    for flag, value in defaults.items():
        if flag not in args:
            argv += [flag, value]
    return subprocess.run(argv, cwd=work.dir, capture_output=True, text=True, timeout=120, preexec_fn=_limits,
                          env={**os.environ, "COLUMNS": "200"})


# --------------------------------------------------------------------------- the corpus
# Each case spoils one input and returns (extra scan arguments, strings stderr must contain).

Case = Callable[[Work], tuple[list[str], list[str]]]


def repo_file(rel: str, content: bytes | str, reason: str, *, commit: bool = True) -> Case:
    def make(work: Work) -> tuple[list[str], list[str]]:
        path = work.repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        if commit:
            _git(work.repo, "add", "-A")
            _git(work.repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", f"add {rel}")
        return [], [rel, reason]
    return make


def repo_symlink(rel: str, target: Callable[[Work], str]) -> Case:
    def make(work: Work) -> tuple[list[str], list[str]]:
        link = work.repo / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target(work))
        return [], [rel, "outside the repository"]
    return make


def repo_fifo(work: Work) -> tuple[list[str], list[str]]:
    os.mkfifo(work.repo / "apps" / "pipe.yaml")
    return [], ["apps/pipe.yaml", "not a regular file"]


def huge_yaml(work: Work) -> tuple[list[str], list[str]]:
    line = "# " + "x" * 97 + "\n"
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\n"
    text += line * ((safeio.MAX_MANIFEST_BYTES - len(text)) // len(line) + 1)
    (work.repo / "apps" / "huge.yaml").write_text(text)
    return [], ["apps/huge.yaml", f"limit of {safeio.MAX_MANIFEST_BYTES:,} bytes"]


def sparse_yaml(work: Work) -> tuple[list[str], list[str]]:
    with open(work.repo / "apps" / "sparse.yaml", "wb") as fh:
        fh.truncate(100 * 1024 * 1024)                 # 100 MB of zeros without using the disk
    return [], ["apps/sparse.yaml", "over the limit"]


def huge_tf(work: Work) -> tuple[list[str], list[str]]:
    block = 'resource "null_resource" "r%d" {\n  triggers = { a = "b" }\n}\n'
    text, i = "", 0
    while len(text) <= safeio.MAX_TERRAFORM_BYTES:
        text += "".join(block % (i + j) for j in range(1000))
        i += 1000
    (work.repo / "infra" / "terraform" / "eks" / "huge.tf").write_text(text)
    return [], ["infra/terraform/eks/huge.tf", f"limit of {safeio.MAX_TERRAFORM_BYTES:,} bytes"]


def policy(content: bytes | str, *expect: str) -> Case:
    def make(work: Work) -> tuple[list[str], list[str]]:
        work.policy.write_bytes(content.encode() if isinstance(content, str) else content)
        return [], ["policy.yaml", *expect]
    return make


def policy_dir(work: Work) -> tuple[list[str], list[str]]:
    (work.dir / "policy.d").mkdir()
    return ["--policy", "policy.d"], ["policy.d", "directory"]


def policy_huge(work: Work) -> tuple[list[str], list[str]]:
    work.policy.write_text("mode: PullRequest\n" + "#" * safeio.MAX_POLICY_BYTES + "\n")
    return [], ["policy.yaml", f"limit of {safeio.MAX_POLICY_BYTES:,} bytes"]


def snapshot_meta(edit: Callable[[dict], None], *expect: str) -> Case:
    def make(work: Work) -> tuple[list[str], list[str]]:
        meta = work.meta()
        edit(meta)
        work.write_snapshot("bad.npz", meta=meta)
        return ["--snapshot", "bad.npz"], ["bad.npz", *expect]
    return make


def snapshot_array(name: str, value: float) -> Case:
    def make(work: Work) -> tuple[list[str], list[str]]:
        with np.load(work.snapshot) as npz:
            arr = npz[name].copy()
        arr.flat[7] = value
        work.write_snapshot("bad.npz", **{name: arr})
        return ["--snapshot", "bad.npz"], ["bad.npz", f": {name}:"]
    return make


def _set(path: list, value) -> Callable[[dict], None]:
    def edit(meta: dict) -> None:
        node = meta
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


def snapshot_lying_header(work: Work) -> tuple[list[str], list[str]]:
    """A .npy header that claims 10^12 floats in a member of a few bytes (allocation bomb)."""
    path = work.dir / "bomb.npz"
    with np.load(work.snapshot) as npz, zipfile.ZipFile(path, "w") as out:
        for name in npz.files:
            with out.open(f"{name}.npy", "w") as member:
                if name == "cpu":
                    header = {"descr": "<f4", "fortran_order": False, "shape": (1_000_000, 1_000_000)}
                    np.lib.format.write_array_header_1_0(member, header)
                    member.write(b"\0" * 64)
                else:
                    np.lib.format.write_array(member, npz[name], allow_pickle=False)
    return ["--snapshot", "bomb.npz"], ["bomb.npz", ": cpu:", "header claims"]


def snapshot_zip_bomb(work: Work) -> tuple[list[str], list[str]]:
    """A member that inflates to just over the array limit (a few MB on disk)."""
    path = work.dir / "zipbomb.npz"
    size = safeio.MAX_SNAPSHOT_ARRAY_BYTES + 4096
    with np.load(work.snapshot) as npz, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        for name in npz.files:
            with out.open(f"{name}.npy", "w", force_zip64=True) as member:
                if name == "memory":
                    header = {"descr": "<f4", "fortran_order": False, "shape": (size // 4,)}
                    np.lib.format.write_array_header_1_0(member, header)
                    chunk = b"\0" * (64 * 1024 * 1024)
                    for _ in range(size // len(chunk) + 1):
                        member.write(chunk)
                else:
                    np.lib.format.write_array(member, npz[name], allow_pickle=False)
    return ["--snapshot", "zipbomb.npz"], ["zipbomb.npz", ": memory:", "at most"]


def snapshot_sparse(work: Work) -> tuple[list[str], list[str]]:
    with open(work.dir / "sparse.npz", "wb") as fh:
        fh.truncate(safeio.MAX_SNAPSHOT_ARRAY_BYTES + safeio.MAX_SNAPSHOT_META_BYTES + 1)
    return ["--snapshot", "sparse.npz"], ["sparse.npz", "over the limit"]


def snapshot_deep_meta(work: Work) -> tuple[list[str], list[str]]:
    meta = work.meta()
    raw = json.dumps(meta)[:-1] + ', "deep": ' + "[" * 200_000 + "]" * 200_000 + "}"
    with np.load(work.snapshot) as npz:
        content = {k: npz[k] for k in npz.files}
    content["meta"] = np.frombuffer(raw.encode(), dtype=np.uint8)
    np.savez_compressed(work.dir / "deep.npz", **content)
    return ["--snapshot", "deep.npz"], ["deep.npz", ": meta:"]


def snapshot_special(path: str) -> Case:
    def make(work: Work) -> tuple[list[str], list[str]]:
        if path == "fifo":
            os.mkfifo(work.dir / "fifo.npz")
            return ["--snapshot", "fifo.npz"], ["fifo.npz", "not a regular file"]
        return ["--snapshot", path], [path, "not a regular file"]
    return make


def repo_arg(kind: str) -> Case:
    def make(work: Work) -> tuple[list[str], list[str]]:
        if kind == "missing":
            return ["--repo", "nowhere"], ["--repo", "nowhere", "does not exist"]
        if kind == "file":
            return ["--repo", "policy.yaml"], ["--repo", "not a directory"]
        if kind == "not-git":
            return ["--repo", str(work.outside)], ["--repo", "not a git repository"]
        return ["--repo", str(work.repo / "apps")], ["--repo", "not its top directory"]
    return make


BINARY = bytes(range(256)) * 64
CASES: dict[str, Case] = {
    # the GitOps repository
    "yaml-billion-laughs": repo_file("apps/bomb.yaml", BOMB, "aliases expand"),
    "yaml-nested-20000": repo_file("apps/deep.yaml", "- " * 20_000 + "x\n", "nests deeper"),
    "yaml-nested-150": repo_file("apps/deep150.yaml", "- " * 150 + "x\n", "nests deeper"),
    "yaml-recursive-anchor": repo_file("apps/loop.yaml", "a: &a [1, *a]\n", "recursive anchor"),
    "yaml-flow-nested-20000": repo_file("apps/flow.yaml", "a: " + "[" * 20_000 + "]" * 20_000 + "\n", "nests deeper"),
    "yaml-not-utf8": repo_file("apps/latin1.yaml", "metadata:\n  name: caf\xe9\n".encode("latin-1"), "not UTF-8"),
    "yaml-nul": repo_file("apps/nul.yaml", "metadata:\n  name: a\0b\n", "binary"),
    "yaml-binary": repo_file("apps/blob.yaml", BINARY, "not UTF-8"),
    "helm-template-symlink": repo_symlink("apps/search/chart/templates/zero.yaml", lambda w: "/dev/zero"),
    "tf-binary": repo_file("infra/terraform/eks/blob.tf", BINARY, "not UTF-8"),
    "tf-not-utf8": repo_file("infra/terraform/eks/latin1.tf", '# caf\xe9\nlocals {}\n'.encode("latin-1"), "not UTF-8"),
    "yaml-huge": huge_yaml,
    "yaml-sparse-100mb": sparse_yaml,
    "tf-huge": huge_tf,
    "symlink-dev-zero": repo_symlink("apps/zero.yaml", lambda w: "/dev/zero"),
    "symlink-etc-passwd": repo_symlink("apps/passwd.yaml", lambda w: "/etc/passwd"),
    "symlink-outside-dir": repo_symlink("apps/secret.yaml", lambda w: str(w.outside / "secret.yaml")),
    "symlink-relative-escape": repo_symlink("apps/up.yaml", lambda w: "../../outside/secret.yaml"),
    "symlink-tf-dev-zero": repo_symlink("infra/terraform/eks/zero.tf", lambda w: "/dev/zero"),
    "fifo-in-repo": repo_fifo,
    # the policy file
    "policy-not-utf8": policy(b"mode: PullRequest\n# \xff\xfe\n", "not UTF-8"),
    "policy-binary": policy(BINARY, "policy.yaml"),
    "policy-nested-20000": policy("guardrails: " + "[" * 20_000 + "]" * 20_000 + "\n", "nests deeper"),
    "policy-billion-laughs": policy(BOMB, "aliases"),
    "policy-huge": policy_huge,
    "policy-directory": policy_dir,
    "policy-dev-zero": lambda w: (["--policy", "/dev/zero"], ["/dev/zero", "not a regular file"]),
    "policy-unknown-key": policy("mode: PullRequest\nguardrial: {}\n", "guardrial", "unknown key"),
    "policy-unknown-spec-key": policy("kind: FinOpsPolicy\nspec:\n  schedulle: '0 6 * * *'\n", "spec.schedulle"),
    "policy-unknown-time-zone": policy("detectors:\n  cpu:\n    timeWindow: {timeZone: Mars/Olympus_Mons}\n",
                                       "detectors.cpu.timeWindow.timeZone", "Mars/Olympus_Mons"),
    "policy-unknown-change-window-zone": policy("guardrails:\n  changeWindows: [{timeZone: Nowhere/City}]\n",
                                                "guardrails.changeWindows[0].timeZone"),
    # the snapshot
    "snapshot-inf-cpu-usage": snapshot_array("cpu", np.inf),
    "snapshot-inf-memory-usage": snapshot_array("memory", np.inf),
    "snapshot-inf-request": snapshot_meta(_set(["workloads", 0, "containers", 1, "resources", "cpu_request"],
                                               float("inf")), "meta.workloads[0].containers[1].resources.cpu_request"),
    "snapshot-nan-allocatable": snapshot_meta(_set(["nodes", 0, "allocatable_cpu"], float("nan")),
                                              "meta.nodes[0].allocatable_cpu"),
    "snapshot-negative-allocatable": snapshot_meta(_set(["nodes", 1, "allocatable_memory"], -1),
                                                   "meta.nodes[1].allocatable_memory"),
    "snapshot-negative-replicas": snapshot_meta(_set(["workloads", 0, "replicas"], -3), "meta.workloads[0].replicas"),
    "snapshot-negative-volume": snapshot_meta(_set(["volumes", 0, "size_gib"], -500), "meta.volumes[0].size_gib"),
    "snapshot-huge-number": snapshot_meta(_set(["nodes", 0, "allocatable_memory"], 10**400),
                                          "meta.nodes[0].allocatable_memory"),
    "snapshot-source-traversal": snapshot_meta(
        _set(["workloads", 0, "annotations"], {"finops.dev/source": "../../../../etc/passwd"}),
        "meta.workloads[0].annotations['finops.dev/source']", "'..'"),
    "snapshot-source-absolute": snapshot_meta(
        _set(["workloads", 1, "annotations"], {"finops.dev/source": "/dev/zero#a.b"}),
        "meta.workloads[1].annotations['finops.dev/source']", "absolute"),
    "snapshot-volume-tag-traversal": snapshot_meta(
        _set(["volumes", 0, "tags"], {"finops.dev/source": "infra/../../../etc"}),
        "meta.volumes[0].tags['finops.dev/source']"),
    "snapshot-lying-npy-header": snapshot_lying_header,
    "snapshot-zip-bomb": snapshot_zip_bomb,
    "snapshot-sparse-huge": snapshot_sparse,
    "snapshot-deep-meta": snapshot_deep_meta,
    "snapshot-dev-zero": snapshot_special("/dev/zero"),
    "snapshot-fifo": snapshot_special("fifo"),
    # --repo
    "repo-missing": repo_arg("missing"),
    "repo-is-a-file": repo_arg("file"),
    "repo-not-git": repo_arg("not-git"),
    "repo-subdirectory": repo_arg("subdirectory"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_file_exits_2_naming_it_fast_small_and_writing_nothing(work: Work, name: str) -> None:
    args, expected = CASES[name](work)
    before = _state(work)
    started = time.monotonic()
    proc = finops_scan(work, *args)
    elapsed = time.monotonic() - started
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, f"{name}: exit {proc.returncode}\n{output[-3000:]}"
    assert "Traceback" not in output and "MemoryError" not in output, output[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, f"{name}: expected one error line on stderr:\n{proc.stderr[-2000:]}"
    for text in expected:
        assert text in errors[0], f"{name}: {text!r} not in the error line:\n{errors[0]}"
    assert elapsed < MAX_SECONDS, f"{name} took {elapsed:.1f}s"
    assert _state(work) == before, f"{name}: something was written"


def test_the_same_scan_on_clean_files_succeeds_under_the_same_limits(work: Work) -> None:
    proc = finops_scan(work)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "finops/rightsize-payments" in _git(work.repo, "branch", "--list", "finops/*")


@pytest.mark.parametrize("content,expect", [
    (BOMB, "aliases expand"),
    (b"days: 1\n\xff\n", "not UTF-8"),
    ("workloads: " + "[" * 5000 + "]" * 5000 + "\n", "nests deeper"),
])
def test_a_bad_scenario_file_exits_2_and_writes_no_snapshot(tmp_path: Path, content, expect) -> None:
    (tmp_path / "scenario.yaml").write_bytes(content.encode() if isinstance(content, str) else content)
    proc = subprocess.run([str(FINOPS), "simulate", "--scenario", "scenario.yaml", "--out", "s.npz"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, preexec_fn=_limits)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "scenario.yaml" in proc.stderr and expect in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scenario.yaml"]
