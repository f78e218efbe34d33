"""The Dockerfile, read as Docker reads it: multi-stage, pinned, non-root, and in step with the repo.

tests/e2e/test_image.py builds the image on this machine (tests/tools/build-image.sh: a Debian
base and the locally built tools passed as build args) and runs it; the registry bases of the
public build cannot be pulled here (no container registry is reachable), so what can drift in
that build is checked instead: base tags pinned exactly (ARG defaults resolved as Docker does),
the Go toolchain equal to tests/tools/versions.env's GO_VERSION, tool versions taken only from
versions.env, the build args the script passes declared, the user the chart runs as, the
version the chart's image tag defaults to, and a .dockerignore that lets every COPY source through.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
CHART = ROOT / "charts" / "finops-operator"
TOOL_MODULES = ("helm.sh/helm/v3/cmd/helm@${HELM_VERSION}", "sigs.k8s.io/kustomize/kustomize/v5@${KUSTOMIZE_VERSION}",
                "github.com/opentofu/opentofu@${TOFU_VERSION}")


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped (Dockerfile syntax)."""
    out, buf, start = [], "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not buf and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        if buf and raw.lstrip().startswith("#"):
            continue
        start = start or number
        if raw.rstrip().endswith("\\"):
            buf += raw.rstrip()[:-1] + " "
            continue
        keyword, _, args = (buf + raw).strip().partition(" ")
        out.append(Instruction(start, keyword.upper(), args.strip()))
        buf, start = "", 0
    assert not buf, "the Dockerfile ends inside a continuation line"
    return out


def versions_env() -> dict[str, str]:
    lines = (ROOT / "tests" / "tools" / "versions.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def global_args(instructions: list[Instruction]) -> dict[str, str]:
    """The ARGs before the first FROM with their defaults: what FROM lines may expand."""
    out = {}
    for ins in instructions:
        if ins.keyword == "FROM":
            break
        if ins.keyword == "ARG":
            name, _, default = ins.args.partition("=")
            out[name] = default
    return out


def bases(instructions: list[Instruction]) -> list[tuple[str, str]]:
    """(image as written, image with the ARG defaults expanded) of each FROM."""
    args = global_args(instructions)
    out = []
    for ins in (i for i in instructions if i.keyword == "FROM"):
        written = ins.args.split()[0]
        out.append((written, re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], written)))
    return out


def stage_names(instructions: list[Instruction]) -> list[str]:
    return [i.args.split()[-1] for i in instructions if i.keyword == "FROM" and " AS " in i.args.upper()]


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(DOCKERFILE.read_text())


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    out: list[list[Instruction]] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            out.append([])
        elif not out:    # only global ARGs may stand before the first FROM
            assert ins.keyword == "ARG", f"line {ins.line}: {ins.keyword} before the first FROM"
            continue
        out[-1].append(ins)
    return out


def test_parser_joins_continuations_and_skips_comments():
    parsed = parse("# c\nFROM a:1.2.3 AS b\nRUN x \\\n  # inner comment\n  && y\n\nUSER 1\n")
    assert [(i.line, i.keyword, i.args) for i in parsed] == [(2, "FROM", "a:1.2.3 AS b"), (3, "RUN", "x    && y"),
                                                               (7, "USER", "1")]


def test_multi_stage_with_every_base_pinned(instructions):
    froms = bases(instructions)
    assert len(froms) >= 3, froms
    names = stage_names(instructions)
    for written, image in froms:
        if image in names:
            continue
        assert "@sha256:" in image or re.search(r":\d+\.\d+\.\d+(-[a-z0-9.-]+)?$", image), \
            f"{written} = {image}: pin the base image by digest or an exact version tag"


