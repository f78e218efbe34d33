"""Fuzz: hostile custom resources on the real apiserver, and the real operator over whatever it accepts.

A namespace editor may write any FinOpsPolicy, Budget or SavingsOpportunity the CRD schemas let through
(and, with status rights, any status). From the schemas in ``crds/`` hypothesis draws 300+ objects per
kind (fixed seed: the same objects on every run), most of them made hostile (see
``tests/support/fuzz_crs.py``), and applies them all to the test kube-apiserver. Then ``finops run``
(a subprocess, as in production) watches the namespace; every accepted policy is asked to run
(``finops.dev/run-now``), including three valid "anchor" policies that own the fuzzed
SavingsOpportunity objects (their ledger is poisoned on purpose).

What must hold:
* every apiserver rejection (422) names a field of the kind;
* every accepted object reaches a final status in bounded time: a Budget Ready True/False; a policy
  InvalidSpec (naming a field of the kind) or, after its run, Ready True or False; a TransientError
  only when the policy points at an endpoint that is down on purpose (everything else the test
  serves is up, so any other failure is the spec's fault and must be permanent, not retried forever);
* the anchor policies still run to Ready True: one bad SavingsOpportunity never stops a policy;
* no traceback and no "Will retry" handler failure in the operator log; the operator stays up.
"""
from __future__ import annotations

import json
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from finops_operator.api.conditions import timestamp
from hypothesis import strategies as st

from tests.support.prometheus_server import closed_port_url
from tests.support.crd_strategies import first_field, generate, openapi_schema, schema_path_exists
from tests.support.fixtures_git import make_bare_remote
from tests.support.fixtures_operator import SHOP, OperatorProcess, seed_cluster
from tests.support.fuzz_crs import PLACEHOLDER, Env, body, budgets, materialize, metadata, opportunities, policies, \
    short
from tests.support.github_emulator import GitHubEmulator

pytestmark = pytest.mark.e2e
PER_KIND = 300
MIN_ACCEPTED = 50      # a generator that only makes rejected objects would not exercise the operator
SEED = 20261130
PLURALS = {"FinOpsPolicy": "finopspolicies", "Budget": "budgets", "SavingsOpportunity": "savingsopportunities"}
ANCHORS = ("fz-anchor-dry", "fz-anchor-git", "fz-anchor-gh")
OPERATOR_NS = "finops-fuzz"    # not the objects' namespace: their policies are confined to it, as a team's are
RUN = "fuzz-1"
FINAL_TIMEOUT = 240.0   # for all objects together
MAX_RUN_SECONDS = 60    # one run; more means unbounded work (e.g. a huge history window)
# "No data in the window" may be retried: data can still arrive (a new cluster, a scrape being fixed).
NO_DATA = re.compile(r"no \w+ series for namespaces")


@dataclass
class Applied:
    kind: str
    index: int
    body: dict[str, Any]
    hostile: list[str]
    accepted: bool = False
    rejections: list[dict[str, Any]] = field(default_factory=list)   # apiserver causes (field, message)

    @property
    def name(self) -> str:
        return self.body["metadata"]["name"]


@pytest.fixture(scope="module")
def fuzz_env(kube, e2e_prometheus, tmp_path_factory):
    """CRDs, the workloads (with Prometheus history), Secrets, a bare remote and the GitHub emulator."""
    files = seed_cluster(kube, e2e_prometheus.end, SHOP, OPERATOR_NS)   # run Leases live in OPERATOR_NS
    tmp = tmp_path_factory.mktemp("fuzz-crs")
    remote = make_bare_remote(tmp / "remote", files={**files, "README.md": "# gitops\n"})
    github = GitHubEmulator(make_bare_remote(tmp / "github", files=files), "acme/gitops").start()
    for name, value in (("gh-token", github.token), ("prom-token", "prom-secret"), ("empty-token", " ")):
        kube.kubectl("create", "secret", "generic", name, "-n", SHOP, f"--from-literal=token={value}",
                     check=False)
    env = Env(namespace=SHOP, prometheus=e2e_prometheus.url, closed=closed_port_url(), github=github.api_url,
              remote=str(remote), anchors=ANCHORS)
    yield env, tmp
    github.stop()
    kube.kubectl("delete", "finopspolicies,budgets,savingsopportunities", "--all", "-n", SHOP, "--wait=false",
                 check=False)


