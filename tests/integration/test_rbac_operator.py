"""The operator's own code, authenticated as the chart's ServiceAccount, against the real apiserver.

Not ``kubectl auth can-i``: real requests through the same clients the operator uses
(KubernetesSource, OpportunityStore, read_secret, post_event). What it needs succeeds;
what it must never do (write workloads, read other Secrets, delete nodes) is refused,
and the refusal becomes an error that says how to grant what is missing.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from finops_operator.api.coordination import RunCoordinator, lease_name
from finops_operator.api.events import post_event
from finops_operator.api.opportunities import object_name
from finops_operator.api.policy import SecretRef
from finops_operator.api.store import OpportunityStore
from finops_operator.api.wiring import api_client_from, read_secret
from finops_operator.errors import ConfigError, DataSourceError
from finops_operator.ledger import Ledger
from finops_operator.models import Change, EditKind, EditTarget, Finding, FindingType, Target, TargetKind, WorkloadRef
from finops_operator.sources.kubernetes import KubernetesSource

from tests.support.fixtures_operator import install_chart

pytestmark = pytest.mark.integration
NS = "finops-rbac"
TEAM = "rbac-team"
RELEASE = "rbac"
T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def sa_client(kube):
    """An ApiClient authenticated with the chart ServiceAccount's token (release ``rbac``)."""
    for namespace in (NS, TEAM):
        if kube.kubectl("get", "namespace", namespace, check=False).returncode != 0:
            kube.kubectl("create", "namespace", namespace)
    sa = install_chart(kube, RELEASE, NS, "git.tokenSecret.name=finops-git-token",
                       f"rbac.secretRefs[0].namespace={TEAM}", "rbac.secretRefs[0].name=team-token")
    for namespace, name, value in ((NS, "finops-git-token", "git-s3cret"), (NS, "other", "nope"),
                                   (TEAM, "team-token", "team-s3cret")):
        kube.kubectl("create", "secret", "generic", name, "-n", namespace, f"--from-literal=token={value}",
                     check=False)
    client = api_client_from(str(sa))
    yield client
    client.close()


def test_reads_every_kind_the_inventory_needs(sa_client, kube):
    kube.kubectl("create", "deployment", "web", "--image=nginx", "-n", TEAM, check=False)
    source = KubernetesSource(sa_client)
    try:
        inventory = source.read(None)               # cluster-wide: one LIST per kind
    except DataSourceError as exc:
        pytest.fail(f"the chart's ServiceAccount cannot list what the inventory reads: {exc} "
                    "(the ClusterRole needs get/list on every kind in sources/kubernetes.py _LISTS, "
                    "including storage.k8s.io storageclasses)", pytrace=False)
    assert any(w.ref.name == "web" and w.ref.namespace == TEAM for w in inventory.workloads)
    scoped = KubernetesSource(sa_client).read([TEAM])
    assert [w.ref.name for w in scoped.workloads] == ["web"]


def finding() -> Finding:
    return Finding("cpu-rightsizing", FindingType.RIGHTSIZE_CPU,
                   Target(TargetKind.CONTAINER, "app", TEAM, WorkloadRef("Deployment", TEAM, "web")),
                   "Right-size web", [Change("resources.requests.cpu", "1", "200m")], 30.0, 0.9, 0.1,
                   EditTarget(EditKind.CONTAINER_RESOURCES))


def test_writes_its_ledger_objects_and_their_status(sa_client, kube):
    f = finding()
    ledger = Ledger()
    ledger.observe([f], {}, T0)
    store = OpportunityStore(sa_client, namespace=NS, policy="rbac-policy")
    first = store.save(ledger.opportunities, {f.id: f})
    assert first.ok and first.created == [object_name("rbac-policy", f.id)], first.failed
    ledger.proposed(f.id, "file:///remote.git#finops/x", None, "finops/x", "x", T0)
    second = store.save(ledger.opportunities, {f.id: f})
    assert second.ok and second.updated == first.created and second.created == []
    loaded = store.load()
    assert loaded.ledger.opportunities == ledger.opportunities and not loaded.unreadable
    names = kube.kubectl("get", "fsav", "-n", NS, "-o", "name").stdout.split()
    assert names.count(f"savingsopportunity.finops.dev/{first.created[0]}") == 1


