"""One run of a policy at a time across operators: a ``coordination.k8s.io`` Lease per policy.

kopf peering keeps one replica active, but it is eventually consistent: during a
rolling update, a hand-over, or with a second operator started by mistake, two
processes can see the same policy due. Before a run, the operator claims the
policy's Lease (``finops-run-<policy uid>`` in the operator's namespace) and then
reads the policy again from the API, so a run-now that another replica has just
handled, or a schedule it has just advanced, is not run a second time:

    claim = coordinator.claim(namespace, name, uid, now)      # None: someone else holds it
    ... run, renewing every lease/3 seconds ...
    coordinator.finish(claim, now)                            # held ``seconds`` more, then free

The run's status is written (``record``) before the handler returns, and the
``run-now-handled``/``retry`` annotations by kopf just after: a crash between them
runs the policy again rather than losing its result. ``finish`` keeps the Lease
for another ``seconds`` instead of releasing it, so those annotations are in the
API before another replica may claim the policy; that replica then reads the
policy fresh and finds nothing due. A holder that dies stops renewing; its Lease expires
after ``seconds`` and the next tick of another replica takes over. A restarted
process in the same pod (same identity) takes its own Lease back at once.
Leases are deleted with their policy (``forget``).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import DataSourceError
from ..permissions import Rule
from ..scrub import scrub

log = logging.getLogger(__name__)
PREFIX = "finops-run-"
GROUP, VERSION, PLURAL = "finops.dev", "v1alpha1", "finopspolicies"

PERMISSIONS = (   # RBAC for the calls below (see finops_operator.permissions)
    Rule("operator-namespace", "coordination.k8s.io", "leases", ("get", "create", "update", "delete"),
         "api/coordination.py RunCoordinator: _read, _create, _replace, forget"),
    Rule("cluster", "finops.dev", "finopspolicies", ("get",), "api/coordination.py RunCoordinator._read_policy"),
    Rule("cluster", "finops.dev", "finopspolicies/status", ("patch",), "api/coordination.py RunCoordinator.record"),
)


def lease_name(uid: str) -> str:
    return f"{PREFIX}{uid}"[:253]


def _micro(at: datetime) -> str:
    """A MicroTime. Never a whole second: the typed kubernetes client (v37) turns the string into a datetime
    and back with ``isoformat()``, which drops ``.000000``, and the apiserver then refuses the Lease (400)."""
    at = at.astimezone(UTC)
    return at.replace(microsecond=at.microsecond or 1).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass
class Claim:
    """A held Lease and the policy object as read right after claiming it."""

    lease: dict[str, Any]
    body: dict[str, Any] | None

    @property
    def name(self) -> str:
        return self.lease["metadata"]["name"]


class RunCoordinator:
    """Claims, renews and frees per-policy Leases in ``namespace`` as ``identity``."""

    def __init__(self, api_client: Any, *, namespace: str, identity: str, seconds: int):
        self.api_client = api_client
        self.namespace = namespace
        self.identity = identity
        self.seconds = seconds

    def _leases(self) -> Any:
        import kubernetes
        return kubernetes.client.CoordinationV1Api(self.api_client)

    def claim(self, namespace: str, name: str, uid: str, now: datetime) -> Claim | None:
        """The policy's Lease, if free, expired or already ours, with the policy read fresh; else None."""
        lease = self._acquire(lease_name(uid), f"{namespace}/{name}", now)
        if lease is None:
            return None
        return Claim(lease=lease, body=self._read_policy(namespace, name))

    def renew(self, claim: Claim, now: datetime) -> bool:
        """Move renewTime to ``now``; False when the Lease was taken over (it had expired)."""
        spec = dict(claim.lease["spec"], renewTime=_micro(now), leaseDurationSeconds=self.seconds)
        written = self._replace({**claim.lease, "spec": spec})
        if written is None:
            return False
        claim.lease = written
        return True

    def finish(self, claim: Claim, now: datetime) -> None:
        """After a run: keep the Lease ``seconds`` more (kopf writes the status meanwhile)."""
        if not self.renew(claim, now):
            log.warning("the run Lease %s was taken over before the run finished", claim.name)

    def release(self, claim: Claim) -> None:
        """Nothing was run: free the Lease at once."""
        spec = {k: v for k, v in claim.lease["spec"].items() if k not in ("holderIdentity", "renewTime")}
        self._replace({**claim.lease, "spec": spec})

    def record(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Write a run's status (merge patch on the status subresource) before the run is marked handled."""
        import kubernetes
        try:
            kubernetes.client.CustomObjectsApi(self.api_client).patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, name, {"status": status}, _preload_content=False)
        except Exception as exc:
            raise self._error("write the status of", f"FinOpsPolicy {namespace}/{name}", exc) from None

    def forget(self, uid: str) -> None:
        """The policy is gone: delete its Lease (best effort)."""
        try:
            self._leases().delete_namespaced_lease(lease_name(uid), self.namespace, _preload_content=False)
        except Exception as exc:  # 404 (never ran) or a refusal: nothing else to do
            log.debug("lease %s not deleted: %s", lease_name(uid), getattr(exc, "status", exc))

    # ------------------------------------------------------------------ API

    def _acquire(self, name: str, policy: str, now: datetime) -> dict[str, Any] | None:
        current = self._read(name)
        if current is None:
            return self._create(name, policy, now)
        spec = current.get("spec") or {}
        holder = spec.get("holderIdentity")
        renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
        expires = renewed + timedelta(seconds=int(spec.get("leaseDurationSeconds") or 0)) if renewed else None
        if holder and holder != self.identity and expires is not None and expires > now:
            log.info("policy %s is being run by %s (lease until %s)", policy, holder, _micro(expires))
            return None
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if holder == self.identity else 1)
        acquired = spec.get("acquireTime") if holder == self.identity else _micro(now)
        return self._replace({**current, "spec": {"holderIdentity": self.identity, "leaseDurationSeconds": self.seconds,
                                                  "acquireTime": acquired, "renewTime": _micro(now),
                                                  "leaseTransitions": transitions}})

    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            response = self._leases().read_namespaced_lease(name, self.namespace, _preload_content=False)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise self._error("read", name, exc) from None
        return json.loads(response.data)

    def _create(self, name: str, policy: str, now: datetime) -> dict[str, Any] | None:
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": self.namespace,
                             "labels": {"app.kubernetes.io/managed-by": "finops-operator"},
                             "annotations": {"finops.dev/policy": policy}},
                "spec": {"holderIdentity": self.identity, "leaseDurationSeconds": self.seconds,
                         "acquireTime": _micro(now), "renewTime": _micro(now), "leaseTransitions": 0}}
        try:
            response = self._leases().create_namespaced_lease(self.namespace, body, _preload_content=False)
        except Exception as exc:
            if getattr(exc, "status", None) == 409:     # another replica created it first
                return None
            raise self._error("create", name, exc) from None
        return json.loads(response.data)

    def _replace(self, lease: dict[str, Any]) -> dict[str, Any] | None:
        """Write ``lease`` if nobody wrote it since we read it (resourceVersion); None on a conflict."""
        name = lease["metadata"]["name"]
        spec = {k: (_micro(_parse(v) or datetime.now(UTC)) if k in ("acquireTime", "renewTime") else v)
                for k, v in (lease.get("spec") or {}).items()}
        lease = {**lease, "spec": spec}
        try:
            response = self._leases().replace_namespaced_lease(name, self.namespace, lease, _preload_content=False)
        except Exception as exc:
            if getattr(exc, "status", None) == 409:
                return None
            raise self._error("update", name, exc) from None
        return json.loads(response.data)

    def _read_policy(self, namespace: str, name: str) -> dict[str, Any] | None:
        import kubernetes
        try:
            response = kubernetes.client.CustomObjectsApi(self.api_client).get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, _preload_content=False)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise self._error("read", f"FinOpsPolicy {namespace}/{name}", exc) from None
        return json.loads(response.data)

    def _error(self, verb: str, what: str, exc: Exception) -> DataSourceError:
        status = getattr(exc, "status", None)
        hint = " (the chart's Role grants get/create/update/delete on leases in the operator's namespace)" \
            if status == 403 else ""
        body = scrub(getattr(exc, "body", None) or "", limit=300) if status == 400 else ""
        return DataSourceError(f"cannot {verb} {what} ({status or type(exc).__name__}){hint}{': ' + body if body else ''}",
                               source=f"Lease in {self.namespace}")
