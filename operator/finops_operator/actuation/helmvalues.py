"""Map a container to a ``resources`` mapping in Helm values (templates are never edited).

Helm templates are Go templates, not YAML, so the only safe place to change a
Helm-deployed workload is a values file (or the values inside an Argo CD
Application / Flux HelmRelease). Which ``resources`` mapping feeds which container is
decided by the chart's templates, which we do not evaluate; instead we score every
``resources`` mapping by the key above it (``api.resources`` for container ``api`` of
``search-api``) and only act when one candidate is clearly best. Otherwise we say
why and ask for the ``finops.dev/source: path#key.path.to.resources`` hint.
"""
from __future__ import annotations

from typing import Any

from ..errors import SourceNotFound
from .locate import Ambiguous, RepoIndex, ValuesSource

_MIN_SCORE = 2


def _norm(text: str) -> str:
    return text.lower().replace("-", "").replace("_", "")


def score(keypath: tuple[Any, ...], workload: str, container: str, source: ValuesSource) -> int:
    """How surely the ``resources`` under ``keypath`` belongs to this container (0 = not at all)."""
    if not keypath:     # top-level `resources`: a one-workload chart
        names = {n for n in (source.release, source.chart) if n}
        names |= {f"{source.release}-{source.chart}"} if source.release and source.chart else set()
        return 2 if workload in names else 1
    parent = str(keypath[-1])
    suffix = workload.endswith("-" + parent) or _norm(workload).endswith(_norm(parent))
    if _norm(parent) == _norm(container):
        return 4 if suffix else 3
    if _norm(parent) == _norm(workload) or suffix:
        return 2
    return 0


def _resource_paths(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Key paths of every mapping that has a ``resources`` key (mapping or empty)."""
    found: list[tuple[Any, ...]] = []
    if isinstance(data, dict):
        if "resources" in data and (data["resources"] is None or isinstance(data["resources"], dict)):
            found.append(path)
        for key, value in data.items():
            if key != "resources" and isinstance(key, str):
                found += _resource_paths(value, path + (key,))
    return found


def _values_data(index: RepoIndex, source: ValuesSource) -> Any:
    docs = index.load(source.path) if index.is_file(source.path) else None
    if not docs or source.doc >= len(docs):
        return None
    data = docs[source.doc]
    for key in source.prefix:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def helm_target(index: RepoIndex, ref, container: str, only_path: str | None, *,
                only_paths: set[str] | None = None) -> tuple[str, int, list[Any], str] | None:
    """(path, doc, owner key path, description) of the values mapping to edit, or None.

    ``only_paths``: the files of the release that deploys the workload here (its DeploySource).

    Raises Ambiguous when several mappings fit equally well, SourceNotFound when values
    exist for the namespace but none can be tied to the container.
    """
    sources = [s for s in index.values if (only_path is None or s.path == only_path)
               and (only_paths is None or s.path in only_paths)]
    if only_path is not None and not sources:
        sources = [ValuesSource(only_path, 0, [], None, None, None)]
    strong = [s for s in sources if s.namespace == ref.namespace]
    pool = strong or [s for s in sources if s.namespace is None]
    scored = []
    for order, source in enumerate(pool):
        data = _values_data(index, source)
        for keypath in _resource_paths(data):
            scored.append((score(keypath, ref.name, container, source), order, source, keypath))
    if not scored:
        return None
    best = max(s for s, *_ in scored)
    top = [entry for entry in scored if entry[0] == best]
    describe = lambda e: f"{e[2].path}#{'.'.join(map(str, list(e[2].prefix) + list(e[3]) + ['resources']))}"
    if best < _MIN_SCORE:
        raise SourceNotFound(
            f"cannot decide which Helm values feed container {container} of {ref.kind} "
            f"{ref.namespace}/{ref.name}: candidates {', '.join(describe(e) for e in scored)}; add annotation "
            "finops.dev/source: <values file>#<key.path.to.resources> to the workload")
    if len({id(e[2]) for e in top}) > 1 and len({e[3] for e in top}) == 1 and \
            len({(e[2].release, e[2].chart) for e in top}) == 1 and strong:
        top = [max(top, key=lambda e: e[1])]   # later values files of one release override earlier ones
    if len(top) > 1:
        raise Ambiguous(f"several Helm values fit container {container} of {ref.kind} {ref.namespace}/{ref.name}: "
                        f"{', '.join(describe(e) for e in top)}; add annotation finops.dev/source: "
                        "<values file>#<key.path.to.resources> to the workload")
    _, _, source, keypath = top[0]
    owner = list(source.prefix) + list(keypath)
    return source.path, source.doc, owner, f"Helm values {describe(top[0])}"
