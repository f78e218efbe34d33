"""Build one run's :class:`~finops_operator.reconcile.LoopDeps` from a FinOpsPolicy.

    wiring = build_deps(policy, api_client, workdir=Path("/tmp/finops/ns/name"), approved=lambda: ids)
    report = run_policy(policy.name, policy.settings, ledger, wiring.deps, ...)

* Kubernetes inventory through the operator's own client (one LIST per kind,
  per namespace when the scope names namespaces), filtered to the policy's
  scope and workload label selector.
* Prometheus with the bearer token read from the referenced Secret.
* AWS (EBS volumes) when ``dataSources.aws`` is set; credentials come from the
  environment (IRSA, Pod Identity or the chart's Secret env vars).
* Cost allocation of each run's window: usage hours from the same Prometheus
  and scope, the bill from ``dataSources.aws.costSource`` (Cost Explorer, or the
  CUR 2.0 through DuckDB or Athena), else the price book (:mod:`.costsource`).
* GitHub (PyGithub) or plain Git with the token read from the referenced
  Secret; the base checkout is a clone kept in the work directory plus a fresh
  ``git archive`` export of the base branch per run, restricted to
  ``spec.git.paths`` and what their entry points render.
* Which entry point deploys each workload: Argo CD / Flux records read with the
  inventory, then ``spec.git.paths`` (:class:`~..gitops.deploymap.DeployPolicy`).

Secrets are read with a GET by name (the chart grants exactly those names);
a refusal or a missing key is a ConfigError that names the Secret, the key and
the fix.
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataSourceError
from ..gitops.deploymap import DeployPolicy
from ..models import ClusterState, Window
from ..permissions import Rule
from ..pricing import LivePrices, PriceBook, Pricing, apply_overrides, custom_book
from ..pricing.overrides import parse_table_text
from ..reconcile import LoopDeps, export_tree
from .costsource import cost_reader
from ..sources.promql import Scope
from .policy import PolicySpec, ScopeSpec, SecretRef


PERMISSIONS = (   # RBAC for the calls below (see finops_operator.permissions)
    Rule("named-secret", "", "secrets", ("get",), "api/wiring.py read_secret (by name: git.tokenSecret, rbac.secretRefs)"),
    Rule("named-configmap", "", "configmaps", ("get",),
         "api/wiring.py read_config_map (by name: spec.pricing.configMapRef, rbac.configMapRefs)"),
    Rule("cluster", "", "namespaces", ("list",), "api/wiring.py resolve_namespaces (spec.scope.namespaceSelector)"),
)

def api_client_from(kubeconfig: str | None = None) -> Any:
    """An ApiClient of its own (never the global default): in-cluster config, else the kubeconfig."""
    import kubernetes
    config = kubernetes.client.Configuration()
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        kubernetes.config.load_incluster_config(client_configuration=config)
    else:
        try:
            kubernetes.config.load_kube_config(config_file=kubeconfig or None, client_configuration=config)
        except Exception as exc:  # ConfigException, FileNotFoundError, yaml errors
            raise ConfigError(f"cannot load the kubeconfig: {exc}", source=kubeconfig or "kubeconfig",
                              field="--kubeconfig") from None
    return kubernetes.client.ApiClient(config)


# --------------------------------------------------------------------------- secrets


def _read_named(kind: str, read: Callable[..., Any], namespace: str, ref: SecretRef, *, where: str, source: str,
                grant: str) -> str:
    """``data[ref.key]`` of a Secret or ConfigMap read with a GET by name; refusals name the fix."""
    what = f"{kind} {namespace}/{ref.name}"
    try:
        data = json.loads(read(ref.name, namespace, _preload_content=False).data).get("data") or {}
    except Exception as exc:
        status = getattr(exc, "status", None)
        if status == 404:
            raise ConfigError(f"{what} does not exist; create it with the key {ref.key!r}", source=source,
                              field=where) from None
        if status in (401, 403):
            raise ConfigError(f"the operator may not read {what} ({status}); allow it in the chart ({grant}: "
                              f"[{{namespace: {namespace}, name: {ref.name}}}])", source=source, field=where) from None
        raise DataSourceError(f"cannot read {what} ({status or type(exc).__name__}): {getattr(exc, 'reason', exc)}",
                              source=source, field=where) from None
    if ref.key not in data:
        raise ConfigError(f"{what} has no key {ref.key!r} (keys: {sorted(data)}); set {where}.key",
                          source=source, field=where)
    return data[ref.key]


def read_secret(api_client: Any, namespace: str, ref: SecretRef, *, where: str, source: str) -> str:
    """The decoded value of ``ref.key`` in Secret ``namespace/ref.name``."""
    import kubernetes
    raw = _read_named("Secret", kubernetes.client.CoreV1Api(api_client).read_namespaced_secret, namespace, ref,
                      where=where, source=source,
                      grant="git.tokenSecret.name for the operator's namespace, or rbac.secretRefs")
    value = base64.b64decode(raw).decode().strip()
    if not value:
        raise ConfigError(f"Secret {namespace}/{ref.name} key {ref.key!r} is empty", source=source, field=where)
    return value


def read_config_map(api_client: Any, namespace: str, ref: SecretRef, *, where: str, source: str) -> str:
    """The text of ``ref.key`` in ConfigMap ``namespace/ref.name`` (a GET by name, as for Secrets)."""
    import kubernetes
    return _read_named("ConfigMap", kubernetes.client.CoreV1Api(api_client).read_namespaced_config_map, namespace,
                       ref, where=where, source=source, grant="rbac.configMapRefs")


# --------------------------------------------------------------------------- prices


def policy_pricing(policy: PolicySpec, region: str, table: str | None = None, *,
                   live: LivePrices | None = None) -> Pricing:
    """The policy's prices: the region's book (or its custom ``table`` text) with ``spec.pricing`` applied."""
    spec = policy.pricing
    if table is not None and spec.table is not None:     # errors name the ConfigMap, its key and the table field
        where = f"ConfigMap {policy.namespace}/{spec.table.name} key {spec.table.key}"
        book = custom_book(parse_table_text(table, source=where), source=where, region=region)
    else:
        try:
            book = PriceBook.for_region(region)
        except ConfigError as exc:
            field = "spec.dataSources.aws.region" + ("" if policy.aws else " (unset: the operator's region)")
            raise ConfigError(exc.message, source=policy.source, field=field) from None
    return Pricing(apply_overrides(book, spec.overrides), live=live)


# --------------------------------------------------------------------------- scope


def selector_string(selector: dict[str, Any]) -> str:
    """A Kubernetes label selector (matchLabels / matchExpressions) as the API's string form."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def matches(labels: dict[str, str], selector: dict[str, Any] | None) -> bool:
    """Whether ``labels`` satisfy a label selector (None or empty: everything matches)."""
    if not selector:
        return True
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {"In": key in labels and labels[key] in values, "NotIn": labels.get(key) not in values,
              "Exists": key in labels, "DoesNotExist": key not in labels}[op]
        if not ok:
            return False
    return True


