"""safeio: nothing outside the repository is read, only regular files, bounded, UTF-8, YAML within budget;
and the editors that read repository files (locate, manifests, terraform) go through it."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from finops_operator import safeio
from finops_operator.actuation.edits import plan_edits
from finops_operator.actuation.locate import RepoIndex
from finops_operator.errors import ConfigError, MissingFile, UnreadableFile
from finops_operator.settings import load_policy, settings_from_document
from tests.support.fixtures_edits import container_finding, make_repo, volume_finding

CPU = "resources.requests.cpu"
DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    spec:
      containers:
        - name: app
          resources: {requests: {cpu: 500m}}
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"apps/web.yaml": DEPLOY})


@pytest.mark.parametrize("rel,problem", [
    ("../etc/passwd", "'..'"), ("apps/../../x", "'..'"), ("/etc/passwd", "absolute"), ("", "empty"),
    ("a\\b", "backslash"), ("a\0b", "NUL"),
])
def test_paths_that_leave_the_repository_are_refused_before_any_filesystem_access(repo, rel, problem):
    assert problem in safeio.relpath_problem(rel)
    with pytest.raises(UnreadableFile, match=problem):
        safeio.read_text_bounded(repo, rel)


def test_a_symlink_inside_the_repository_is_followed_and_one_leaving_it_is_not(repo, tmp_path):
    (repo / "apps" / "alias.yaml").symlink_to("web.yaml")
    assert safeio.read_text_bounded(repo, "apps/alias.yaml") == DEPLOY
    (tmp_path / "secret.yaml").write_text("kind: Secret\n")
    (repo / "apps" / "out.yaml").symlink_to(tmp_path / "secret.yaml")
    (repo / "linked").symlink_to(tmp_path, target_is_directory=True)
    for rel in ("apps/out.yaml", "linked/secret.yaml"):
        with pytest.raises(UnreadableFile, match="outside the repository"):
            safeio.read_text_bounded(repo, rel)


def test_devices_and_fifos_are_refused_without_blocking(repo):
    os.mkfifo(repo / "apps" / "pipe.yaml")
    done = threading.Event()
    errors: list[Exception] = []

    def read() -> None:
        try:
            safeio.read_text_bounded(repo, "apps/pipe.yaml")
        except UnreadableFile as exc:
            errors.append(exc)
        done.set()
    threading.Thread(target=read, daemon=True).start()
    assert done.wait(5), "reading a FIFO blocked"
    assert "not a regular file" in str(errors[0])
    with pytest.raises(UnreadableFile, match="not a regular file"):
        safeio.read_user_file(Path("/dev/zero"), 1024)


def test_size_limit_is_exact_and_named(repo):
    (repo / "ok.yaml").write_bytes(b"a" * 100)
    assert len(safeio.read_text_bounded(repo, "ok.yaml", 100)) == 100
    with pytest.raises(UnreadableFile, match="101 bytes, over the limit of 100 bytes") as err:
        (repo / "big.yaml").write_bytes(b"a" * 101)
        safeio.read_text_bounded(repo, "big.yaml", 100)
    assert err.value.source == "big.yaml"
    assert safeio.repo_limit("x.tf") == safeio.MAX_TERRAFORM_BYTES < safeio.repo_limit("x.yaml")


def test_text_must_be_utf8_without_nul(repo):
    (repo / "l1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (repo / "nul.yaml").write_bytes(b"a: b\0\n")
    (repo / "bom.yaml").write_bytes("\ufeffa: b\n".encode())
    with pytest.raises(UnreadableFile, match=r"not UTF-8 text \(byte 0xe9 at offset 9\)"):
        safeio.read_text_bounded(repo, "l1.yaml")
    with pytest.raises(UnreadableFile, match="binary"):
        safeio.read_text_bounded(repo, "nul.yaml")
    assert safeio.read_text_bounded(repo, "bom.yaml") == "a: b\n"
    with pytest.raises(MissingFile):
        safeio.read_text_bounded(repo, "none.yaml")


def _laughs(levels: int, width: int = 10) -> str:
    text = f"l0: &l0 [{', '.join(['x'] * width)}]\n"
    return text + "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]\n" for i in range(1, levels))


def test_alias_budget_allows_normal_anchors_and_refuses_bombs():
    assert safeio.load_yaml("base: &b {cpu: 1}\na: *b\nc: *b\n", "ok.yaml")[0]["c"] == {"cpu": 1}
    assert safeio.load_yaml(_laughs(4), "small.yaml")        # 10^4 nodes from aliases: fine
    started = time.monotonic()
    with pytest.raises(UnreadableFile, match="aliases expand"):
        safeio.load_yaml(_laughs(9), "bomb.yaml")            # 10^9
    assert time.monotonic() - started < 1


def test_depth_limit_and_recursive_anchors():
    safeio.load_yaml("- " * (safeio.MAX_YAML_DEPTH - 1) + "x\n", "ok.yaml")
    for text in ("- " * (safeio.MAX_YAML_DEPTH + 1) + "x\n", "[" * 5000 + "]" * 5000):
        with pytest.raises(UnreadableFile, match="nests deeper"):
            safeio.load_yaml(text, "deep.yaml")
    with pytest.raises(UnreadableFile, match="recursive anchor"):
        safeio.load_yaml("a: &a [1, *a]\n", "loop.yaml")


# --------------------------------------------------------------------------- the editors use it


def test_a_traversal_hint_from_a_live_workload_skips_the_finding_and_reads_nothing(repo):
    for hint in ("../../../../etc/passwd", "/dev/zero", "apps/../../outside.yaml#a.b"):
        f = container_finding("Deployment", "shop", "web", "app", (CPU, "500m", "200m"), hint=hint)
        result = plan_edits(repo, [f])
        assert result.edits == [] and "fix the finops.dev/source annotation" in result.skipped[f.id], hint


def test_a_hint_through_a_symlink_out_of_the_repository_is_refused(repo, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "web.yaml").write_text(DEPLOY)
    (repo / "ext").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    f = container_finding("Deployment", "shop", "web", "app", (CPU, "500m", "200m"), hint="ext/web.yaml")
    assert "outside the repository" in plan_edits(repo, [f]).skipped[f.id]


def test_the_index_lists_refused_files_and_still_edits_the_rest(repo):
    (repo / "apps" / "zero.yaml").symlink_to("/dev/zero")
    (repo / "apps" / "bomb.yaml").write_text(_laughs(9))
    (repo / "infra").mkdir()
    (repo / "infra" / "blob.tf").write_bytes(bytes(range(256)))
    index = RepoIndex(repo)
    assert sorted(e.source for e in index.check_all()) == ["apps/bomb.yaml", "apps/zero.yaml", "infra/blob.tf"]
    f = container_finding("Deployment", "shop", "web", "app", (CPU, "500m", "200m"))
    assert [e.path for e in plan_edits(repo, [f]).edits] == ["apps/web.yaml"]


def test_a_volume_tag_that_leaves_the_repository_is_refused(repo):
    f = volume_finding("vol-1", name_tag="data", hint="../../etc")
    assert "fix the volume's finops.dev/source tag" in plan_edits(repo, [f]).skipped[f.id]


# --------------------------------------------------------------------------- policy settings


@pytest.mark.parametrize("doc,field", [
    ({"detectors": {"cpu": {"timeWindow": {"timeZone": "Mars/Base"}}}}, "detectors.cpu.timeWindow.timeZone"),
    ({"detectors": {"memory": {"timeWindow": {"timeZone": "../../etc/passwd"}}}}, "detectors.memory.timeWindow.timeZone"),
    ({"guardrails": {"changeWindows": [{"timeZone": "Nowhere"}]}}, "guardrails.changeWindows[0].timeZone"),
])
def test_every_time_zone_field_is_validated_by_the_one_rule(doc, field):
    with pytest.raises(ConfigError, match="unknown time zone") as err:
        load_policy(doc, source="p.yaml")
    assert err.value.field == field


@pytest.mark.parametrize("doc,field", [
    ({"guardrial": {}}, "guardrial"),
    ({"kind": "FinOpsPolicy", "spec": {"schedulle": "x"}}, "spec.schedulle"),
    ({"kind": "FinOpsPolicy", "spek": {}, "spec": {}}, "spek"),
])
def test_unknown_policy_keys_are_refused(doc, field):
    with pytest.raises(ConfigError, match="unknown key") as err:
        settings_from_document(doc, source="p.yaml")
    assert err.value.field == field


def test_operator_keys_of_a_finops_policy_spec_are_accepted():
    spec = {"scope": {}, "schedule": "0 6 * * *", "timeZone": "UTC", "dataSources": {}, "git": {}, "mode": "DryRun"}
    assert settings_from_document({"apiVersion": "finops.dev/v1alpha1", "kind": "FinOpsPolicy",
                                   "metadata": {"name": "p"}, "spec": spec}).mode.value == "DryRun"


def test_the_known_policy_keys_are_the_crd_spec_properties():
    import yaml

    from finops_operator.settings import OPERATOR_KEYS, SETTINGS_KEYS
    crd = yaml.safe_load((Path(__file__).resolve().parents[2] / "crds" / "finopspolicies.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert set(SETTINGS_KEYS + OPERATOR_KEYS) - {"group_by"} == set(spec)


def test_stored_gzip_is_bounded_before_and_after_decompression():
    import gzip

    from finops_operator.safeio import gunzip_bounded, gunzip_json
    assert gunzip_json(gzip.compress(b'{"a": 1}'), max_blob=100, max_raw=100) == {"a": 1}
    bomb = gzip.compress(b"0" * 10_000_000)                          # ~10 KB that would become 10 MB
    with pytest.raises(ValueError, match="more than 1000 bytes uncompressed"):
        gunzip_bounded(bomb, max_blob=len(bomb), max_raw=1000)
    with pytest.raises(ValueError, match="bytes compressed, more than 10"):
        gunzip_bounded(bomb, max_blob=10, max_raw=1000)
    with pytest.raises(ValueError, match="not gzip"):
        gunzip_bounded(b"plain text", max_blob=100, max_raw=100)
    with pytest.raises(ValueError, match="not JSON"):
        gunzip_json(gzip.compress(b"{"), max_blob=100, max_raw=100)
