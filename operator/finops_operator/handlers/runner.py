"""`finops run`: start kopf with our handlers, liveness endpoint and metrics server."""
from __future__ import annotations

import argparse
import logging
import os
import random


def run_operator(args: argparse.Namespace) -> int:
    import kopf

    from .. import metrics
    from . import load  # noqa: F401  (registers the handlers)

    logging.basicConfig(level=os.environ.get("FINOPS_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    namespaces = list(args.namespace)
    # Peering replicas with equal priorities would all freeze; a random one elects a leader.
    priority = random.randint(1, 10_000) if args.peering else 0
    kopf.run(
        priority=priority,
        clusterwide=args.all_namespaces or not namespaces,
        namespaces=namespaces,
        standalone=args.standalone or args.peering is None,
        peering_name=args.peering,
        liveness_endpoint=args.liveness or None,
    )
    return 0