def anchor_policies(env: Env) -> list[dict[str, Any]]:
    """Three valid policies (DryRun, Git, GitHub) that own the fuzzed SavingsOpportunity objects."""
    base = {"schedule": "0 6 * * 1-5", "timeZone": "UTC",
            "dataSources": {"prometheus": {"url": env.prometheus, "historyWindow": "7d"}}}
    gits = {"fz-anchor-dry": None,
            "fz-anchor-git": {"provider": "Git", "repository": f"file://{env.remote}"},
            "fz-anchor-gh": {"provider": "GitHub", "repository": "acme/gitops", "apiUrl": env.github,
                             "tokenSecretRef": {"name": "gh-token"}, "reviewers": ["alice"]}}
    out = []
    for name, git in gits.items():
        spec = {**base, "mode": "DryRun"} if git is None else {**base, "mode": "PullRequest", "git": git}
        out.append({"apiVersion": "finops.dev/v1alpha1", "kind": "FinOpsPolicy",
                    "metadata": {"name": name, "namespace": env.namespace}, "spec": spec})
    return out


def generated(env: Env) -> list[Applied]:
    """PER_KIND objects of each kind, the same on every run (drawn for PLACEHOLDER, then given env's endpoints)."""
    stand_in = replace(PLACEHOLDER, anchors=env.anchors)
    out: list[Applied] = []
    for offset, (kind, plan) in enumerate((("FinOpsPolicy", policies(stand_in)), ("Budget", budgets(stand_in)),
                                           ("SavingsOpportunity", opportunities(stand_in)))):
        corpus = plan.corpus(PER_KIND, seed_value=SEED + 10 * offset)
        metas = generate(st.tuples(*(metadata(kind, i, stand_in) for i in range(len(corpus)))), 1,
                         seed_value=SEED + 10 * offset + 5)[0]
        for i, (fuzz, meta) in enumerate(zip(corpus, metas)):
            out.append(Applied(kind, i, materialize(body(kind, fuzz, meta), env), list(fuzz.hostile)))
    return out


# --------------------------------------------------------------------------- applying


def api(kube):
    import kubernetes
    config = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(kube.kubeconfig), client_configuration=config)
    return kubernetes.client.CustomObjectsApi(kubernetes.client.ApiClient(config))


def _causes(exc: Exception) -> list[dict[str, Any]]:
    try:
        data = json.loads(getattr(exc, "body", "") or "{}")
    except ValueError:
        data = {}
    causes = (data.get("details") or {}).get("causes") or []
    return causes or [{"field": "", "message": data.get("message") or str(exc)[:300],
                       "status": getattr(exc, "status", None)}]


def apply_one(client, item: Applied) -> Applied:
    """Create the object, then write its status (a namespace editor with status rights)."""
    from kubernetes.client.exceptions import ApiException
    obj = dict(item.body)
    status = obj.pop("status", None)
    plural = PLURALS[item.kind]
    ns = obj["metadata"]["namespace"]
    try:
        client.create_namespaced_custom_object("finops.dev", "v1alpha1", ns, plural, obj)
    except ApiException as exc:
        item.rejections = _causes(exc)
        return item
    item.accepted = True
    if status:
        try:
            client.patch_namespaced_custom_object_status("finops.dev", "v1alpha1", ns, plural, item.name,
                                                         {"status": status})
        except ApiException as exc:
            item.rejections = _causes(exc)
    return item


def apply_all(client, items: list[Applied]) -> None:
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda it: apply_one(client, it), items))


# --------------------------------------------------------------------------- waiting


def listed(client, kind: str, namespace: str) -> dict[str, dict[str, Any]]:
    items = client.list_namespaced_custom_object("finops.dev", "v1alpha1", namespace, PLURALS[kind])["items"]
    return {o["metadata"]["name"]: o for o in items}


def ready(obj: dict[str, Any]) -> dict[str, Any] | None:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if isinstance(c, dict) and c.get("type") == "Ready"), None)


def validated(obj: dict[str, Any]) -> bool:
    cond = ready(obj)
    return bool(cond) and cond.get("observedGeneration") == obj["metadata"].get("generation") \
        and cond.get("reason") not in (None, "")


def ran(obj: dict[str, Any], since: str) -> bool:
    """The run asked for at ``since`` is done: kopf writes the handled annotation and the status in two
    requests, so both must show it."""
    handled = (obj["metadata"].get("annotations") or {}).get("finops.dev/run-now-handled") == RUN
    return handled and str((obj.get("status") or {}).get("lastRunTime") or "") >= since


def wait_until(operator: OperatorProcess, what: str, pending, timeout: float, idle: float) -> set[str]:
    """Poll ``pending()`` (names not yet final) until it is empty, ``timeout`` passed, or it has not shrunk
    for ``idle`` seconds (what is stuck stays stuck); return what is left."""
    deadline = time.monotonic() + timeout
    left = pending()
    moved = time.monotonic()
    while left and time.monotonic() < min(deadline, moved + idle):
        assert operator.alive(), f"the operator exited while waiting for {what}:\n{operator.text()[-3000:]}"
        time.sleep(1.0)
        now = pending()
        if now != left:
            left, moved = now, time.monotonic()
    return left


