"""The operator's view of its custom resources: conditions, spec parsing, SavingsOpportunity mapping and storage.

Everything here is plain Python over dicts (the objects as the API returns them)
plus the kubernetes client at the edges (``store``, ``wiring``, ``events``);
only ``finops_operator.handlers`` imports kopf.
"""
