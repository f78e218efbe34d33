"""Hostile FinOpsPolicy, Budget and SavingsOpportunity objects for the fuzz e2e test (tests/e2e/test_fuzz_crs.py).

The objects come from the CRD schemas (:mod:`tests.support.crd_strategies`) with
overrides that point their endpoints at the test's own servers (a real Prometheus,
the GitHub emulator, a bare git remote, a closed loopback port: nothing outside the
machine is ever contacted), and with domain values a hostile namespace editor would
try: huge and zero durations, percentiles the usage code does not precompute, CRLF
in headers, ``file://`` repositories, userinfo in URLs, traversal in paths and
branches, garbage in the annotations the operator (and kopf) keep state in.

:class:`Env` names the endpoints; :func:`policies`, :func:`budgets` and
:func:`opportunities` build the strategies; :func:`metadata` the names, labels and
annotations. ``unreachable`` tells which objects point at an endpoint that is down on
purpose: only those may end in a TransientError.
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from tests.support.crd_strategies import CONTROL, UNICODE, Fuzzed, Plan, openapi_schema

GARBAGE_JSON = ['{"estimated": "lots"}', "[1, 2]", "null", '{"pastCycles": 5}', '{"estimated": 1e999}',
                '{"estimated": NaN}', '{"confidence": -5, "risk": "high"}', "not json", '{"proposedSavings": {}}',
                '{"realized": [1]}', '{"baseline": true}', '{"estimated": "1e400"}', '"just a string"', "{" * 5000,
                '{"attempt": "x", "at": 5}', '{"attempt": 99999999999999999999, "at": "9999-12-31T23:59:59Z"}',
                '{"attempt": 1, "at": "0001-01-01T00:00:00Z"}', '{"attempt": -1, "at": "yesterday"}']
ODD_TEXT = ["", "now", "x" * 200_000, "a\r\nb", *UNICODE[:4], "\x00"]
CRONS = ["0 6 * * 1-5", "0 6 * * *", "30 7 * * MON-FRI", "@daily", "@hourly", "*/5 * * * *", "0 0 1 1 *",
         "59 23 31 12 7", "0 0 29 2 *"]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Pacific/Chatham", "Australia/Lord_Howe",
         "Etc/GMT+12", "America/Argentina/Buenos_Aires"]
BAD_ZONES = ["Europe/Nowhere", "Etc/GMT+99", "America/Argentina/Nope", "Asia/Calcutta_", "utc", "UTC "]


@dataclass(frozen=True)
class Env:
    namespace: str          # where the fuzzed objects live (its workloads have Prometheus history)
    prometheus: str         # the real Prometheus
    closed: str             # http://127.0.0.1:<port> where nothing listens
    github: str             # the GitHub emulator's API root
    remote: str             # a bare git repository (file path)
    anchors: tuple[str, ...]  # valid policies the SavingsOpportunity objects belong to

    @property
    def closed_port(self) -> int:
        return int(self.closed.rsplit(":", 1)[1])

    @property
    def github_host(self) -> str:
        return self.github.split("://", 1)[1]

    def unreachable(self, body: dict[str, Any]) -> bool:
        """Whether the object names an endpoint that is down on purpose (a TransientError is then right)."""
        text = json.dumps(body.get("spec"), default=str)
        markers = (str(self.closed_port), "[::1]", '"aws"', "127.0.0.1:0", "https://127.0.0.1",
                   "git@127.0.0.1")
        return any(m in text for m in markers)


# The strategies are built on these stand-in endpoints, so the drawn objects are the same on every run;
# materialize() then swaps in the real ports and paths.
PLACEHOLDER = Env(namespace="e2e-shop", prometheus="http://127.0.0.1:41111", closed="http://127.0.0.1:42222",
                  github="http://127.0.0.1:43333", remote="/fuzz-remote/gitops.git", anchors=())


def materialize(value: Any, env: Env) -> Any:
    """``value`` with PLACEHOLDER's ports and paths replaced by ``env``'s (keys and strings, recursively)."""
    if isinstance(value, dict):
        return {materialize(k, env): materialize(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [materialize(v, env) for v in value]
    if not isinstance(value, str):
        return value
    for fake, real in ((PLACEHOLDER.prometheus, env.prometheus), (PLACEHOLDER.closed, env.closed),
                       (PLACEHOLDER.github, env.github)):
        value = value.replace(fake.rsplit(":", 1)[1], real.rsplit(":", 1)[1])
    return value.replace(PLACEHOLDER.remote, env.remote)


# --------------------------------------------------------------------------- FinOpsPolicy


def _git(env: Env) -> st.SearchStrategy[dict[str, Any]]:
    common = {"labels": st.lists(st.sampled_from(["finops", "cost", "automated"]), max_size=2, unique=True),
              "reviewers": st.lists(st.sampled_from(["alice", "bob", "acme/platform"]), max_size=2, unique=True),
              "paths": st.lists(st.sampled_from(["apps", f"apps/{env.namespace}", "clusters"]), max_size=2,
                                unique=True),
              "baseBranch": st.sampled_from(["main", "main", "develop"]), "draft": st.booleans()}
    github = st.fixed_dictionaries({"repository": st.just("acme/gitops"), "apiUrl": st.just(env.github),
                                    "tokenSecretRef": st.sampled_from([{"name": "gh-token"},
                                                                       {"name": "gh-token", "key": "token"}])},
                                   optional={"provider": st.just("GitHub"), **common})
    # plain Git to a bare repository on this disk (the operator runs with FINOPS_ALLOW_LOCAL_GIT here)
    plain = st.fixed_dictionaries({"provider": st.just("Git"), "repository": st.just(f"file://{env.remote}")},
                                  optional=common)
    return st.one_of(github, plain)


def _policy_overrides(env: Env) -> dict[str, st.SearchStrategy[Any]]:
    prometheus = st.fixed_dictionaries(
        {"url": st.sampled_from([env.prometheus] * 8 + [env.prometheus + "/", env.closed])},
        optional={"historyWindow": st.sampled_from(["1d", "2d", "7d", "14d", "36h", "1w", "3d12h"]),
                  # the test Prometheus holds 5-minute samples ending 3 hours ago: finer steps or shorter
                  # windows find no data there (the hostile values try them)
                  "stepSeconds": st.sampled_from([300, 600, 900, 3600]),
                  "timeoutSeconds": st.integers(5, 60),
                  "headers": st.dictionaries(st.sampled_from(["X-Scope-OrgID", "X-Tenant"]),
                                             st.sampled_from(["team-a", "1"]), max_size=2),
                  "bearerTokenSecretRef": st.sampled_from([{"name": "prom-token"}, {"name": "missing-secret"}])})
    aws = st.fixed_dictionaries({"region": st.sampled_from(["us-east-1", "eu-central-1"])})
    sources = st.one_of(*[st.fixed_dictionaries({"prometheus": prometheus})] * 9,
                        st.fixed_dictionaries({"prometheus": prometheus, "aws": aws}))
    zone = st.sampled_from(ZONES)
    return {"spec.dataSources": sources, "spec.git": _git(env),
            "spec.mode": st.sampled_from(["DryRun"] * 5 + ["PullRequest"] * 2 + ["RequireApproval"]),
            "spec.schedule": st.sampled_from(CRONS), "spec.timeZone": zone,
            "spec.detectors.cpu.timeWindow.timeZone": zone, "spec.detectors.memory.timeWindow.timeZone": zone,
            "spec.guardrails.changeWindows[].timeZone": zone,
            "spec.scope.namespaces[]": st.sampled_from([env.namespace, env.namespace, "other"]),
            "spec.scope.excludeNamespaces[]": st.sampled_from(["kube-system", "other"]),
            # the CRD's cross-field rules, kept by the valid draws (the hostile ones break them on purpose)
            "spec.guardrails.approvalAboveDollars": st.integers(0, 500),
            "spec.guardrails.maxSingleChangeDollars": st.integers(500, 10_000_000),
            "spec.guardrails.maxNamespacesPerPr": st.integers(1, 10),
            "spec.guardrails.maxWorkloadsPerPr": st.integers(10, 500),
            "spec.detectors.nodes.maxFillPercent": st.integers(90, 100),
            "spec.detectors.nodes.maxCpuRequestPercent": st.integers(1, 89),
            "spec.detectors.nodes.maxMemoryRequestPercent": st.integers(1, 89),
            "status": st.just({})}


def _policy_hostile(env: Env) -> dict[str, list[Any]]:
    prom, port = "spec.dataSources.prometheus", env.prometheus.rsplit(":", 1)[1]
    git, emu = "spec.git", env.github_host
    windows = ["99999999999999w", "3000w", "0s", "0d", "1ms", "15s", "100000d", "1w1w", "2160h1ms", "52w", "1m"]
    return {
        f"{prom}.historyWindow": windows,
        f"{prom}.url": [f"http://user:s3cret@127.0.0.1:{port}", f"{env.prometheus}/{'a' * 2000}",
                        f"{env.prometheus}/nope", f"{env.prometheus}?x=\u00e9", f"{env.prometheus}#frag",
                        "file:///etc/passwd", f"http://[::1]:{env.closed_port}", f"https://127.0.0.1:{port}",
                        "http://127.0.0.1:0", "http://127.0.0.1:99999", f"HTTP://127.0.0.1:{port}",
                        f"http://localhost:{port}/%2e%2e/%2e%2e", f"{env.closed}/\r\nX: y"],
        f"{prom}.headers": [{"X-Scope-OrgID": "a\r\nInjected: 1"}, {"X Bad": "v"}, {"X-Tenant": "\u00e9\u202e"},
                            {"X-Nul": "\x00"}, {"Authorization": "Bearer x"}, {"Host": "evil.example"},
                            {"Content-Length": "999999"}, {f"x-{i}": "v" for i in range(17)},
                            {"Proxy-Authorization": "Basic eDp5"}, {"X-Long": "v" * 1024}, {"": "empty"},
                            {"X-Tab": "a\tb"}, {"X-Lf": "a\nb"}],
        f"{prom}.stepSeconds": [15, 3600, 14, 3601, 0],
        f"{prom}.timeoutSeconds": [1, 600, 0, 601],
        "spec.detectors.cpu.percentile": [51, 73, 89, 96, 98, 100, 50, 49, 101],
        "spec.detectors.memory.percentile": [51, 73, 89, 96, 98, 100, 50, 49, 101],
        "spec.detectors.cpu.timeWindow": [{"timeZone": z} for z in BAD_ZONES] + [{"startHour": 23, "endHour": 24}],
        f"{git}.repository": ["file:///etc", "file://", "file:///nonexistent/repo.git", "file:///dev/zero",
                              "file:///proc/self/environ", f"file://{env.remote}/../../..",
                              f"https://user:ghp_leak@127.0.0.1:{env.closed_port}/x.git",
                              f"ssh://git@127.0.0.1:{env.closed_port}/x.git", "git@127.0.0.1:x.git",
                              "--upload-pack=touch /tmp/pwned", "ext::sh -c touch% /tmp/pwned", "acme/gitops",
                              "../../etc/passwd", "a/" + "b" * 500, "acme/does-not-exist", "acme/gitops.git"],
        f"{git}.apiUrl": [f"{env.closed}", f"http://user:pass@{emu}", f"{env.github}/api/v3",
                          f"https://{emu}", f"{env.github}/{'a' * 2000}", "file:///etc/passwd", f"{env.github}/\u00e9"],
        f"{git}.paths": [["../../etc"], ["apps/../../etc"], ["/etc"], ["a" * 512], ["."], ["apps", "apps/"],
                         ["apps/\u202e"], ["~"], ["apps/*"], ["apps\\..\\.."]],
        f"{git}.baseBranch": ["does-not-exist", "main.lock", "-x", "a..b", "refs/heads/main", "HEAD", "@", "main/",
                              "--orphan", "main~1", "main^{tree}", "x" * 255],
        f"{git}.reviewers": [["finops-bot"], ["nobody"], ["alice", "alice"], ["a" * 80], ["-alice"]],
        f"{git}.labels": [["\u202efinops"], ["x" * 50], ["a,b"], [" "], ["finops", "finops"], ["x" * 51]],
        f"{git}.tokenSecretRef": [{"name": "missing-secret"}, {"name": "gh-token", "key": "nokey"},
                                  {"name": "empty-token"}, {"name": "../etc"}],
        "spec.schedule": ["0 0 31 2 *", "0 0 30 2 *", "* * * * *", "0 6 * * *\n", "@reboot", "", "60 * * * *",
                          "0 6 * * 8", "0 6 31 4 *", "0 6 * * * *"],
        "spec.timeZone": BAD_ZONES,
        "spec.guardrails.changeWindows": [[{"timeZone": "Europe/Nowhere"}], [{"start": "23:59", "end": "00:00"}],
                                          [{"start": "24:00"}], [{"days": [7]}], [{"start": "09:00", "end": "09:00"}]],
        "spec.scope.namespaces": [[env.namespace], ["other"], ["kube-system"], ["a" * 63], ["UPPER"]],
        "spec.scope.excludeNamespaces": [[env.namespace], []],
        "metadata.annotations": [{"finops.dev/retry": g} for g in GARBAGE_JSON] +
                                [{"finops.dev/run-now": v} for v in ODD_TEXT] +
                                [{k: "{"} for k in ("finops.dev/last-handled-configuration", "finops.dev/validate",
                                                    "finops.dev/tick", "finops.dev/run-now-handled")],
        "spec.scope.labelSelector": [{"matchExpressions": [{"key": "app", "operator": "In", "values": ["\u202e"]}]},
                                     {"matchLabels": {"a/b/c": "x"}}, {"matchExpressions": [{"key": "app",
                                                                                            "operator": "Exists"}]}],
    }


def _requiring(schema: dict[str, Any], path: tuple[str, ...], keys: list[str]) -> dict[str, Any]:
    """A copy of ``schema`` whose object at ``path`` requires ``keys`` too (so the draws always carry them)."""
    out = copy.deepcopy(schema)
    node = out
    for key in path:
        node = node["properties"][key]
    node["required"] = sorted(set(node.get("required") or ()) | set(keys))
    return out


def policies(env: Env) -> Plan:
    schema = _requiring(openapi_schema("FinOpsPolicy"), ("spec",), ["dataSources", "git"])
    return Plan(schema, _policy_overrides(env), _policy_hostile(env))


# --------------------------------------------------------------------------- Budget


def budgets(env: Env) -> Plan:
    schema = openapi_schema("Budget")
    hostile = {"spec.amount": ["0", "0.00", "1e5", "-5", "999999999999.99", "9999999999999", "1,000",
                               "\uff11\uff12", "12.345", " 12", "12 ", "NaN", "Infinity", "0x10", "1_000",
                               "0.01", "100000000000", "0.1", "1.00", "999999999999"],
               "spec.thresholds": [[{"percent": 100, "action": "Alert"}, {"percent": 80, "action": "Notify"}],
                                   [{"percent": 80, "action": "Notify"}] * 2, [{"percent": 0, "action": "Notify"}],
                                   [{"percent": 1001, "action": "Notify"}], [{"percent": 80, "action": "notify"}],
                                   [{"percent": 80}], [{"percent": 2 ** 63, "action": "Alert"}],
                                   [{"percent": 80, "action": "FreezeGrowth"}], [],
                                   [{"percent": 1000, "action": "FreezeGrowth"}],
                                   [{"percent": 100, "action": "Alert"}, {"percent": 100, "action": "Alert",
                                                                          "forecasted": True}],
                                   [{"percent": p, "action": "Notify"} for p in range(1, 11)]],
               "spec.currency": ["JPY", "KRW", "EUR", "usd", "XXX", "\u20ac"],
               "spec.startDate": ["2026-02-29", "2026-13-01", "26-01-01", "2026-01-01T00:00:00Z", ""],
               "spec.timeZone": ["CET", "Mars/Olympus", "", "UTC\n", "Europe/" + "x" * 80],
               "spec.freezeGrowth.hard": [{"requests.cpu": "-1"}, {"UPPER": "1"}, {"pods": "1e999"},
                                          {"a" * 300: "1"}, {"limits.memory": "16Gi\n"}, {"pods": "1e308"},
                                          {"requests.storage": "99999999999999999999Ei"}]}
    thresholds = st.sampled_from([[{"percent": 80, "action": "Notify"}, {"percent": 100, "action": "Alert"}],
                                  [{"percent": 50, "action": "Notify"}, {"percent": 90, "action": "Alert",
                                                                         "forecasted": True}],
                                  [{"percent": 1, "action": "Notify"}], [{"percent": 1000, "action": "Alert"}]])
    overrides = {"status": st.just({}), "spec.thresholds": thresholds,
                 "spec.amount": st.sampled_from(["5000", "1250.50", "1", "999999999999.99", "0.01", "12"]),
                 "spec.currency": st.just("USD"),
                 "spec.scope.namespaces[]": st.just(env.namespace)}
    hostile["metadata.annotations"] = [{"finops.dev/last-handled-configuration": g} for g in GARBAGE_JSON[:4]]
    return Plan(schema, overrides, hostile)


# --------------------------------------------------------------------------- SavingsOpportunity


def opportunities(env: Env) -> Plan:
    schema = _requiring(openapi_schema("SavingsOpportunity"), (), ["status"])
    schema = _requiring(schema, ("status",), ["state", "firstSeen", "lastSeen"])
    stamp = st.sampled_from(["2026-01-05T06:00:00Z", "2025-12-31T23:59:59Z", "2026-03-01T00:00:00+01:00"])
    overrides = {
        "spec.policyRef": st.sampled_from([{"name": a} for a in env.anchors]),
        "spec.target": st.one_of(
            st.fixed_dictionaries({"kind": st.just("container"), "name": st.sampled_from(["app", "postgres", "x"]),
                                   "namespace": st.just(env.namespace),
                                   "workload": st.fixed_dictionaries({"kind": st.sampled_from(["Deployment",
                                                                                               "StatefulSet"]),
                                                                      "name": st.sampled_from(["web", "db", "gone"])})}),
            st.fixed_dictionaries({"kind": st.sampled_from(["node-group", "volume"]),
                                   "name": st.sampled_from(["general", "vol-0123456789abcdef0", "pv-x"])})),
        "status.state": st.sampled_from(["Proposed"] * 3 + ["Detected", "NeedsApproval", "Merged", "Blocked",
                                         "Verified", "Rejected", "Superseded"]),
        "status.firstSeen": stamp, "status.lastSeen": stamp, "status.mergedAt": stamp, "status.verifiedAt": stamp,
        "status.history[].at": stamp,
        "status.pullRequest.branch": st.sampled_from(["finops/x", "finops/e2e-shop", "main"]),
        "status.pullRequest.url": st.sampled_from([f"{env.github}/acme/gitops/pull/1", f"file://{env.remote}#b"]),
        "status.conditions": st.just([]),
    }
    hostile = {"status.pullRequest.branch": ["../../etc", "-D", "--delete", "finops/" + "a" * 240, "finops/\u202e",
                                             "finops/x\n", "refs/heads/main", "HEAD", "main..finops", ""],
               "status.pullRequest.number": [0, 2 ** 31 - 1, 2 ** 31, -1],
               "status.pullRequest.url": ["file:///etc/passwd", "javascript:alert(1)", "http://u:p@127.0.0.1:1/x"],
               "status.estimatedMonthlySavings": ["999999999999999.99", "-0.00", "1e3", "NaN", "0.001"],
               "status.history": [[{"at": "2026-01-05T06:00:00Z", "to": "Proposed", "reason": "x"}] * 51,
                                  [{"at": "2026-01-05T06:00:00Z", "to": "Nowhere", "reason": ""}]],
               "status.changes": [[{"field": "x" * 256, "before": "\u202e", "after": "a\r\nb"}],
                                  [{"field": "resources.requests.cpu", "before": "1", "after": "-1"}] * 33],
               "status.firstSeen": ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-02-30T00:00:00Z"],
               "spec.target": [{"kind": "container", "name": "x"}, {"kind": "volume", "name": "../../x"},
                               {"kind": "node-group", "name": "\u202e" * 10}]}
    hostile["metadata.annotations"] = [{"finops.dev/ledger": g} for g in GARBAGE_JSON] + \
        [{"finops.dev/approved": v} for v in ("TRUE ", "yes", "\u202etrue")]
    return Plan(schema, overrides, hostile)


# --------------------------------------------------------------------------- metadata


def _name(prefix: str, i: int) -> st.SearchStrategy[str]:
    plain = f"{prefix}-{i:03d}"
    long = f"{plain}-" + "a" * (253 - len(plain) - 1)
    bad = [plain.upper(), f"{plain}-\u00e9", long + "a", f"{plain}.", f"{plain}_x", f"-{plain}"]
    return st.one_of(*[st.just(plain)] * 12, st.just(long), st.sampled_from(bad))


def metadata(kind: str, i: int, env: Env) -> st.SearchStrategy[dict[str, Any]]:
    """Name (mostly ``fz-<kind>-<i>``), labels and annotations, some of them hostile."""
    keys = {"FinOpsPolicy": ["finops.dev/run-now", "finops.dev/run-now-handled", "finops.dev/retry",
                             "finops.dev/last-handled-configuration", "finops.dev/validate", "finops.dev/tick"],
            "Budget": ["finops.dev/last-handled-configuration", "finops.dev/validate_budget"],
            "SavingsOpportunity": ["finops.dev/ledger", "finops.dev/ledger", "finops.dev/approved"]}[kind]
    values = st.sampled_from(GARBAGE_JSON + ODD_TEXT + CONTROL + ["true", "TRUE ", "yes"])
    annotations = st.dictionaries(st.sampled_from(keys), values, max_size=2)
    labels: st.SearchStrategy[dict[str, str]] = st.just({})
    if kind == "SavingsOpportunity":
        ids = st.sampled_from(["rs-cpu-1", "rs-cpu-1", "x" * 63, "", "bad id", f"opp-{i}", f"opp-{i}"])
        labels = st.fixed_dictionaries({"finops.dev/policy": st.sampled_from(env.anchors)},
                                       optional={"finops.dev/opportunity-id": ids})
    short = {"FinOpsPolicy": "fz-pol", "Budget": "fz-bud", "SavingsOpportunity": "fz-sav"}[kind]
    return st.fixed_dictionaries({"name": _name(short, i), "namespace": st.just(env.namespace),
                                  "annotations": annotations, "labels": labels})


def body(kind: str, fuzz: Fuzzed, meta: dict[str, Any]) -> dict[str, Any]:
    """The full object: apiVersion/kind, metadata, and the fuzzed spec/status (status is split off by the caller)."""
    out = {k: v for k, v in fuzz.body.items() if k not in ("apiVersion", "kind", "metadata")}
    extra = (fuzz.body.get("metadata") or {}).get("annotations") or {}
    meta = {**meta, "annotations": {**meta.get("annotations", {}), **extra}}
    meta = {k: v for k, v in meta.items() if v != {}}
    return {"apiVersion": "finops.dev/v1alpha1", "kind": kind, "metadata": meta, **out}


def short(value: Any, limit: int = 600) -> str:
    """A compact, printable rendering of an object for failure reports (huge strings elided)."""
    text = json.dumps(value, default=str, ensure_ascii=True)
    text = re.sub(r"([^\"\\]{40})[^\"\\]{200,}", r"\1...", text)
    return text if len(text) <= limit else text[:limit] + "..."
