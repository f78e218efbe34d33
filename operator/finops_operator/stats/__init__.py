"""Pure usage statistics (numpy, no I/O): the window and per-bucket summaries every source produces.

* :func:`needed_percentiles` - which percentiles the policy needs computed;
* :func:`bucket_seconds`, :func:`bucket_ends`, :func:`grid` - the per-bucket grid of a window (:mod:`.buckets`);
* :func:`window_mask` - the columns a business-hours time window keeps;
* :func:`summarise` - the snapshot path, streaming row blocks (:mod:`.summary`);
* :func:`merge_replicas` / :class:`PodSeriesStats` - the worst replica, shared by every source;
* :func:`recent_quantile`, :func:`trend`, :func:`spikes` - the right-sizers' estimators over a
  :class:`~finops_operator.models.usage.DaySummary` (:mod:`.recency`, :mod:`.trend`, :mod:`.spikes`).
"""
from __future__ import annotations

from .buckets import BucketGrid, bucket_ends, bucket_seconds, grid
from .merge import Buckets, PodSeriesStats, merge_replicas
from .needed import needed_percentiles
from .quantiles import RowFigures, row_figures
from .recency import recent_quantile
from .spikes import Spikes, spikes
from .summary import blocks_of, summarise
from .timewindow import window_mask
from .trend import Trend, trend

__all__ = ["BucketGrid", "Buckets", "PodSeriesStats", "RowFigures", "Spikes", "Trend", "blocks_of", "bucket_ends",
           "bucket_seconds", "grid", "merge_replicas", "needed_percentiles", "recent_quantile", "row_figures",
           "spikes", "summarise", "trend", "window_mask"]
