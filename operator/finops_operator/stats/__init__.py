"""Pure usage statistics (numpy, no I/O): the window and per-bucket summaries every source produces.

* :func:`needed_percentiles` - which percentiles the policy needs computed.
"""
from __future__ import annotations

from .needed import needed_percentiles

__all__ = ["needed_percentiles"]