# --------------------------------------------------------------------------- checks


def rejection_problems(items: list[Applied]) -> list[str]:
    schemas = {kind: openapi_schema(kind) for kind in PLURALS}
    out = []
    for item in items:
        for cause in item.rejections:
            if "some validation rules were not checked" in str(cause.get("message")) or cause.get("status") == 413:
                continue  # the apiserver's note next to the real cause; a body over its 3 MiB request limit
            where = cause.get("field") or ""
            if not schema_path_exists(schemas[item.kind], where):
                out.append(f"{item.kind} {item.name}: rejected without naming a field of the kind: "
                           f"{short(cause, 300)}; object {short(item.body)}")
    return out


ERRORS = ("Traceback (most recent call last)", "failed with an exception", "due to an unexpected error")


def traceback_problems(log: str) -> list[str]:
    """Tracebacks and kopf's error loops in the operator log (JSON records or plain text lines)."""
    out, lines = [], log.splitlines()
    for i, line in enumerate(lines):
        record = _json(line)
        if record is not None:
            text = f"{record.get('message', '')}\n{record.get('exc_info', '')}"
            if any(e in text for e in ERRORS):
                out.append(f"[{(record.get('object') or {}).get('name')}] {text}"[:2500])
        elif any(e in line for e in ERRORS):
            block = lines[i: i + 40]
            end = next((j for j, ln in enumerate(block[1:], 1) if re.match(r"^(\d{4}-\d\d-\d\d |\{)", ln)), len(block))
            out.append("\n".join(block[:end])[-2500:])
    return out


