"""The one place files are read: bounded, contained, and checked before anything parses them.

Every file the operator or the CLI reads (GitOps manifests, Terraform, the policy
file, a scenario, a snapshot's members) goes through here, so the rules live once:

- **Containment.** A repository file is named by a plain relative path (no ``..``,
  not absolute); its resolved path must lie inside the resolved repository root. A
  symlink that stays inside the repository is followed; one that leaves it is refused.
- **Only regular files.** Devices (``/dev/zero``), FIFOs and directories are refused
  before they are opened for reading (a FIFO is opened non-blocking, so it cannot stall us).
- **Size.** Each kind of file has a byte limit (the constants below); a larger file is
  refused without being read past the limit.
- **Text.** Bytes must be UTF-8 and contain no NUL; otherwise the file is called binary.
- **YAML.** Aliases may add at most :data:`MAX_YAML_ALIAS_NODES` nodes to a file
  (billion laughs), nesting is at most :data:`MAX_YAML_DEPTH` levels, recursive
  anchors are refused.

Errors are :class:`~finops_operator.errors.UnreadableFile` naming the file and the limit.
"""
from __future__ import annotations

import errno
import gzip
import io
import json
import os
import stat
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from .errors import MissingFile, UnreadableFile

MiB = 1024 * 1024
MAX_MANIFEST_BYTES = 5 * MiB        # one YAML manifest or Helm values file in the GitOps repo
MAX_TERRAFORM_BYTES = 512 * 1024    # one .tf/.tfvars file (python-hcl2 parses about 50 KB/s: 10 s at most)
MAX_POLICY_BYTES = 1 * MiB          # a --policy file (a FinOpsPolicy is a few KiB)
MAX_SCENARIO_BYTES = 5 * MiB        # a simulator scenario file
MAX_SNAPSHOT_META_BYTES = 64 * MiB  # a snapshot's inventory JSON (10,000 containers: about 10 MiB)
MAX_SNAPSHOT_ARRAY_BYTES = 1024 * MiB   # a snapshot's usage arrays, uncompressed (10,000 x 14 days: 322 MiB)
MAX_YAML_ALIAS_NODES = 100_000      # nodes that aliases may add to one file when expanded
MAX_YAML_DEPTH = 100                # nesting of mappings and sequences (Kubernetes objects: about 20)

SOURCE_HINT_KEY = "finops.dev/source"   # annotation (workloads) or tag (volumes): path[#key.path] in the repo

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# --------------------------------------------------------------------------- paths


def relpath_problem(rel: str) -> str | None:
    """Why ``rel`` is not a plain repository-relative path, or None when it is one."""
    if not isinstance(rel, str) or not rel.strip():
        return "is empty"
    if "\x00" in rel or "\\" in rel:
        return "contains a NUL or a backslash"
    p = PurePosixPath(rel)
    if p.is_absolute():
        return "is an absolute path; use a path relative to the repository root"
    if ".." in p.parts:
        return "contains '..'; use a path inside the repository, relative to its root"
    return None


def split_source_hint(hint: str) -> tuple[str, str, str | None]:
    """``path#key.path`` of a ``finops.dev/source`` annotation or tag -> (path, keypath, problem).

    ``path`` is normalised (no leading ``./``, no trailing ``/``; ``.`` for the root).
    """
    path, _, keypath = hint.partition("#")
    path = path.strip().removeprefix("./").rstrip("/") or "."
    return path, keypath, relpath_problem(path)


def inside(root: Path, rel: str) -> Path:
    """The resolved path of ``rel`` under ``root``; UnreadableFile when it leaves the repository."""
    problem = relpath_problem(rel)
    if problem:
        raise UnreadableFile(f"path {rel!r} {problem}", source=rel)
    base = Path(os.path.realpath(root))
    real = Path(os.path.realpath(base / rel))
    if real != base and base not in real.parents:
        raise UnreadableFile(f"resolves to {real}, outside the repository {base} (a symlink that leaves "
                             "the repository is never followed); replace it with a regular file", source=rel)
    return real


# --------------------------------------------------------------------------- reading


def read_bytes_bounded(path: Path, max_bytes: int, *, source: str) -> bytes:
    """Bytes of a regular file of at most ``max_bytes``; never blocks on a FIFO, never reads a device."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise MissingFile("no such file; check the path", source=source) from None
    except IsADirectoryError:
        raise UnreadableFile("is a directory, not a file", source=source) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnreadableFile("is a symlink, which is not followed here; point at the file itself",
                                 source=source) from None
        raise UnreadableFile(f"cannot read: {exc.strerror}", source=source) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise UnreadableFile("is a directory, not a file", source=source)
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile("is not a regular file (a device, FIFO or socket); only regular files are read",
                                 source=source)
        if info.st_size > max_bytes:
            raise UnreadableFile(f"is {info.st_size:,} bytes, over the limit of {max_bytes:,} bytes", source=source)
        os.set_blocking(fd, True)
        chunks, total = [], 0
        while total <= max_bytes:
            chunk = os.read(fd, min(1 * MiB, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            raise UnreadableFile(f"grew past the limit of {max_bytes:,} bytes while being read", source=source)
        return b"".join(chunks)
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror}", source=source) from None
    finally:
        os.close(fd)


def decode_text(data: bytes, *, source: str) -> str:
    """UTF-8 text without NUL bytes; UnreadableFile names the offset of the first bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                             "save it as UTF-8", source=source) from None
    nul = text.find("\x00")
    if nul >= 0:
        raise UnreadableFile(f"is binary (a NUL byte at offset {nul}), not a text file", source=source)
    return text.removeprefix("\ufeff")


