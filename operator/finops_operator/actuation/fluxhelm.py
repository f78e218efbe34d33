"""Flux HelmReleases in a Kustomize rendering: their merged values, and the objects their chart renders.

    releases = flux_releases(objs)                 # HelmReleases whose chart is a path of this repository
    release.values                                 # Flux's merge: valuesFrom in order, then spec.values
    text = expand(kustomize_output, repo_root, tools)   # the HelmReleases replaced by what their chart renders

A Flux ``Kustomization`` applies a HelmRelease; helm-controller then renders its
chart with values merged as Flux merges them: each ``valuesFrom`` source in order
(a ConfigMap's or Secret's ``valuesKey``, default ``values.yaml``), then
``spec.values`` on top. :func:`expand` does the same with ``helm template`` on the
chart's directory in the repository (a chart served by the GitRepository), so a
rendering proof sees the Deployments a change reaches, not the HelmRelease object.
The ConfigMaps and Secrets a release reads its values from are replaced with it.
HelmReleases whose chart is not a path here (a HelmRepository, an OCI chartRef)
stay as they are.
"""
from __future__ import annotations

import base64
import copy
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ProofError
from ..gitops.records import parse_records
from .helmkeys import _merge
from .rendertools import RenderTools

Obj = dict[str, Any]


@dataclass
class FluxRelease:
    """One HelmRelease of the rendering, as helm-controller would install it."""

    name: str                           # the HelmRelease's metadata.name
    own_namespace: str                  # the HelmRelease's metadata.namespace (its valuesFrom sources')
    namespace: str                      # where the release installs (targetNamespace, else its own)
    release: str                        # the Helm release name
    chart: str                          # repository-relative chart directory
    chart_values: tuple[str, ...] = ()  # chart.spec.valuesFiles (repository-relative), in order
    values: dict = field(default_factory=dict)          # merged: valuesFrom in order, then spec.values
    reads: set[tuple[str, str, str]] = field(default_factory=set)   # (kind, namespace, name) it reads values from
    problems: list[str] = field(default_factory=list)


def _key(obj: Obj) -> tuple[str, str, str]:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return str(obj.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name"))


def _source_text(obj: Obj, key: str) -> str | None:
    if obj.get("kind") == "Secret":
        string = (obj.get("stringData") or {}).get(key)
        if isinstance(string, str):
            return string
        raw = (obj.get("data") or {}).get(key)
        return base64.b64decode(raw).decode() if isinstance(raw, str) else None
    value = (obj.get("data") or {}).get(key)
    return value if isinstance(value, str) else None


def values_from(hr: Obj, objs: list[Obj]) -> tuple[dict, set[tuple[str, str, str]], list[str]]:
    """(merged values, sources read, problems) of one HelmRelease, ``objs`` being its Kustomization's objects."""
    spec = hr.get("spec") if isinstance(hr.get("spec"), dict) else {}
    namespace = _key(hr)[1]
    by_key = {_key(o): o for o in objs}
    merged: dict = {}
    reads: set[tuple[str, str, str]] = set()
    problems: list[str] = []
    for ref in spec.get("valuesFrom") or []:
        if not isinstance(ref, dict) or ref.get("kind") not in ("ConfigMap", "Secret"):
            problems.append(f"valuesFrom {ref!r} is not a ConfigMap or Secret reference")
            continue
        source_key = (ref["kind"], namespace, str(ref.get("name")))
        value_key = str(ref.get("valuesKey") or "values.yaml")
        obj = by_key.get(source_key)
        text = _source_text(obj, value_key) if obj is not None else None
        if text is None:
            if not ref.get("optional"):
                problems.append(f"valuesFrom {ref['kind']} {namespace}/{ref.get('name')} key {value_key} "
                                "is not in the rendering")
            continue
        if ref.get("targetPath"):
            problems.append(f"valuesFrom {ref['kind']} {ref.get('name')} uses targetPath, which is not rendered here")
            continue
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            problems.append(f"valuesFrom {ref['kind']} {ref.get('name')} key {value_key} is not YAML: {exc}")
            continue
        reads.add(source_key)
        _merge(merged, data if isinstance(data, dict) else {})
    _merge(merged, spec.get("values") if isinstance(spec.get("values"), dict) else {})
    return merged, reads, problems


def flux_releases(objs: list[Obj]) -> list[FluxRelease]:
    """The HelmReleases among ``objs`` whose chart is a path of the repository (a GitRepository's)."""
    found = []
    for hr in objs:
        if hr.get("kind") != "HelmRelease" or not str(hr.get("apiVersion", "")).startswith("helm.toolkit.fluxcd.io/"):
            continue
        record = parse_records({"HelmRelease": [hr]})
        if not record or record[0].problem or not record[0].path:
            continue
        rec = record[0]
        values, reads, problems = values_from(hr, objs)
        found.append(FluxRelease(rec.name, rec.namespace, rec.destination_namespace or "default",
                                 rec.release or rec.name, rec.path, rec.values_files, values, reads, problems))
    return found


def effective_values(release: FluxRelease, root: Path) -> dict:
    """What the chart's templates see: its ``values.yaml``, the chart's valuesFiles, then the merged values."""
    merged: dict = {}
    for rel in (f"{release.chart}/values.yaml",) + release.chart_values:
        path = Path(root) / rel
        try:
            data = yaml.safe_load(path.read_text()) if path.is_file() else None
        except yaml.YAMLError:
            data = None
        _merge(merged, data if isinstance(data, dict) else {})
    return _merge(merged, copy.deepcopy(release.values))


def render_release(release: FluxRelease, root: Path, tools: RenderTools, extra: dict | None = None) -> str:
    """``helm template`` of the release's chart in ``root`` with its merged values (and ``extra`` on top)."""
    chart = Path(root) / release.chart
    if not (chart / "Chart.yaml").is_file():
        raise ProofError(f"HelmRelease {release.namespace}/{release.name}: chart {release.chart} is not a chart "
                         "directory of the repository (no Chart.yaml)", source=release.chart)
    with tempfile.TemporaryDirectory(prefix="finops-fluxhelm-") as scratch:
        files = [Path(root) / v for v in release.chart_values]
        merged = Path(scratch) / "values.yaml"
        merged.write_text(yaml.safe_dump(release.values))
        files.append(merged)
        if extra:
            markers = Path(scratch) / "extra.yaml"
            markers.write_text(yaml.safe_dump(extra))
            files.append(markers)
        return tools.helm_template(chart, release=release.release, namespace=release.namespace, values=files)


def expand(text: str, root: Path, tools: RenderTools) -> str:
    """A Kustomize rendering with each local-chart HelmRelease (and the values sources it reads) replaced
    by what its chart renders."""
    if "HelmRelease" not in text:
        return text
    try:
        objs = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    except yaml.YAMLError:
        return text            # the proof reports the rendering itself as not YAML
    releases = flux_releases(objs)
    if not releases:
        return text
    for release in releases:
        if release.problems:
            raise ProofError(f"HelmRelease {release.namespace}/{release.name}: {'; '.join(release.problems)}")
    drop = {("HelmRelease", r.own_namespace, r.name) for r in releases} | {k for r in releases for k in r.reads}
    kept = [o for o in objs if _key(o) not in drop]
    out = yaml.safe_dump_all(kept, sort_keys=True) if kept else ""
    for release in releases:
        out += f"---\n# HelmRelease {release.own_namespace}/{release.name} (chart {release.chart})\n"
        out += render_release(release, root, tools)
    return out