def resolve_namespaces(api_client: Any, scope: ScopeSpec) -> list[str] | None:
    """Namespaces to scan, or None for every namespace (minus exclusions, applied by the reader)."""
    if scope.confined_to is not None:
        return [scope.confined_to]
    if scope.namespace_selector is None:
        return sorted(set(scope.namespaces) - set(scope.exclude)) if scope.namespaces else None
    import kubernetes
    try:
        response = kubernetes.client.CoreV1Api(api_client).list_namespace(
            label_selector=selector_string(scope.namespace_selector), _preload_content=False)
        selected = {i["metadata"]["name"] for i in json.loads(response.data).get("items", [])}
    except Exception as exc:
        raise DataSourceError(f"cannot list namespaces for spec.scope.namespaceSelector "
                              f"({getattr(exc, 'status', None) or type(exc).__name__})", source="kubernetes") from None
    return sorted((selected | set(scope.namespaces)) - set(scope.exclude))


def prometheus_scope(namespaces: list[str] | None, scope: ScopeSpec, matchers: tuple[str, ...] = ()) -> Scope:
    """The PromQL scope for the same namespaces (an anchored regex of their names), plus the source's
    label ``matchers`` (the cluster of a shared backend)."""
    regex = "|".join(re.escape(n) for n in namespaces) if namespaces else ".+"
    exclude = "|".join(re.escape(n) for n in scope.exclude) if scope.exclude and namespaces is None else None
    return Scope(namespaces=regex, exclude_namespaces=exclude, matchers=matchers)


