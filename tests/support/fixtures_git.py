"""Real git repositories for tests: a bare remote seeded with a small GitOps tree, and clones.

Helpers here use the git CLI directly (not the code under test) so a bug in
``actuation/git.py`` cannot hide itself.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from finops_operator.models import (
    Change,
    ChangeSet,
    EditKind,
    EditTarget,
    FileEdit,
    Finding,
    FindingType,
    Target,
    TargetKind,
    WorkloadRef,
)

GITOPS_TREE: dict[str, str] = {
    "README.md": "# gitops\n\nManifests for the demo cluster.\n",
    "apps/payments/deployment.yaml": (
        "apiVersion: apps/v1\n"
        "kind: Deployment\n"
        "metadata:\n"
        "  name: api\n"
        "  namespace: payments\n"
        "spec:\n"
        "  replicas: 3\n"
        "  template:\n"
        "    spec:\n"
        "      containers:\n"
        "        - name: api\n"
        "          image: registry.local/payments/api:1.4.2\n"
        "          resources:\n"
        "            requests:\n"
        "              cpu: \"1\"        # sized in 2023\n"
        "              memory: 1Gi\n"
        "            limits:\n"
        "              memory: 2Gi\n"
    ),
    "apps/checkout/values.yaml": (
        "replicaCount: 2\n"
        "resources:\n"
        "  requests:\n"
        "    cpu: 500m\n"
        "    memory: 512Mi\n"
    ),
    "terraform/nodes.tf": (
        "resource \"aws_eks_node_group\" \"general\" {\n"
        "  cluster_name = \"demo\"\n"
        "  scaling_config {\n"
        "    desired_size = 4\n"
        "    min_size     = 2\n"
        "    max_size     = 6\n"
        "  }\n"
        "}\n"
    ),
}

TEST_ENV = {"GIT_AUTHOR_NAME": "Test Human", "GIT_AUTHOR_EMAIL": "human@example.test",
            "GIT_COMMITTER_NAME": "Test Human", "GIT_COMMITTER_EMAIL": "human@example.test",
            "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}


def git(*args: str, cwd: Path | None = None, input: bytes | None = None,
        env: dict[str, str] | None = None, check: bool = True) -> str:
    """Run git for a test; raise with stderr on failure."""
    proc = subprocess.run(["git", *args], check=False, cwd=cwd, input=input, capture_output=True, timeout=60,
                          env={**os.environ, **TEST_ENV, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr.decode()}")
    return proc.stdout.decode().strip()


def commit_files(bare: Path, branch: str, files: dict[str, str | None], message: str,
                 parent: str | None = None) -> str:
    """Commit ``files`` (path -> content, None deletes) onto ``branch`` of a bare repo, like a human push."""
    ref = f"refs/heads/{branch}"
    old = parent or git("rev-parse", "--verify", "--quiet", ref, cwd=bare, check=False) or None
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        if old:
            git("read-tree", old, cwd=bare, env=env)
        for path, content in files.items():
            if content is None:
                git("update-index", "--force-remove", "--", path, cwd=bare, env=env)
                continue
            blob = git("hash-object", "-w", "--stdin", cwd=bare, input=content.encode())
            git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", cwd=bare, env=env)
        tree = git("write-tree", cwd=bare, env=env)
    args = ["commit-tree", tree, "-m", message] + (["-p", old] if old else [])
    sha = git(*args, cwd=bare)
    git("update-ref", ref, sha, cwd=bare)
    return sha


def merge_into(bare: Path, head: str, base_branch: str, message: str,
               env: dict[str, str] | None = None) -> str:
    """A real merge commit of ``head`` into ``base_branch`` inside a bare repo (``git merge-tree``).

    Raises AssertionError on conflicts, like a merge button that is greyed out.
    """
    base_ref = f"refs/heads/{base_branch}"
    base_sha = git("rev-parse", base_ref, cwd=bare)
    head_sha = git("rev-parse", f"{head}^{{commit}}", cwd=bare)
    proc = subprocess.run(["git", "merge-tree", "--write-tree", base_sha, head_sha], check=False, cwd=bare,
                          capture_output=True, env={**os.environ, **TEST_ENV})
    if proc.returncode != 0:
        raise AssertionError(f"merge conflict merging {head} into {base_branch}: {proc.stdout.decode()}")
    tree = proc.stdout.decode().split()[0]
    sha = git("commit-tree", tree, "-p", base_sha, "-p", head_sha, "-m", message, cwd=bare, env=env)
    git("update-ref", base_ref, sha, base_sha, cwd=bare)
    return sha


def make_bare_remote(root: Path, name: str = "gitops.git", files: dict[str, str] | None = None) -> Path:
    """Create a bare repository with ``files`` committed on ``main`` and HEAD -> main."""
    bare = root / name
    bare.mkdir(parents=True)
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    commit_files(bare, "main", dict(files or GITOPS_TREE), "Initial GitOps tree")
    return bare


def read_blob(bare: Path, ref: str, path: str) -> str | None:
    out = subprocess.run(["git", "cat-file", "blob", f"{ref}:{path}"], check=False, cwd=bare, capture_output=True)
    return out.stdout.decode() if out.returncode == 0 else None


def ref_sha(bare: Path, ref: str) -> str | None:
    return git("rev-parse", "--verify", "--quiet", ref, cwd=bare, check=False) or None


@pytest.fixture
def bare_remote(tmp_path: Path) -> Path:
    """A bare repository (the "remote") seeded with a small GitOps tree on ``main``."""
    if shutil.which("git") is None:
        pytest.fail("git is not installed: apt-get install git (the git tests need the real binary)")
    return make_bare_remote(tmp_path / "remote")


@pytest.fixture
def git_clone(bare_remote: Path, tmp_path: Path) -> Path:
    """A plain clone of ``bare_remote`` (made with the git CLI)."""
    dest = tmp_path / "clone"
    git("clone", "--quiet", str(bare_remote), str(dest))
    return dest


def make_change_set(cs_id: str, edits: dict[str, tuple[str | None, str | None]], *,
                    title: str | None = None, cpu_after: str = "400m", body: str = "",
                    savings: float = 42.0) -> ChangeSet:
    """A ChangeSet with one CPU finding and the given edits (path -> (before, after))."""
    ref = WorkloadRef("Deployment", "payments", "api")
    finding = Finding(detector="cpu-rightsizing", type=FindingType.RIGHTSIZE_CPU,
                      target=Target(TargetKind.CONTAINER, "api", "payments", ref),
                      title=f"Right-size payments/api CPU 1 -> {cpu_after}",
                      changes=[Change("resources.requests.cpu", "1", cpu_after)],
                      monthly_savings=savings, confidence=0.9, risk=0.1,
                      edit=EditTarget(EditKind.CONTAINER_RESOURCES))
    return ChangeSet(id=cs_id, title=title or f"finops: right-size {cs_id}", findings=[finding],
                     edits=[FileEdit(p, b, a) for p, (b, a) in edits.items()], body=body)


def cpu_edit(cpu_after: str = "400m") -> dict[str, tuple[str | None, str | None]]:
    """An edit of the seeded payments deployment: requests.cpu "1" -> ``cpu_after``."""
    path = "apps/payments/deployment.yaml"
    before = GITOPS_TREE[path]
    return {path: (before, before.replace('cpu: "1"', f"cpu: {cpu_after}"))}