def test_the_build_script_sets_only_declared_args_and_the_venv_shares_the_final_base(instructions):
    """build-image.sh swaps the bases through ARGs: each must exist, and the venv (whose python
    symlinks point into its base) must be copied into a stage of the same base."""
    script = (ROOT / "tests" / "tools" / "build-image.sh").read_text()
    passed = set(re.findall(r"--build-arg (\w+)=", script))
    assert passed >= {"PYTHON_BASE", "TOOLS"} and passed <= set(global_args(instructions)), passed
    written = [w for w, _ in bases(instructions)]
    venv = next(i for i in instructions if i.keyword == "FROM" and i.args.endswith(" AS venv"))
    assert venv.args.split()[0] == written[-1] == "${PYTHON_BASE}", written
    tools = next(i for i in instructions if i.keyword == "FROM" and i.args.endswith(" AS tools"))
    assert tools.args.split()[0] == "${TOOLS}" and global_args(instructions)["TOOLS"] in stage_names(instructions)


def test_go_toolchain_and_tool_versions_come_from_versions_env(instructions):
    pins = versions_env()
    golang = next(image for _, image in bases(instructions) if "golang:" in image)
    assert golang.split(":", 1)[1].split("-")[0] == pins["GO_VERSION"], (golang, pins["GO_VERSION"])
    runs = " ".join(i.args for i in instructions if i.keyword == "RUN")
    for module in TOOL_MODULES:
        assert module in runs, f"the tools stage does not build {module}"
        assert module.split("${")[1].rstrip("}") in pins
    assert not re.search(r"@v\d", runs), "a tool version is written in the Dockerfile; read it from versions.env"
    copies = [i.args for i in instructions if i.keyword == "COPY"]
    assert any(c.startswith("tests/tools/versions.env ") for c in copies)


def test_final_stage_runs_as_the_charts_non_root_user_with_the_tools(instructions):
    final = stages(instructions)[-1]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    users = [i.args for i in final if i.keyword == "USER"]
    uid = str(values["podSecurityContext"]["runAsUser"])
    assert users and users[-1].split(":")[0] == uid != "0", (users, uid)
    copied = " ".join(i.args for i in final if i.keyword == "COPY")
    assert all(f"/out/{tool}" in copied for tool in ("helm", "kustomize", "tofu")), copied
    entry = next(i.args for i in final if i.keyword == "ENTRYPOINT")
    assert entry == '["finops"]'
    template = (CHART / "templates" / "deployment.yaml").read_text()
    assert "command: [finops]" in template


def test_the_image_version_is_the_charts_image_tag_and_the_package_version(instructions):
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    package = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    label = next(i.args for i in instructions if i.keyword == "LABEL")
    version = re.search(r'org\.opencontainers\.image\.version="([^"]+)"', label).group(1)
    assert version == chart["appVersion"] == package
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["image"]["tag"] == "", "the chart's image tag must default to appVersion (the image built here)"
    assert f"{values['image']['repository']}:{version}" in DOCKERFILE.read_text()


def test_dockerignore_lets_every_copy_source_through(instructions):
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in lines, ".dockerignore is an allow-list: everything is excluded, then the inputs allowed"
    allowed = [line[1:].rstrip("/") for line in lines if line.startswith("!")]

    def let_through(path: str) -> bool:
        return any(path == a or path.startswith(a + "/") for a in allowed)

    copied = [i.args.split()[0] for i in instructions if i.keyword == "COPY" and not i.args.startswith("--from")]
    for ins in instructions:
        if ins.keyword != "COPY" or ins.args.startswith("--from"):
            continue
        *sources, _dest = ins.args.split()
        for src in sources:
            src = src.rstrip("/")
            assert (ROOT / src).exists(), f"line {ins.line}: COPY {src}: no such path"
            assert let_through(src), f"line {ins.line}: COPY {src} is excluded by .dockerignore"
            # The package's data/ links to top-level dirs: their targets must be in the build too.
            for link in (p for p in (ROOT / src).rglob("*") if p.is_symlink()):
                target = link.resolve().relative_to(ROOT).as_posix()
                assert let_through(target) and any(target.startswith(c.rstrip("/")) for c in copied), \
                    f"{link.relative_to(ROOT)} -> {target}: not copied into the image"