def _json(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def policy_problems(obj: dict[str, Any], item: Applied | None, env: Env, schema: dict[str, Any],
                    since: str) -> list[str]:
    name = obj["metadata"]["name"]
    cond = ready(obj) or {}
    reason, message = cond.get("reason"), str(cond.get("message") or "")
    what = f"FinOpsPolicy {name} ({short(item.body) if item else 'anchor'})"
    if reason == "InvalidSpec":
        where = first_field(message)
        if not where or not schema_path_exists(schema, where):
            return [f"{what}: InvalidSpec does not name a field of FinOpsPolicy: {message[:400]}"]
        return []
    if not ran(obj, since):
        return [f"{what}: run-now {RUN!r} not handled within {FINAL_TIMEOUT:.0f}s (Ready: {reason}: {message[:300]})"]
    if item is None and reason != "RunSucceeded":
        return [f"{what}: a poisoned ledger stopped the policy: {reason}: {message[:600]}"]
    seconds = (obj.get("status") or {}).get("lastRunDurationSeconds") or 0
    if seconds > MAX_RUN_SECONDS:
        return [f"{what}: the run took {seconds}s (more than {MAX_RUN_SECONDS}s)"]
    if reason == "TransientError" and not env.unreachable(obj) and not NO_DATA.search(message):
        return [f"{what}: a configuration error is retried as transient: {message[:600]}"]
    if reason not in ("RunSucceeded", "TransientError", "PermanentError"):
        return [f"{what}: unexpected Ready reason {reason}: {message[:300]}"]
    return []


def budget_problems(obj: dict[str, Any], item: Applied, schema: dict[str, Any]) -> list[str]:
    cond = ready(obj) or {}
    if not validated(obj):
        return [f"Budget {item.name}: no Ready condition for its generation ({short(item.body)})"]
    if cond.get("reason") == "InvalidSpec":
        where = first_field(str(cond.get("message") or ""))
        if not where or not schema_path_exists(schema, where):
            return [f"Budget {item.name}: InvalidSpec does not name a field: {cond.get('message')}"]
    return []


def report(problems: list[str], tmp: Path) -> str:
    """Root causes first (tracebacks, objects never handled), then their consequences (runs not done)."""
    rank = ("Traceback", "failed with an exception", "unexpected error", "never validated", "took",
            "retried as transient")
    problems = sorted(problems, key=lambda p: next((i for i, r in enumerate(rank) if r in p), len(rank)))
    (tmp / "fuzz-problems.txt").write_text("\n\n".join(problems))
    kinds = Counter(re.sub(r"fz-[a-z]+-\d+[-a]*|\(.*", "", p.split("\n")[0])[:90] for p in problems)
    head = "\n".join(f"{n:4d} x {k}" for k, n in kinds.most_common(20))
    return f"{len(problems)} problems (all in {tmp / 'fuzz-problems.txt'}):\n{head}\n\nfirst ones:\n" + \
        "\n\n".join(problems[:12])


# --------------------------------------------------------------------------- the test


def test_hostile_custom_resources_never_crash_or_stall_the_operator(kube, fuzz_env):
    env, tmp = fuzz_env
    started = time.monotonic()
    client = api(kube)
    for anchor in anchor_policies(env):
        client.create_namespaced_custom_object("finops.dev", "v1alpha1", env.namespace, "finopspolicies", anchor)
    items = generated(env)
    apply_all(client, items)
    counts = Counter(i.kind for i in items)
    accepted = Counter(i.kind for i in items if i.accepted)
    print(f"\napplied {dict(counts)}, accepted {dict(accepted)} in {time.monotonic() - started:.0f}s")
    assert all(counts[k] >= PER_KIND for k in PLURALS), counts
    assert all(accepted[k] >= MIN_ACCEPTED for k in PLURALS), f"too few accepted to exercise the operator: {accepted}"

    operator = OperatorProcess(env={**kube.environ(), "FINOPS_OPERATOR_NAMESPACE": OPERATOR_NS,
                                    "FINOPS_POD_NAME": "finops-fuzz-0",
                                    "FINOPS_ALLOW_LOCAL_GIT": "true",  # the Git remote is a bare repository here
                                    "PYTHONFAULTHANDLER": "1",  # a hung operator dumps its threads on SIGABRT
                                    "FINOPS_TIMER_INTERVAL_SECONDS": "3",
                                    "FINOPS_RETRY_BASE_SECONDS": "3600",  # one run per policy in the test
                                    "FINOPS_WORKDIR": str(tmp / "work"),
                                    "FINOPS_CLUSTER_NAME": "fuzz", "FINOPS_LOG_LEVEL": "INFO",
                                    "AWS_ENDPOINT_URL": env.closed, "AWS_ACCESS_KEY_ID": "AKIAFUZZ",
                                    "AWS_SECRET_ACCESS_KEY": "fuzz", "AWS_EC2_METADATA_DISABLED": "true",
                                    "GIT_AUTHOR_NAME": "finops", "GIT_AUTHOR_EMAIL": "finops@example.test",
                                    "GIT_COMMITTER_NAME": "finops", "GIT_COMMITTER_EMAIL": "finops@example.test"},
                               log=tmp / "operator.log", namespace=env.namespace).start()
    try:
        problems = exercise(client, operator, env, items)
        problems += traceback_problems(operator.text())
        assert operator.alive(), f"the operator died:\n{operator.text()[-3000:]}"
    finally:
        operator.stop()
    print(f"fuzz finished in {time.monotonic() - started:.0f}s")
    assert not problems, report(problems, tmp)


def exercise(client, operator: OperatorProcess, env: Env, items: list[Applied]) -> list[str]:
    """Wait for validation, ask every valid policy to run, wait for the runs; return what went wrong."""
    problems = rejection_problems(items)
    ns = env.namespace
    by_name = {(i.kind, i.name): i for i in items if i.accepted}
    wanted = {k: {n for (kind, n) in by_name if kind == k} for k in ("FinOpsPolicy", "Budget")}
    wanted["FinOpsPolicy"] |= set(ANCHORS)

    def not_validated(kind: str):
        return lambda: {n for n, o in listed(client, kind, ns).items() if n in wanted[kind] and not validated(o)}

    late = wait_until(operator, "validation", lambda: not_validated("FinOpsPolicy")() | not_validated("Budget")(),
                      FINAL_TIMEOUT, idle=45)
    problems += [f"{n}: never validated (no Ready condition for its generation)" for n in sorted(late)]
    valid = {n for n, o in listed(client, "FinOpsPolicy", ns).items()
             if n in wanted["FinOpsPolicy"] and (ready(o) or {}).get("reason") != "InvalidSpec"}
    since = timestamp(datetime.now(UTC) - timedelta(seconds=1))
    for name in sorted(valid):
        client.patch_namespaced_custom_object("finops.dev", "v1alpha1", ns, "finopspolicies", name,
                                              {"metadata": {"annotations": {"finops.dev/run-now": RUN}}})
    print(f"{len(valid)} policies valid for the operator; running them")
    wait_until(operator, "the runs", lambda: {n for n, o in listed(client, "FinOpsPolicy", ns).items()
                                              if n in valid and not ran(o, since)}, FINAL_TIMEOUT,
               idle=2 * MAX_RUN_SECONDS)
    schemas = {k: openapi_schema(k) for k in PLURALS}
    for name, obj in listed(client, "FinOpsPolicy", ns).items():
        if name in wanted["FinOpsPolicy"]:
            problems += policy_problems(obj, by_name.get(("FinOpsPolicy", name)), env, schemas["FinOpsPolicy"],
                                        since)
    for name, obj in listed(client, "Budget", ns).items():
        if ("Budget", name) in by_name:
            problems += budget_problems(obj, by_name[("Budget", name)], schemas["Budget"])
    return problems