def repo_limit(rel: str) -> int:
    """Byte limit of a repository file by its kind (Terraform parses slowly, so its limit is lower)."""
    return MAX_TERRAFORM_BYTES if rel.endswith((".tf", ".tfvars")) else MAX_MANIFEST_BYTES


def read_text_bounded(root: Path, rel: str, max_bytes: int | None = None) -> str:
    """Text of repository file ``rel``: contained in ``root``, a regular file, at most ``max_bytes``
    (default: :func:`repo_limit`), UTF-8."""
    real = inside(root, rel)
    limit = repo_limit(rel) if max_bytes is None else max_bytes
    return decode_text(read_bytes_bounded(real, limit, source=rel), source=rel)


def read_user_file(path: Path, max_bytes: int) -> str:
    """Text of a file named on the command line (policy, scenario): a regular file, bounded, UTF-8."""
    source = str(path)
    return decode_text(read_bytes_bounded(Path(os.path.realpath(path)), max_bytes, source=source), source=source)


def file_problem(root: Path, rel: str) -> UnreadableFile | None:
    """Why repository file ``rel`` would be refused, from metadata alone (no read), or None."""
    max_bytes = repo_limit(rel)
    try:
        real = inside(root, rel)
        info = os.stat(real)
    except UnreadableFile as exc:
        return exc
    except OSError as exc:
        return UnreadableFile(f"cannot read: {exc.strerror}", source=rel)
    if not stat.S_ISREG(info.st_mode):
        return UnreadableFile("is not a regular file (a device, FIFO or socket); only regular files are read",
                              source=rel)
    if info.st_size > max_bytes:
        return UnreadableFile(f"is {info.st_size:,} bytes, over the limit of {max_bytes:,} bytes", source=rel)
    return None


# --------------------------------------------------------------------------- YAML


def load_yaml(text: str, source: str) -> list[Any]:
    """Every document of ``text`` as plain data, within the alias and depth budget.

    Uses libyaml through PyYAML (fast). Syntax errors are ``yaml.YAMLError`` (callers
    turn them into their own error, with the line); budget errors are UnreadableFile.
    """
    loader = _Loader(text)
    try:
        docs = []
        while loader.check_node():
            node = loader.get_node()
            check_yaml_budget(node, source)
            docs.append(loader.construct_document(node))
        return docs
    except RecursionError:
        raise UnreadableFile(f"nests deeper than {MAX_YAML_DEPTH} levels", source=source) from None
    except yaml.YAMLError as exc:
        if "maximum nesting depth" in str(getattr(exc, "problem", "")):   # libyaml's own limit (1000)
            raise UnreadableFile(f"nests deeper than {MAX_YAML_DEPTH} levels", source=source,
                                 field=yaml_problem(exc)[1]) from None
        raise
    finally:
        loader.dispose()


def yaml_problem(exc: Exception) -> tuple[str, str | None]:
    """(problem, "line N") of a YAML syntax error, for the caller's own error type."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc).splitlines()[0]
    return problem, (f"line {mark.line + 1}" if mark is not None else None)


def check_yaml_budget(root: Any, source: str) -> None:
    """Refuse a composed YAML node graph that expands past the alias budget or nests too deep.

    Walks the graph once (iteratively), counting each distinct node once for the composed
    size and with multiplicity for the expanded size (what a consumer would traverse).
    """
    if root is None:
        return
    expanded: dict[int, int] = {}
    depth: dict[int, int] = {}
    composed = 0
    stack: list[tuple[Any, bool]] = [(root, False)]
    active: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            active.discard(key)
            expanded[key] = 1 + sum(expanded[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if depth[key] > MAX_YAML_DEPTH:
                raise UnreadableFile(f"nests deeper than {MAX_YAML_DEPTH} levels", source=source,
                                     field=_line(node))
            continue
        if key in expanded:
            continue
        if key in active:
            raise UnreadableFile("has a recursive anchor (an alias inside its own anchor)", source=source,
                                 field=_line(node))
        active.add(key)
        composed += 1
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in expanded)
    total = expanded[id(root)]
    if total - composed > MAX_YAML_ALIAS_NODES:
        raise UnreadableFile(f"aliases expand to {total:,} nodes from {composed:,}; at most "
                             f"{MAX_YAML_ALIAS_NODES:,} nodes may come from aliases (a YAML bomb?)", source=source)


def _children(node: Any) -> list[Any]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _line(node: Any) -> str | None:
    mark = getattr(node, "start_mark", None)
    return f"line {mark.line + 1}" if mark is not None else None


def gunzip_bounded(blob: bytes, *, max_blob: int, max_raw: int) -> bytes:
    """Decompress a gzip blob stored where others may write (a ConfigMap): ValueError saying what is wrong when
    it is larger than ``max_blob`` compressed, not gzip, or more than ``max_raw`` bytes uncompressed (a gzip
    bomb stops here, having read at most ``max_raw + 1`` bytes)."""
    if len(blob) > max_blob:
        raise ValueError(f"{len(blob)} bytes compressed, more than {max_blob}")
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(blob)) as f:
            raw = f.read(max_raw + 1)
    except (OSError, EOFError) as exc:
        raise ValueError(f"not gzip: {exc}") from None
    if len(raw) > max_raw:
        raise ValueError(f"more than {max_raw} bytes uncompressed")
    return raw


def gunzip_json(blob: bytes, *, max_blob: int, max_raw: int) -> Any:
    """:func:`gunzip_bounded`, then JSON (ValueError "not JSON: ..." when it is not)."""
    raw = gunzip_bounded(blob, max_blob=max_blob, max_raw=max_raw)
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
