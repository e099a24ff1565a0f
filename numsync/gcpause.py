"""Pause Python's cyclic garbage collector while bulk-building acyclic data.

Loading a large tenant creates millions of small containers (dicts, records, locations) that
all stay alive; each time the allocation count passes a threshold the collector walks them
again, for nothing: the desired tree and the export records hold no reference cycles. At
100,000 numbers that was a third of ``load_desired``. Reference counting still frees memory
as usual; the collector runs again once the block ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic collector inside the block (re-enabled after, only if it was enabled)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
