"""Snapshot files: a cluster inventory plus raw usage series, in one ``.npz``.

Format ``finops-snapshot/v1``: a ``.npz`` as ``numpy.savez`` writes it, no pickles. ``cpu`` and ``memory``
are stored uncompressed so that :func:`load_snapshot` memory-maps them and scans read them row
block by row block (:meth:`Snapshot.row_blocks`: peak memory is one block, not the matrix); the
other members are deflated (level 1). Files with deflated ``cpu``/``memory`` (older writers) are
read into memory instead:

``meta``        uint8 array holding UTF-8 JSON::

                    {"format": "finops-snapshot/v1", "cluster": ..., "region": ...,
                     "window": {"start": ISO, "end": ISO, "stepSeconds": int},
                     "workloads": [...], "pods": [...], "nodes": [...], "pdbs": [...],
                     "volumes": [...], "nodeGroups": [...], "nodePools": [...],
                     "containers": [{"workload": {"kind", "namespace", "name"}, "container": ...}]}

                ``workloads`` .. ``nodePools`` are the :mod:`finops_operator.models`
                dataclasses as JSON (field names as in the dataclasses, enums by
                value, times as ISO 8601); ``containers`` gives the row order.
``timestamps``  int64 [n_points], epoch seconds, evenly spaced at the step,
                first = window start, last = window end.
``cpu``         float32 [n_containers, n_points], cores per replica (worst
                replica at each step); NaN = no sample (gap).
``memory``      float32 [n_containers, n_points], bytes per replica; NaN = gap.
``throttled``   float32 [n_containers], share of CFS periods throttled over the
                window; NaN = unknown (no CPU limit).

:func:`load_snapshot` checks all of that and raises :class:`SnapshotError`
naming the file and the field: sizes first (the file, each member and each array header
against :mod:`.safeio`'s snapshot limits, before anything is decompressed), then every
inventory number (finite, >= 0, at most :data:`MAX_NUMBER`), every usage value (finite
or NaN, >= 0) and every ``finops.dev/source`` hint (a path inside the repository); :func:`save_snapshot` runs the same checks
first and writes atomically, so a bad or half-written file never appears.

Modules: :mod:`.model` (the :class:`Snapshot`, array checks, row blocks), :mod:`.codec` (the
``meta`` JSON), :mod:`.files` (reading, mapping and writing the ``.npz``).
"""
from __future__ import annotations

from .codec import decode_meta, encode_meta
from .files import load_snapshot, save_snapshot
from .model import ARRAYS, BLOCK_ROWS, FORMAT, MAPPED, MAX_NUMBER, Snapshot, row_blocks

__all__ = ["ARRAYS", "BLOCK_ROWS", "FORMAT", "MAPPED", "MAX_NUMBER", "Snapshot", "decode_meta", "encode_meta",
           "load_snapshot", "row_blocks", "save_snapshot"]
