"""Karpenter NodePools are read from the real apiserver only when their CRD is installed.

The CRD is the karpenter.sh/v1 NodePool shape cut to what the operator reads
(spec.disruption, spec.limits; the template is preserved as is), applied and
removed by this test; the NodePools are the fixture repository's manifests.
"""
from __future__ import annotations

import pytest

from finops_operator.api.wiring import api_client_from
from finops_operator.models import ConsolidationPolicy, DisruptionBudget, NodePool
from finops_operator.sources.kubernetes import KubernetesSource, build_inventory
from tests.support.renderers import GITOPS_FIXTURES
from tests.support.fixtures_operator import wait_established

pytestmark = pytest.mark.integration
CRD_NAME = "nodepools.karpenter.sh"
CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: nodepools.karpenter.sh
spec:
  group: karpenter.sh
  names: {kind: NodePool, listKind: NodePoolList, plural: nodepools, singular: nodepool, categories: [karpenter]}
  scope: Cluster
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [template]
              properties:
                template: {type: object, x-kubernetes-preserve-unknown-fields: true}
                weight: {type: integer, minimum: 1, maximum: 100}
                limits:
                  type: object
                  additionalProperties:
                    anyOf: [{type: integer}, {type: string}]
                    x-kubernetes-int-or-string: true
                disruption:
                  type: object
                  default: {consolidateAfter: 0s}
                  properties:
                    consolidateAfter: {type: string, pattern: '^(([0-9]+(s|m|h))+|Never)$'}
                    consolidationPolicy:
                      type: string
                      default: WhenEmptyOrUnderutilized
                      enum: [WhenEmpty, WhenEmptyOrUnderutilized]
                    budgets:
                      type: array
                      default: [{nodes: 10%}]
                      maxItems: 50
                      items:
                        type: object
                        required: [nodes]
                        properties:
                          nodes: {type: string, default: 10%, pattern: '^((100|[0-9]{1,2})%|[0-9]+)$'}
                          reasons: {type: array, items: {type: string, enum: [Underutilized, Empty, Drifted]}}
                          schedule: {type: string}
                          duration: {type: string}
                  required: [consolidateAfter]
"""


def test_nodepools_are_read_only_when_their_crd_exists(kube) -> None:
    client = api_client_from(str(kube.kubeconfig))
    source = KubernetesSource(client)
    try:
        kube.kubectl("delete", "crd", CRD_NAME, "--ignore-not-found", "--wait=true")
        assert source.node_pools() == []                    # no Karpenter: a 404, not an error
        kube.kubectl("apply", "-f", "-", input=CRD)
        wait_established(kube, [CRD_NAME])
        kube.kubectl("apply", "-f", str(GITOPS_FIXTURES / "karpenter" / "nodepool.yaml"))
        inventory = build_inventory({"NodePool": source.node_pools()})
        assert inventory.warnings == []
        assert sorted(inventory.node_pools, key=lambda p: p.name) == [
            NodePool("batch", ConsolidationPolicy.WHEN_EMPTY_OR_UNDERUTILIZED, "5m", {"cpu": "128"},
                     [DisruptionBudget("10%")]),                  # the API server's default budget
            NodePool("general", ConsolidationPolicy.WHEN_EMPTY, "30m", {"cpu": "400", "memory": "1600Gi"},
                     [DisruptionBudget("10%")])]
    finally:
        kube.kubectl("delete", "crd", CRD_NAME, "--ignore-not-found", "--wait=false", check=False)
        client.close()