def test_writes_policy_status_events_and_its_lease(sa_client, kube):
    import kubernetes
    kube.kubectl("apply", "-f", "-", input=(
        f"apiVersion: finops.dev/v1alpha1\nkind: FinOpsPolicy\nmetadata: {{name: p, namespace: {NS}}}\n"
        "spec: {mode: DryRun}\n"))
    custom = kubernetes.client.CustomObjectsApi(sa_client)
    custom.patch_namespaced_custom_object_status("finops.dev", "v1alpha1", NS, "finopspolicies", "p",
                                                 {"status": {"findings": 3}})
    assert kube.kubectl("get", "fpol", "p", "-n", NS, "-o", "jsonpath={.status.findings}").stdout == "3"
    body = custom.get_namespaced_custom_object("finops.dev", "v1alpha1", NS, "finopspolicies", "p")
    assert post_event(sa_client, body, type_="Normal", reason="RunSucceeded", message="rbac test event")
    assert "rbac test event" in kube.kubectl("get", "events", "-n", NS).stdout
    # The run Lease: claimed (created), renewed, taken back, refused to another holder, released, deleted.
    uid = body["metadata"]["uid"]
    mine = RunCoordinator(sa_client, namespace=NS, identity="replica-a", seconds=30)
    theirs = RunCoordinator(sa_client, namespace=NS, identity="replica-b", seconds=30)
    claim = mine.claim(NS, "p", uid, T0)
    assert claim is not None and claim.body["metadata"]["uid"] == uid, "claimed, with the policy read fresh"
    assert mine.renew(claim, T0 + timedelta(seconds=10))
    assert theirs.claim(NS, "p", uid, T0 + timedelta(seconds=20)) is None, "held: the other replica waits"
    assert mine.claim(NS, "p", uid, T0 + timedelta(seconds=20)) is not None, "its own Lease, taken back at once"
    taken = theirs.claim(NS, "p", uid, T0 + timedelta(seconds=200))
    assert taken is not None, "expired: the other replica takes over"
    theirs.release(taken)
    assert mine.claim(NS, "p", uid, T0 + timedelta(seconds=201)) is not None
    mine.forget(uid)
    assert kube.kubectl("get", "lease", lease_name(uid), "-n", NS, check=False).returncode != 0


def test_reads_only_the_secrets_it_was_given(sa_client):
    assert read_secret(sa_client, NS, SecretRef("finops-git-token"), where="spec.git.tokenSecretRef",
                       source="test") == "git-s3cret"
    assert read_secret(sa_client, TEAM, SecretRef("team-token"), where="spec.git.tokenSecretRef",
                       source="test") == "team-s3cret"
    with pytest.raises(ConfigError) as caught:
        read_secret(sa_client, NS, SecretRef("other"), where="spec.git.tokenSecretRef", source="FinOpsPolicy x/p")
    assert "may not read Secret finops-rbac/other (403)" in str(caught.value)
    assert "rbac.secretRefs" in str(caught.value) and caught.value.field == "spec.git.tokenSecretRef"
    with pytest.raises(ConfigError, match="may not read"):
        read_secret(sa_client, NS, SecretRef("team-token"), where="w", source="s")   # right name, wrong namespace


def refused(call) -> int:
    try:
        call()
    except Exception as exc:  # ApiException
        return getattr(exc, "status", 0)
    return 200


def test_is_refused_everything_else(sa_client, kube):
    import kubernetes
    kube.kubectl("apply", "-f", "-", input="apiVersion: v1\nkind: Node\nmetadata: {name: rbac-node}\n")
    apps = kubernetes.client.AppsV1Api(sa_client)
    core = kubernetes.client.CoreV1Api(sa_client)
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "evil", "namespace": TEAM},
                  "spec": {"selector": {"matchLabels": {"a": "b"}},
                           "template": {"metadata": {"labels": {"a": "b"}},
                                        "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    assert refused(lambda: apps.create_namespaced_deployment(TEAM, deployment, _preload_content=False)) == 403
    assert refused(lambda: apps.patch_namespaced_deployment("web", TEAM, {"spec": {"replicas": 5}},
                                                            _preload_content=False)) == 403
    assert refused(lambda: core.delete_node("rbac-node", _preload_content=False)) == 403
    assert refused(lambda: core.list_namespaced_secret(NS, _preload_content=False)) == 403
    assert refused(lambda: core.read_namespaced_secret("other", NS, _preload_content=False)) == 403
    assert refused(lambda: kubernetes.client.CoordinationV1Api(sa_client).create_namespaced_lease(
        TEAM, {"metadata": {"name": "x"}, "spec": {}}, _preload_content=False)) == 403
    assert refused(lambda: kubernetes.client.CustomObjectsApi(sa_client).delete_namespaced_custom_object(
        "finops.dev", "v1alpha1", NS, "savingsopportunities", "anything", _preload_content=False)) == 403
    assert kube.kubectl("get", "node", "rbac-node", "-o", "name").stdout.strip() == "node/rbac-node"
