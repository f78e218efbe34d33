"""Pytest fixtures for the real Kubernetes control plane (etcd + kube-apiserver).

``kube`` (session): a started :class:`tests.support.controlplane.ControlPlane` with
``.kubeconfig``, ``.url``, ``.version``, ``.kubectl(...)``, ``.helm(...)``,
``.sa_kubeconfig(namespace, name)`` and ``.environ()`` (env with KUBECONFIG for
child processes such as the operator).
``kube_namespace`` (function): a fresh namespace name, deleted afterwards.

If the binaries are not built, the fixture FAILS (never skips) and says to run
tests/tools/install-kube-tools.sh.
"""
from __future__ import annotations

import re
import secrets
from typing import Iterator

import pytest

from tests.support.controlplane import ControlPlane, ControlPlaneError


@pytest.fixture(scope="session")
def kube() -> Iterator[ControlPlane]:
    """A real kube-apiserver + etcd on loopback for the whole test session."""
    try:
        plane = ControlPlane().start()
    except ControlPlaneError as exc:
        problem = str(exc)
    else:
        problem = ""
    if problem:  # outside the except block, so the report shows one clear message
        pytest.fail(f"cannot start the test Kubernetes control plane: {problem}", pytrace=False)
    try:
        yield plane
    finally:
        plane.stop()


def namespace_name(test_name: str) -> str:
    """A valid, unique namespace name derived from the test's name (DNS-1123, <= 63 chars)."""
    base = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")[:50].strip("-") or "t"
    return f"{base}-{secrets.token_hex(3)}"


@pytest.fixture
def kube_namespace(kube: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test.

    Deletion only marks it Terminating: without a controller-manager the namespace
    controller never empties and removes it, which is harmless as names are unique.
    """
    name = namespace_name(request.node.name)
    kube.kubectl("create", "namespace", name)
    yield name
    kube.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)
