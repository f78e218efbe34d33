"""The savings ledger of one policy, kept as SavingsOpportunity objects through the kubernetes client.

``load()`` lists the policy's objects (one LIST with a label selector) and
rebuilds the :class:`~finops_operator.ledger.Ledger`; ``save()`` writes the
opportunities a run changed: create-or-patch by the deterministic name (a 409
on create means a previous, interrupted run made it: patch instead), then the
status through the ``/status`` subresource. Writing the same ledger twice
changes nothing and never duplicates, so a restart mid-run is safe.

One object failing to save does not stop the others; the failures are
returned so the run's status can say which.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import DataSourceError
from ..ledger import Opportunity
from ..models import Finding
from ..permissions import Rule
from . import opportunities as mapping

log = logging.getLogger(__name__)


@dataclass
class SaveResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)     # object name -> message

    @property
    def ok(self) -> bool:
        return not self.failed


def _status_of(exc: Exception) -> int | None:
    return getattr(exc, "status", None)


def _body_of(exc: Exception) -> str:
    body = getattr(exc, "body", None) or getattr(exc, "reason", None) or str(exc)
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    try:
        return json.loads(body).get("message") or str(body)
    except (ValueError, AttributeError):
        return str(body)


PERMISSIONS = (   # RBAC for the calls below (see finops_operator.permissions)
    Rule("cluster", "finops.dev", "savingsopportunities", ("list", "create", "patch"),
         "api/store.py OpportunityStore.list_objects, _save_one (create, then patch labels/annotations/title)"),
    Rule("cluster", "finops.dev", "savingsopportunities/status", ("patch",), "api/store.py OpportunityStore._save_one"),
)

class OpportunityStore:
    """SavingsOpportunity objects of one FinOpsPolicy (same namespace, labelled with the policy)."""

    def __init__(self, api_client: Any, *, namespace: str, policy: str, policy_uid: str | None = None):
        self.api_client = api_client
        self.namespace = namespace
        self.policy = policy
        self.policy_uid = policy_uid
        self.requests = 0

    @property
    def _api(self) -> Any:
        import kubernetes
        return kubernetes.client.CustomObjectsApi(self.api_client)

    @property
    def source(self) -> str:
        return f"SavingsOpportunities of FinOpsPolicy {self.namespace}/{self.policy}"

    def list_objects(self) -> list[dict[str, Any]]:
        """The policy's objects as the API returns them."""
        selector = f"{mapping.POLICY_LABEL}={mapping.label_value(self.policy)}"
        try:
            self.requests += 1
            found = self._api.list_namespaced_custom_object(mapping.GROUP, mapping.VERSION, self.namespace,
                                                            mapping.PLURAL, label_selector=selector)
        except Exception as exc:  # ApiException, urllib3 errors
            raise DataSourceError(f"cannot list SavingsOpportunity objects ({_status_of(exc) or type(exc).__name__}):"
                                  f" {_body_of(exc)}", source=self.source) from None
        return [item for item in found.get("items", [])
                if ((item.get("spec") or {}).get("policyRef") or {}).get("name") == self.policy]

    def load(self) -> mapping.LedgerRead:
        """The ledger as the objects hold it; unreadable objects are skipped and named, not fatal."""
        return mapping.read_ledger(self.list_objects())

    def approved(self, objects: Iterable[dict[str, Any]] | None = None) -> frozenset[str]:
        """Ids of opportunities a person approved (annotation finops.dev/approved: "true")."""
        items = self.list_objects() if objects is None else objects
        return frozenset(i for i in (mapping.opportunity_id(o) for o in items if mapping.is_approved(o)) if i)

    def save(self, changed: Iterable[Opportunity], findings: dict[str, Finding] | None = None,
             *, on_saved: Callable[[str], None] | None = None) -> SaveResult:
        """Create-or-patch each opportunity, then write its status. Never raises for one object."""
        result = SaveResult()
        findings = findings or {}
        seen: set[str] = set()
        for opp in changed:
            if opp.id in seen:
                continue
            seen.add(opp.id)
            name = mapping.object_name(self.policy, opp.id)
            try:
                created = self._save_one(opp, findings.get(opp.id))
            except Exception as exc:  # one bad object must not stop the others
                message = f"{_status_of(exc) or type(exc).__name__}: {_body_of(exc)}"
                log.warning("cannot save SavingsOpportunity %s/%s: %s", self.namespace, name, message)
                result.failed[name] = message
                continue
            (result.created if created else result.updated).append(name)
            if on_saved is not None:
                on_saved(name)
        return result

    def _save_one(self, opp: Opportunity, finding: Finding | None) -> bool:
        obj = mapping.to_object(opp, policy=self.policy, namespace=self.namespace, policy_uid=self.policy_uid,
                                finding=finding)
        name = obj["metadata"]["name"]
        status = obj.pop("status")
        created = True
        try:
            self.requests += 1
            self._api.create_namespaced_custom_object(mapping.GROUP, mapping.VERSION, self.namespace,
                                                      mapping.PLURAL, obj)
        except Exception as exc:
            if _status_of(exc) != 409:
                raise
            created = False
            self.requests += 1
            patch = {"metadata": {"labels": obj["metadata"]["labels"],
                                  "annotations": obj["metadata"]["annotations"]}}
            if "title" in obj["spec"]:
                patch["spec"] = {"title": obj["spec"]["title"]}
            self._api.patch_namespaced_custom_object(mapping.GROUP, mapping.VERSION, self.namespace,
                                                     mapping.PLURAL, name, patch)
        self.requests += 1
        self._api.patch_namespaced_custom_object_status(mapping.GROUP, mapping.VERSION, self.namespace,
                                                        mapping.PLURAL, name, {"status": status})
        return created
