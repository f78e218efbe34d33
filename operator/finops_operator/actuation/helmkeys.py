"""Helm: which values key feeds a container's resources (found by rendering), and which file to edit.

    files, location, notes = edit_release(index, finding, read, deploy)

The key is found by rendering, not guessed from names: every ``resources``
mapping of the release's effective values (chart ``values.yaml`` under the
release's values files) gets a distinct marker CPU request, ``helm template``
renders the chart once with those markers, and the marker that lands in the
container names its key. A container whose resources carry no marker writes them
in the template: the edit is refused with the template's file and line.

Each field is then written in the last of the release's values files that sets it
(``DeploySource.values_files``, in order), else in the release's own values file
(the last one that is not the chart's ``values.yaml``), never in the defaults that
every environment shares. A values file may be written ``path#key.path`` when the
values are a mapping inside it (a Flux HelmRelease's ``spec.values``).
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from ..errors import EditError, FinOpsError, SourceNotFound
from ..models import DeploySource, Finding
from . import manifests
from .locate import RepoIndex
from .rendertools import RenderTools

MARKER_BASE = 970001          # marker CPU requests: 970001m, 970002m, ... (nobody asks for 970 cores)
_SOURCE = re.compile(r"^# Source: (\S+)", re.M)


def _get(data: Any, keys: list[Any]) -> Any:
    for key in keys:
        if isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data):
            data = data[key]
        elif isinstance(data, dict) and key in data:
            data = data[key]
        else:
            return None
    return data


def _merge(into: dict, over: Any) -> dict:
    for key, value in (over or {}).items() if isinstance(over, dict) else []:
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
    return into


def resource_keys(data: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Key paths of every mapping holding a ``resources`` mapping (or an empty one)."""
    found: list[tuple[str, ...]] = []
    if isinstance(data, dict):
        if "resources" in data and (data["resources"] is None or isinstance(data["resources"], dict)):
            found.append(path)
        for key, value in data.items():
            if key != "resources" and isinstance(key, str):
                found += resource_keys(value, path + (key,))
    return found


def _split(spec: str) -> tuple[str, list[Any]]:
    path, _, keypath = spec.partition("#")
    return path, [int(k) if k.isdigit() else k for k in keypath.split(".") if k]


class Release:
    """One Helm release of a chart in the repository, with its values files in order."""

    def __init__(self, index: RepoIndex, deploy: DeploySource):
        self.index = index
        self.chart = deploy.entry_point.strip("/") or "."
        self.name = deploy.release or PurePosixPath(self.chart).name
        self.files = [_split(v) for v in deploy.values_files]
        self.defaults = f"{self.chart}/values.yaml" if self.chart != "." else "values.yaml"

    def data_of(self, path: str, prefix: list[Any]) -> Any:
        docs = self.index.load(path) if self.index.is_file(path) else None
        return _get(docs[0], prefix) if docs else None

    def effective(self) -> dict:
        merged: dict = {}
        if not any(p == self.defaults for p, _ in self.files):
            _merge(merged, self.data_of(self.defaults, []))
        for path, prefix in self.files:
            _merge(merged, self.data_of(path, prefix))
        return merged

    def render(self, tools: RenderTools, namespace: str, extra: dict) -> str:
        with tempfile.TemporaryDirectory(prefix="finops-helmkeys-") as scratch:
            files = []
            for n, (path, prefix) in enumerate(self.files):
                data = self.data_of(path, prefix)
                dest = Path(scratch) / f"{n}.yaml"
                dest.write_text(yaml.safe_dump(data if isinstance(data, dict) else {}))
                files.append(dest)
            marker = Path(scratch) / "markers.yaml"
            marker.write_text(yaml.safe_dump(extra))
            return tools.helm_template(self.index.root / self.chart, release=self.name, namespace=namespace,
                                       values=files + [marker])


def _container_in(rendered: str, kind: str, name: str, container: str) -> tuple[dict | None, str | None]:
    """(the container as rendered, the template it came from) of ``kind/name``."""
    for chunk in re.split(r"^---\s*$", rendered, flags=re.M):
        try:
            doc = yaml.safe_load(chunk)
        except yaml.YAMLError:
            continue
        if not (isinstance(doc, dict) and doc.get("kind") == kind and (doc.get("metadata") or {}).get("name") == name):
            continue
        spec = _get(doc, ["spec", "jobTemplate", "spec", "template", "spec"] if kind == "CronJob"
                    else ["spec", "template", "spec"]) or {}
        source = _SOURCE.search(chunk)
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            if isinstance(c, dict) and c.get("name") == container:
                return c, source.group(1) if source else None
        return None, source.group(1) if source else None
    return None, None


