"""`finops run`: start kopf with our handlers, logging, liveness endpoint and metrics server."""
from __future__ import annotations

import argparse
import random


def run_operator(args: argparse.Namespace) -> int:
    import kopf

    from .. import metrics
    from .logs import configure_logging
    from . import load  # noqa: F401  (registers the handlers)
    from .startup import CONFIG

    configure_logging(CONFIG.log_level.value, CONFIG.log_format.value)
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