@dataclass
class ScopedReader:
    """A StateReader that drops workloads outside the policy's namespaces or workload label selector.

    Pods and nodes stay: node consolidation must see everything placed on a node.
    """

    inner: Callable[[Window], ClusterState]
    namespaces: list[str] | None
    exclude: tuple[str, ...] = ()
    label_selector: dict[str, Any] | None = None

    def __call__(self, window: Window) -> ClusterState:
        state = self.inner(window)
        keep = [w for w in state.workloads if self._wanted(w.ref.namespace) and matches(w.labels, self.label_selector)]
        kept_refs = {w.ref for w in keep}
        state.workloads = keep
        state.usage = {k: u for k, u in state.usage.items() if k.workload in kept_refs}
        return state

    def _wanted(self, namespace: str) -> bool:
        if self.namespaces is not None:
            return namespace in self.namespaces
        return namespace not in self.exclude

    @property
    def calls(self) -> dict[str, int]:
        return dict(getattr(self.inner, "calls", {}) or {})


# --------------------------------------------------------------------------- git


def _restrict(tree: Path, paths: tuple[str, ...]) -> Path:
    """Remove everything outside ``paths`` from an exported tree, except what their entry points render.

    ``spec.git.paths`` names this cluster's entry points (an overlay, a chart or a values file)
    or directories holding them; an overlay's base lives elsewhere and must stay for the proof
    to render it (:mod:`..actuation.entrypoints` says which files each entry point reads).
    """
    if not paths:
        return tree
    from ..actuation.entrypoints import entry_points
    files = {p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file() and not p.is_symlink()}
    needed: set[str] = set()
    for entry in entry_points(tree, files):
        if entry.kind != "terraform" and any(entry.path == p or entry.path.startswith(p + "/") or p in entry.inputs
                                             for p in paths):
            needed |= entry.inputs
    keep = [Path(p) for p in paths] + [Path(f) for f in needed]
    for item in sorted(tree.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        rel = item.relative_to(tree)
        inside = any(rel == k or k in rel.parents for k in keep)
        leads_to = any(rel in k.parents for k in keep)
        if inside or leads_to:
            continue
        if item.is_dir() and not item.is_symlink():
            shutil.rmtree(item, ignore_errors=True)
        else:
            item.unlink(missing_ok=True)
    return tree


def make_checkout(url: str, token: str | None, workdir: Path, paths: tuple[str, ...] = ()) -> Callable[[str], Path]:
    """base branch -> a fresh export of its files (clone kept in ``workdir/clone``, export in ``workdir/base``)."""
    from ..actuation.git import GitRepo

    def checkout(base_branch: str) -> Path:
        repo = GitRepo.open_or_clone(url, workdir / "clone", token)
        ref = repo.base_ref(base_branch)
        dest = workdir / "base"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        return _restrict(export_tree(repo.path, ref, dest), paths)

    return checkout


@dataclass
class Wiring:
    deps: LoopDeps
    reader: ScopedReader
    namespaces: list[str] | None
    secrets_read: list[str] = field(default_factory=list)


def _provider(policy: PolicySpec, token: str | None, workdir: Path) -> tuple[Any, str]:
    """(provider, clone URL) for the policy's git target."""
    from ..actuation.render import render_commit_message
    git = policy.git
    assert git is not None
    if git.provider == "Git":
        from ..actuation.providers import GitProvider
        return (GitProvider(git.repository, workdir / "publish", token, base_branch=git.base_branch,
                            commit_message=render_commit_message), git.repository)
    from ..actuation.github import GitHubProvider, default_git_url
    provider = GitHubProvider(git.repository, token or "", workdir=workdir / "publish", api_url=git.api_url,
                              base_branch=git.base_branch,
                              commit_message=render_commit_message)
    return provider, provider.git_url or default_git_url(git.api_url, git.repository)


def build_deps(policy: PolicySpec, api_client: Any, *, workdir: Path,
               approved: Callable[[], frozenset[str]] = lambda: frozenset(),
               secret_reader: Callable[..., str] = read_secret, cluster: str = "kubernetes",
               default_region: str = "us-east-1", config_map_reader: Callable[..., str] = read_config_map) -> Wiring:
    """Everything one run of ``policy`` talks to. Raises ConfigError (permanent) or DataSourceError (transient).

    ``cluster`` names this cluster in findings; ``default_region`` prices a policy without ``dataSources.aws``
    (both from the operator's configuration, ``config.OperatorConfig``).
    """
    from ..actuation.proof import Prover
    from ..sources.aws import AwsSource
    from ..sources.kubernetes import KubernetesSource
    from ..sources.state import LiveStateReader

    secrets: list[str] = []

    def secret(ref: SecretRef, where: str) -> str:
        secrets.append(f"{policy.namespace}/{ref.name}")
        return secret_reader(api_client, policy.namespace, ref, where=where, source=policy.source)

    namespaces = resolve_namespaces(api_client, policy.scope)
    if namespaces == []:
        raise ConfigError("the scope selects no namespace (check spec.scope.namespaces, namespaceSelector and "
                          "excludeNamespaces)", source=policy.source, field="spec.scope")
    source = prometheus_source(policy, secret)
    aws = AwsSource(policy.aws.region) if policy.aws else None
    region = policy.aws.region if policy.aws else default_region
    scope = prometheus_scope(namespaces, policy.scope, policy.prometheus.matchers)
    live = LiveStateReader(cluster=cluster, region=region,
                           kube=KubernetesSource(api_client), prometheus=source,
                           scope=scope, namespaces=namespaces, aws=aws, settings=policy.settings)
    reader = ScopedReader(live, namespaces, policy.scope.exclude, policy.scope.label_selector)
    deps = LoopDeps(read_state=reader, approved=approved, prices=_pricing(policy, region, api_client, workdir,
                                                                           config_map_reader),
                    read_costs=cost_reader(policy, source, scope, cluster=cluster, workdir=workdir))
    if policy.git is not None:
        token = secret(policy.git.token, "spec.git.tokenSecretRef") if policy.git.token else None
        workdir.mkdir(parents=True, exist_ok=True)
        deps.provider, clone_url = _provider(policy, token, workdir)
        deps.checkout = make_checkout(clone_url, token, workdir, policy.git.paths)
        deps.prover = Prover()      # every change set is proven by rendering before it is pushed
        # which entry point deploys each workload: the controllers' records (read by the LiveStateReader),
        # else spec.git.paths, else the finops.dev/source annotation (gitops.deploymap)
        deps.deploy = DeployPolicy(repository=policy.git.repository, paths=policy.git.paths)
    return Wiring(deps=deps, reader=reader, namespaces=namespaces, secrets_read=secrets)


def prometheus_source(policy: PolicySpec, secret: Callable[[SecretRef, str], str]) -> Any:
    """The policy's PrometheusSource; ``secret(ref, where)`` reads its bearer token, CA bundle and client
    certificate (when it has them)."""
    from ..sources.prometheus import PrometheusSource
    from ..sources.promtls import pem_file
    prom = policy.prometheus
    bearer = secret(prom.bearer_token, "spec.dataSources.prometheus.bearerTokenSecretRef") \
        if prom.bearer_token else None
    where = "spec.dataSources.prometheus.tls"
    verify: bool | str = not prom.insecure_skip_verify
    if prom.ca is not None:
        verify = pem_file(secret(prom.ca, f"{where}.caSecretRef"))
    client_cert = None
    if prom.client_cert is not None:
        pair = [pem_file(secret(SecretRef(prom.client_cert, key), f"{where}.clientCertSecretRef"))
                for key in ("tls.crt", "tls.key")]
        client_cert = (pair[0], pair[1])
    return PrometheusSource(prom.url, bearer_token=bearer, headers=dict(prom.headers) or None,
                            timeout=prom.timeout_seconds, verify_tls=verify, client_cert=client_cert,
                            recording_rules=prom.recording_rules, remote_read=prom.remote_read)


def _pricing(policy: PolicySpec, region: str, api_client: Any, workdir: Path,
             config_map_reader: Callable[..., str]) -> Pricing:
    """spec.pricing wired: the custom table read from its ConfigMap, live prices cached in the work directory."""
    from ..sources.awsprices import AwsPrices
    from ..sources.cost_cache import CostCache
    spec = policy.pricing
    table = config_map_reader(api_client, policy.namespace, spec.table, where="spec.pricing.configMapRef",
                              source=policy.source) if spec.table is not None else None
    live = AwsPrices(region, cache=CostCache(workdir / "aws-prices.json", ttl=timedelta(hours=24))) \
        if spec.live else None
    return policy_pricing(policy, region, table, live=live)
