"""The operator image, built here from the repository's Dockerfile, runs ``finops``.

``tests/tools/build-image.sh`` builds it without a registry (a Debian base made by mmdebstrap,
the tools the test installers built, ``buildah bud --isolation chroot``; cached, a few seconds
when nothing changed) and tags it as the chart references it. Each test runs the image's own
``finops`` in a buildah container: as the chart's user, from the image's venv, with the image's
git, helm, kustomize and tofu. If buildah cannot build or run it, the tests fail with the reason.
"""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.support.fixtures_wheel import ROOT

# A cold build (Debian rootfs, dependencies from PyPI) takes ~5 min here; give it room past the
# suite's 900 s default, which covers the module fixture's setup too.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]
SCRIPT = ROOT / "tests" / "tools" / "build-image.sh"
CHART = ROOT / "charts" / "finops-operator"


def _run(argv: list[str], timeout: float, **kw) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"{' '.join(argv)}: {exc}", pytrace=False)


@dataclass(frozen=True)
class Image:
    ref: str    # the tag the chart references (shared: another checkout may re-point it)
    id: str     # this build, what the tests run


@pytest.fixture(scope="module")
def image() -> Image:
    """The image, built (or found up to date) by the project's build script."""
    # Cold: the Debian rootfs and the image (the tools are built by `make tools` before).
    proc = _run([str(SCRIPT)], timeout=1700, cwd=ROOT)
    if proc.returncode != 0 or not proc.stdout.strip():
        pytest.fail(f"{SCRIPT.relative_to(ROOT)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}", pytrace=False)
    ref, image_id = proc.stdout.strip().splitlines()[-1].split()
    return Image(ref, image_id)


@pytest.fixture
def container(image):
    """A buildah working container of the image, removed afterwards."""
    proc = _run(["buildah", "from", "--quiet", "--pull-never", image.id], timeout=120)
    assert proc.returncode == 0, f"buildah from {image}: {proc.stderr}"
    name = proc.stdout.strip()
    yield name
    _run(["buildah", "rm", name], timeout=120)


def in_container(container: str, *argv: str, volume: Path | None = None, timeout: float = 300):
    """Run ARGV in the container as the image configures it (user, env, workdir)."""
    mount = ["--volume", f"{volume}:/work"] if volume else []
    return _run(["buildah", "run", "--isolation", "chroot", *mount, container, "--", *argv], timeout=timeout)


def test_the_image_is_the_charts_and_runs_as_its_user(image):
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert image.ref == f"{values['image']['repository']}:{chart['appVersion']}"
    proc = _run(["buildah", "inspect", "--type", "image", image.id], timeout=60)
    assert proc.returncode == 0, proc.stderr
    config = json.loads(proc.stdout)["OCIv1"]["config"]
    uid = str(values["podSecurityContext"]["runAsUser"])
    assert config["User"].split(":")[0] == uid != "0", config["User"]
    assert config["Entrypoint"] == ["finops"], config
    assert config["Labels"]["org.opencontainers.image.version"] == chart["appVersion"], config["Labels"]


def test_help_runs_in_the_image(container):
    proc = in_container(container, "finops", "--help")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("usage: finops"), proc.stdout
    assert all(cmd in proc.stdout for cmd in ("demo", "scan", "simulate", "run")), proc.stdout
    where = in_container(container, "sh", "-c", "id -u; for t in finops git helm kustomize tofu; do command -v $t; done")
    assert where.returncode == 0, where.stderr
    uid, finops, *tools = where.stdout.split()
    assert (uid, finops) == ("65532", "/opt/finops/bin/finops"), where.stdout
    assert tools == ["/usr/bin/git", "/usr/local/bin/helm", "/usr/local/bin/kustomize", "/usr/local/bin/tofu"], tools


def test_demo_in_the_image_writes_its_branches_proven_by_the_images_tools(container, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)    # the image's user (65532) writes into the mounted directory
    proc = in_container(container, "finops", "demo", "--workdir", "/work/demo", volume=out, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    scan = json.loads((out / "demo" / "scan.json").read_text())
    repo = out / "demo" / "gitops"
    branches = _run(["git", "-c", f"safe.directory={repo}", "branch", "--list", "finops/*",
                     "--format=%(refname:short)"], timeout=60, cwd=repo)
    assert branches.returncode == 0, branches.stderr
    want = {cs["branch"] for cs in scan["changeSets"]}
    assert len(want) >= 5 and set(branches.stdout.split()) == want, (branches.stdout, want)
    assert scan["errors"] == [], scan["errors"]
    proofs = [line for cs in scan["changeSets"] for line in cs["proof"]]
    assert not [line for line in proofs if "FAILED" in line or "refused" in line], proofs
    # The proofs ran the image's helm (the search chart) and tofu (fmt -check).
    assert any(line.startswith("rendered apps/search/chart (release search") for line in proofs), proofs
    assert any("tofu fmt -check passes" in line for line in proofs), proofs
    orphan = next(cs for cs in scan["changeSets"] if cs["branch"] == "finops/orphan-volumes")
    assert "infra/terraform/eks/finops_snapshots.tf" in orphan["files"], orphan
