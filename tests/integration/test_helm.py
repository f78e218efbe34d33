"""The Helm chart with the real helm binary: lint, template, schema, install, and RBAC.

``helm install`` goes into the real test kube-apiserver; the operator's
ServiceAccount token (TokenRequest) then asks the apiserver itself, through
``kubectl auth can-i``, what it may and may not do.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.fixtures_operator import wait_established

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHART = str(ROOT / "charts" / "finops-operator")
CRD_NAMES = tuple(yaml.safe_load(p.read_text())["metadata"]["name"] for p in sorted((ROOT / "crds").glob("*.yaml")))
CLUSTER = ["--set", "clusterName=test-cluster"]
PEERING_ON = ["--set", "peering.enabled=true", "--set", "replicaCount=2"]
MONITOR_ON = ["--set", "serviceMonitor.enabled=true", "--set", "serviceMonitor.labels.release=prom"]


def render(kube, *args: str, namespace: str = "finops-system") -> list[dict[str, Any]]:
    out = kube.helm("template", "finops", CHART, "-n", namespace, *CLUSTER, *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in by_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


@pytest.mark.parametrize("extra", [[], PEERING_ON + MONITOR_ON], ids=["defaults", "peering+servicemonitor"])
def test_helm_lint(kube, extra):
    proc = kube.helm("lint", "--strict", CHART, *CLUSTER, *extra)
    assert "1 chart(s) linted, 0 chart(s) failed" in proc.stdout, proc.stdout + proc.stderr


def test_template_defaults(kube):
    docs = render(kube)
    deploy = one(docs, "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert deploy["spec"]["strategy"] == {"type": "Recreate"} and deploy["spec"]["replicas"] == 1
    assert container["command"] == ["finops"] and container["args"][:2] == ["run", "--all-namespaces"]
    assert "--standalone" in container["args"] and "--metrics-port=9090" in container["args"]
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    env = {e["name"]: e for e in container["env"]}
    assert env["FINOPS_CLUSTER_NAME"]["value"] == "test-cluster" and env["FINOPS_LOG_FORMAT"]["value"] == "json"
    assert env["FINOPS_POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"health": 8080, "metrics": 9090,
                                                                            "reports": 8090}
    assert env["FINOPS_REPORTS_PORT"]["value"] == "8090"
    reports = one(docs, "Service", "finops-operator-reports")
    assert reports["spec"]["type"] == "ClusterIP" and reports["spec"]["ports"] == [
        {"name": "reports", "port": 8090, "targetPort": "reports", "protocol": "TCP"}]
    off = by_kind(render(kube, "--set", "reports.service.enabled=false"), "Service")
    assert [d["metadata"]["name"] for d in off] == ["finops-operator-metrics"]
    assert container["image"] == "ghcr.io/finops-operator/finops-operator:0.1.0"
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] and sc["runAsNonRoot"] and not sc["allowPrivilegeEscalation"]
    assert sc["capabilities"]["drop"] == ["ALL"] and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["resources"]["requests"] == {"cpu": "100m", "memory": "256Mi"}
    labels = deploy["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "finops-operator" and labels["app.kubernetes.io/instance"] == "finops"
    assert labels["app.kubernetes.io/managed-by"] == "Helm" and "app.kubernetes.io/version" in labels
    assert pod["serviceAccountName"] == one(docs, "ServiceAccount")["metadata"]["name"] == "finops-operator"
    assert not by_kind(docs, "ServiceMonitor") and not by_kind(docs, "ClusterKopfPeering")
    # No Secret access at all unless a token Secret is named.
    role = one(docs, "Role", "finops-operator")
    assert all("secrets" not in r["resources"] for r in role["rules"])
    assert [r for r in role["rules"] if r["resources"] == ["leases"]] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update", "delete"]}]


def test_template_renders_the_crds_from_the_one_source(kube):
    docs = render(kube)
    rendered = {d["metadata"]["name"]: d for d in by_kind(docs, "CustomResourceDefinition")}
    assert sorted(rendered) == sorted(CRD_NAMES)
    for path in (ROOT / "crds").glob("*.yaml"):
        source = yaml.safe_load(path.read_text())
        crd = rendered[source["metadata"]["name"]]
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert crd["metadata"]["labels"]["app.kubernetes.io/instance"] == "finops"
        assert crd["metadata"]["labels"]["app.kubernetes.io/component"] == "crd"
        assert crd["spec"] == source["spec"], f"{path.name}: the chart renders a different spec"
    off = render(kube, "--set", "crds.enabled=false")
    assert not by_kind(off, "CustomResourceDefinition")
    loose = by_kind(render(kube, "--set", "crds.keep=false"), "CustomResourceDefinition")
    assert loose and all("annotations" not in d["metadata"] for d in loose)


def test_template_with_peering_and_servicemonitor(kube):
    docs = render(kube, *PEERING_ON, *MONITOR_ON)
    deploy = one(docs, "Deployment")
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert deploy["spec"]["replicas"] == 2 and deploy["spec"]["strategy"]["type"] == "RollingUpdate"
    assert "--peering=finops-operator" in args and "--standalone" not in args
    assert one(docs, "ClusterKopfPeering")["metadata"]["name"] == "finops-operator"
    rules = one(docs, "ClusterRole", "finops-operator")["rules"]
    assert any(r["apiGroups"] == ["kopf.dev"] and r["resources"] == ["clusterkopfpeerings"] for r in rules)
    monitor = one(docs, "ServiceMonitor")
    service = one(docs, "Service", "finops-operator-metrics")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics" and monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()


def test_template_with_credentials(kube):
    docs = render(kube, "--set", "git.tokenSecret.name=gh-token", "--set", "aws.region=eu-central-1",
                  "--set", "aws.credentialsSecret.name=aws-keys",
                  "--set", "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::1:role/finops",
                  "--set", "rbac.secretRefs[0].namespace=payments", "--set", "rbac.secretRefs[0].name=pay-token")
    env = {e["name"]: e for e in one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["AWS_REGION"]["value"] == "eu-central-1"
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {"name": "aws-keys", "key": "AWS_ACCESS_KEY_ID"}
    assert "FINOPS_GIT_TOKEN_SECRET" not in env, "the token Secret is granted by RBAC, not passed to the operator"
    sa = one(docs, "ServiceAccount")
    assert sa["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/finops"}
    secret_rules = [r for r in one(docs, "Role", "finops-operator")["rules"] if r["resources"] == ["secrets"]]
    assert secret_rules == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["gh-token"], "verbs": ["get"]}]
    team = one(docs, "Role", "finops-operator-secret-pay-token")
    assert team["metadata"]["namespace"] == "payments" and team["rules"][0]["resourceNames"] == ["pay-token"]


@pytest.mark.parametrize("args, message", [
    (["--set", "imge.tag=1.0"], "imge"),
    (["--set", "image.pullPolicy=Sometimes"], "pullPolicy"),
    (["--set", "peering.enabled=yes"], "peering.enabled"),
    (["--set", "rbac.secretRefs[0].name=x"], "namespace"),
    (["--set", "replicaCount=2"], "replicaCount > 1 needs peering.enabled=true"),
    (["--set", "clusterName=bad name"], "clusterName"),
    (["--set", "serviceMonitor.enabled=true", "--set", "metrics.service.enabled=false"],
     "serviceMonitor.enabled needs metrics.service.enabled=true"),
], ids=["unknown-key", "enum", "type", "required", "replicas-without-peering", "bad-cluster-name",
        "monitor-without-service"])
def test_bad_values_are_rejected(kube, args, message):
    proc = kube.helm("template", "finops", CHART, *CLUSTER, *args, check=False)
    assert proc.returncode != 0, f"{args} accepted"
    assert message in proc.stderr, proc.stderr
    if message == "imge":
        assert "Additional property imge is not allowed" in proc.stderr or "additional properties" in proc.stderr


def test_cluster_name_is_required(kube):
    """Without clusterName every cluster would be called the same in PRs and the ledger: the install stops."""
    proc = kube.helm("template", "finops", CHART, check=False)
    assert proc.returncode != 0 and "clusterName is required" in proc.stderr, proc.stderr


# --------------------------------------------------------------------------- install + RBAC


def adopt_crds(kube, release: str, namespace: str) -> None:
    """CRDs applied earlier with kubectl (the README's first path) are handed over to Helm.

    Helm only manages objects carrying its ownership metadata; this is the documented
    way to move `kubectl apply -f crds/` CRDs under a release.
    """
    for name in CRD_NAMES:
        if kube.kubectl("get", "crd", name, check=False).returncode == 0:
            kube.kubectl("label", "--overwrite", "crd", name, "app.kubernetes.io/managed-by=Helm")
            kube.kubectl("annotate", "--overwrite", "crd", name, f"meta.helm.sh/release-name={release}",
                         f"meta.helm.sh/release-namespace={namespace}")


@pytest.fixture(scope="module")
def installed(kube):
    """The chart installed into the test apiserver, as a platform team would."""
    namespace = "finops-system"
    if kube.kubectl("get", "namespace", namespace, check=False).returncode != 0:
        kube.kubectl("create", "namespace", namespace)
    adopt_crds(kube, "finops", namespace)
    kube.helm("upgrade", "--install", "finops", CHART, "-n", namespace, *CLUSTER,
              "--set", "git.tokenSecret.name=finops-github-token",
              "--set", "rbac.secretRefs[0].namespace=default", "--set", "rbac.secretRefs[0].name=team-token")
    wait_established(kube, CRD_NAMES)
    sa = kube.sa_kubeconfig(namespace, "finops-operator")
    return kube, namespace, sa


def test_helm_install_creates_the_release(installed):
    kube, namespace, _ = installed
    status = json.loads(kube.helm("status", "finops", "-n", namespace, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    assert "kubectl annotate fsav" in status["info"]["notes"]
    deploy = json.loads(kube.kubectl("get", "deployment", "finops-operator", "-n", namespace, "-o", "json").stdout)
    assert deploy["spec"]["template"]["spec"]["serviceAccountName"] == "finops-operator"
    crd = json.loads(kube.kubectl("get", "crd", "finopspolicies.finops.dev", "-o", "json").stdout)
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == "finops"
    # The operator's own policies can be created once the chart is in.
    policy = {"apiVersion": "finops.dev/v1alpha1", "kind": "FinOpsPolicy",
              "metadata": {"name": "smoke", "namespace": namespace}, "spec": {"mode": "DryRun"}}
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump(policy))


def can_i(kube, sa: Path, *args: str) -> bool:
    proc = kube.kubectl("auth", "can-i", *args, kubeconfig=sa, check=False)
    assert proc.stdout.strip() in ("yes", "no"), proc.stdout + proc.stderr
    return proc.stdout.strip() == "yes"


ALLOWED = [
    ("list", "storageclasses.storage.k8s.io"),
    ("list", "deployments.apps", "--all-namespaces"), ("list", "statefulsets.apps", "-A"),
    ("list", "daemonsets.apps", "-A"), ("list", "replicasets.apps", "-A"), ("list", "cronjobs.batch", "-A"),
    ("list", "jobs.batch", "-A"), ("list", "horizontalpodautoscalers.autoscaling", "-A"), ("list", "pods", "-A"),
    ("list", "nodes"), ("list", "persistentvolumes"),
    ("list", "poddisruptionbudgets.policy", "-A"), ("list", "namespaces"),
    ("watch", "finopspolicies.finops.dev", "-A"), ("get", "finopspolicies.finops.dev", "-n", "shop"),
    ("patch", "finopspolicies.finops.dev", "--subresource=status", "-n", "shop"),
    ("patch", "budgets.finops.dev", "--subresource=status", "-n", "shop"),
    ("create", "savingsopportunities.finops.dev", "-n", "shop"), ("patch", "savingsopportunities.finops.dev", "-n", "shop"),
    ("watch", "savingsopportunities.finops.dev", "-A"),
    ("patch", "savingsopportunities.finops.dev", "--subresource=status", "-n", "shop"),
    ("create", "events", "-n", "shop"),
    ("create", "leases.coordination.k8s.io", "-n", "finops-system"),
    ("update", "leases.coordination.k8s.io/finops-run-1234", "-n", "finops-system"),
    ("delete", "leases.coordination.k8s.io/finops-run-1234", "-n", "finops-system"),
    ("get", "secrets/finops-github-token", "-n", "finops-system"), ("get", "secrets/team-token", "-n", "default"),
]
DENIED = [
    ("create", "deployments.apps", "-n", "shop"), ("patch", "deployments.apps", "-n", "shop"),
    ("update", "statefulsets.apps", "-n", "shop"), ("delete", "pods", "-n", "shop"),
    ("delete", "nodes"), ("patch", "nodes"), ("delete", "persistentvolumes"),
    ("get", "secrets/other", "-n", "finops-system"), ("list", "secrets", "-n", "finops-system"),
    ("get", "secrets", "-A"), ("watch", "secrets", "-n", "default"), ("get", "secrets/finops-github-token", "-n", "default"),
    ("create", "finopspolicies.finops.dev", "-n", "shop"), ("delete", "budgets.finops.dev", "-n", "shop"),
    ("create", "leases.coordination.k8s.io", "-n", "shop"), ("update", "leases.coordination.k8s.io", "-n", "shop"),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io"), ("create", "resourcequotas", "-n", "shop"),
    ("patch", "clusterkopfpeerings.kopf.dev"),
    # Granted once, used by no code (defect 15): least privilege takes them away.
    ("get", "pods", "-n", "shop"), ("watch", "pods", "-A"), ("watch", "deployments.apps", "-A"),
    ("get", "nodes"), ("watch", "nodes"), ("get", "persistentvolumes"), ("list", "persistentvolumeclaims", "-A"),
    ("get", "storageclasses.storage.k8s.io"), ("watch", "poddisruptionbudgets.policy", "-A"),
    ("get", "savingsopportunities.finops.dev", "-n", "shop"), ("update", "savingsopportunities.finops.dev", "-n", "shop"),
    ("delete", "savingsopportunities.finops.dev", "-n", "shop"),
    ("update", "finopspolicies.finops.dev", "--subresource=status", "-n", "shop"),
    ("create", "events.events.k8s.io", "-n", "shop"), ("patch", "events", "-n", "shop"),
]


def test_service_account_can_do_its_job(installed):
    kube, _, sa = installed
    refused = [" ".join(a) for a in ALLOWED if not can_i(kube, sa, *a)]
    assert refused == [], f"the operator's ServiceAccount is refused: {refused}"


def test_service_account_is_refused_the_rest(installed):
    kube, _, sa = installed
    granted = [" ".join(a) for a in DENIED if can_i(kube, sa, *a)]
    assert granted == [], f"the operator's ServiceAccount may do more than it needs: {granted}"


def test_service_account_really_reads_and_writes_what_it_should(installed):
    """Not just can-i: real requests with the token succeed or get 403."""
    kube, namespace, sa = installed
    assert kube.kubectl("get", "deployments", "-A", kubeconfig=sa).returncode == 0
    assert kube.kubectl("get", "finopspolicy", "smoke", "-n", namespace, kubeconfig=sa).returncode == 0
    proc = kube.kubectl("create", "deployment", "x", "--image=nginx", "-n", namespace, kubeconfig=sa, check=False)
    assert proc.returncode != 0 and "forbidden" in proc.stderr
    proc = kube.kubectl("get", "secrets", "-n", namespace, kubeconfig=sa, check=False)
    assert proc.returncode != 0 and "forbidden" in proc.stderr


def test_peering_release_installs_kopf_peering(kube):
    """A second release with peering: kopf's peering CRD comes from the chart's crds/, the object is created."""
    namespace = "finops-ha"
    if kube.kubectl("get", "namespace", namespace, check=False).returncode != 0:
        kube.kubectl("create", "namespace", namespace)
    kube.helm("upgrade", "--install", "finops-ha", CHART, "-n", namespace, "--set", "crds.enabled=false", *CLUSTER,
              *PEERING_ON)
    assert kube.kubectl("get", "clusterkopfpeering", "finops-operator", "-o", "name").stdout.strip() \
        == "clusterkopfpeering.kopf.dev/finops-operator"
    sa = kube.sa_kubeconfig(namespace, "finops-ha-finops-operator")
    assert can_i(kube, sa, "patch", "clusterkopfpeerings.kopf.dev/finops-operator")
    deploy = json.loads(kube.kubectl("get", "deployment", "finops-ha-finops-operator", "-n", namespace, "-o", "json").stdout)
    assert deploy["spec"]["replicas"] == 2 and deploy["spec"]["strategy"]["type"] == "RollingUpdate"


SMOKE_HANDLERS = '''
"""A stand-in operator: the kopf machinery plus the API calls finops-operator makes."""
import base64
import kopf
import kubernetes


@kopf.on.create("finops.dev", "v1alpha1", "finopspolicies", labels={"finops.dev/smoke": "true"})
def scanned(body, name, namespace, patch, **_):
    kubernetes.config.load_kube_config()
    core, co = kubernetes.client.CoreV1Api(), kubernetes.client.CustomObjectsApi()
    kubernetes.client.AppsV1Api().list_deployment_for_all_namespaces()
    core.list_node()
    token = core.read_namespaced_secret("finops-github-token", "finops-system").data["token"]
    try:
        core.read_namespaced_secret("someone-elses", "finops-system")
        other = "read"
    except kubernetes.client.ApiException as exc:
        other = str(exc.status)
    co.create_namespaced_custom_object("finops.dev", "v1alpha1", namespace, "savingsopportunities", {
        "apiVersion": "finops.dev/v1alpha1", "kind": "SavingsOpportunity",
        "metadata": {"name": name + "-opp", "namespace": namespace},
        "spec": {"detector": "cpu-rightsizing", "type": "rightsize-cpu", "policyRef": {"name": name},
                 "target": {"kind": "container", "name": "app", "namespace": namespace,
                            "workload": {"kind": "Deployment", "name": "api"}}}})
    co.patch_namespaced_custom_object_status("finops.dev", "v1alpha1", namespace, "savingsopportunities",
                                             name + "-opp", {"status": {"state": "Detected"}})
    kopf.info(body, reason="Scanned", message=f"token={base64.b64decode(token).decode()} other-secret={other}")
    patch.status["findings"] = 1
'''


def test_kopf_operator_works_with_the_chart_service_account(installed, kube_namespace, tmp_path):
    """kopf itself (watch, bookkeeping patch, status, events) plus the operator's calls, with the SA token."""
    kube, namespace, sa = installed
    kube.kubectl("apply", "-f", "-", input=kube.kubectl(
        "create", "secret", "generic", "finops-github-token", "-n", namespace, "--from-literal=token=s3cret",
        "--dry-run=client", "-o", "yaml").stdout)
    kube.kubectl("create", "secret", "generic", "someone-elses", "-n", namespace, "--from-literal=x=y")
    handlers = tmp_path / "smoke_handlers.py"
    handlers.write_text(SMOKE_HANDLERS)
    log = tmp_path / "kopf.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "kopf", "run", "--standalone", "--namespace", kube_namespace, "--verbose",
                                 str(handlers)], env=kube.environ(sa), stdout=out, stderr=subprocess.STDOUT)
    try:
        policy = {"apiVersion": "finops.dev/v1alpha1", "kind": "FinOpsPolicy",
                  "metadata": {"name": "p", "namespace": kube_namespace, "labels": {"finops.dev/smoke": "true"}},
                  "spec": {"mode": "DryRun"}}
        kube.kubectl("apply", "-f", "-", input=yaml.safe_dump(policy))
        deadline, events = time.monotonic() + 60, ""
        while time.monotonic() < deadline and "token=s3cret other-secret=403" not in events:
            assert proc.poll() is None, f"kopf exited:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)   # kopf posts events in the background, after the handler
            events = kube.kubectl("get", "events", "-n", kube_namespace, "-o", "json").stdout
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = log.read_text()
    assert "Handler 'scanned' succeeded" in text, text[-3000:]
    assert "token=s3cret other-secret=403" in events, text[-3000:]
    refused = [line for line in text.splitlines() if (" 403 " in line or "Forbidden" in line)
               and "/secrets/someone-elses" not in line]
    assert refused == [], "\n".join(refused)
    assert "/secrets/someone-elses HTTP/1.1\" 403" in text     # the one refusal we asked for
    opp = json.loads(kube.kubectl("get", "fsav", "p-opp", "-n", kube_namespace, "-o", "json").stdout)
    assert opp["status"]["state"] == "Detected"
    got = json.loads(kube.kubectl("get", "fpol", "p", "-n", kube_namespace, "-o", "json").stdout)
    assert got["status"]["findings"] == 1         # status patched through /status
    assert "kopf.zalando.org/last-handled-configuration" in got["metadata"]["annotations"]   # kopf's own patch