def find_key(release: Release, tools: RenderTools, ref, container: str) -> tuple[str, ...]:
    """The values key whose ``resources`` the container renders (SourceNotFound naming the template if none)."""
    candidates = resource_keys(release.effective())
    markers: dict = {}
    for n, keypath in enumerate(candidates):
        node = markers
        for key in keypath:
            node = node.setdefault(key, {})
        node["resources"] = {"requests": {"cpu": f"{MARKER_BASE + n}m"}}
    rendered = release.render(tools, ref.namespace, markers)
    found, source = _container_in(rendered, ref.kind, ref.name, container)
    if found is None:
        raise SourceNotFound(f"helm template of {release.chart} (release {release.name}) renders no container "
                             f"{container} in {ref.kind} {ref.name}; check the DeploySource of the workload")
    cpu = str(_get(found, ["resources", "requests", "cpu"]) or "")
    match = re.fullmatch(r"(\d+)m", cpu)
    if match and 0 <= int(match.group(1)) - MARKER_BASE < len(candidates):
        return candidates[int(match.group(1)) - MARKER_BASE]
    raise _hard_coded(release, source, container)


def _hard_coded(release: Release, source: str | None, container: str) -> SourceNotFound:
    template = f"{release.chart}/{source.split('/', 1)[1]}" if source and "/" in source else release.chart
    line = 1
    if release.index.is_file(template):
        text = release.index.text(template)
        at = text.find(f"name: {container}")
        at = text.find("resources:", max(at, 0))
        line = text.count("\n", 0, max(at, 0)) + 1
    return SourceNotFound(f"{template}:{line}: resources are written in the template, not read from values; "
                          "change the template or add a values key", source=template)


def _env_file(release: Release) -> tuple[str, list[Any]] | None:
    own = [(p, k) for p, k in release.files if p != release.defaults]
    return own[-1] if own else None


def inflated_release(index: RepoIndex, ref, entry: str | None) -> DeploySource | None:
    """The ``helmCharts`` release of a kustomization that deploys ``ref``'s namespace (under ``entry``)."""
    found: dict[tuple[str, str | None], list[str]] = {}
    for source in index.values:
        if source.chart_dir is None or source.namespace != ref.namespace:
            continue
        if entry is not None and not source.path.startswith(entry.rstrip("/") + "/"):
            continue
        spec = source.path if not source.prefix else f"{source.path}#{'.'.join(map(str, source.prefix))}"
        found.setdefault((source.chart_dir, source.release), []).append(spec)
    if len(found) != 1:
        return None
    (chart, release), files = next(iter(found.items()))
    return DeploySource(chart, "kustomize-helmCharts", "helm", tuple(files), release)


def edit_release(index: RepoIndex, finding: Finding, read, deploy: DeploySource,
                 tools: RenderTools | None = None) -> tuple[dict[str, str], str | None, list[str]]:
    ref, container = finding.target.workload, finding.target.name
    release = Release(index, deploy)
    keypath = find_key(release, tools or RenderTools.from_environment(), ref, container)
    effective = release.effective()
    files: dict[str, str] = {}
    location, notes = None, []
    for change in finding.changes:
        keys = list(keypath) + change.field.split(".")
        where = next(((p, k) for p, k in reversed(release.files) if _get(release.data_of(p, k), keys) is not None),
                     None)
        why = "the release's last values file that sets it"
        if where is None:
            where, why = _env_file(release), "the release's own values file"
            if where is None:
                raise EditError(f"release {release.name} of {release.chart} has no values file of its own; "
                                f"{'.'.join(keys)} is set only in the chart's defaults, shared by every release; "
                                "give the release a values file", source=release.defaults)
            if not manifests.same_value(change, _get(effective, keys)):
                raise manifests.disagree(where[0], change, str(_get(effective, keys)), ".".join(keys))
        path, prefix = where
        text = files.get(path) or read(path)
        try:
            new, line = manifests.apply_keys(text, path, 0, prefix, keys, change)
        except FinOpsError as exc:
            raise exc.located(source=path) from None
        files[path] = new
        location = location or f"{path}:{line}"
        note = f"edited {PurePosixPath(path).name} ({why}; key {'.'.join(keypath + ('resources',))})"
        if note not in notes:
            notes.append(note)
    return files, location, notes
