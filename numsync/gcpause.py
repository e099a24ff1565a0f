"""Pause Python's cyclic garbage collector while bulk-building acyclic data.

Loading a large tenant creates millions of small containers (dicts, records, locations) that
all stay alive; each time the allocation count passes a threshold the collector walks them
again, for nothing: the desired tree and the export records hold no reference cycles. At
100,000 numbers that was a third of ``load_desired``. Reference counting still frees memory
as usual; the collector runs again once the block ends.

Re-enabled, the collector would still walk everything the block built, once per generation it
passes through (at 100,000 numbers ~0.2 s after the desired files, ~0.35 s after the export).
So when a block leaves many new objects behind, they are moved to the collector's permanent
generation (:func:`gc.freeze`) first: it never walks them again, and reference counting frees
them as usual. The price is that cyclic garbage existing at that moment is never collected —
none is expected from these loaders, and a big load happens a few times per command. Small
loads (tests, small tenants) leave everything to the collector as before.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: New container objects a block must leave behind for them to be frozen. Loading the desired
#: files leaves about 7 per number (66,000 for a 10,000-number tenant), the export about 2.
FREEZE_AFTER = 50_000


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic collector inside the block (re-enabled after, only if it was enabled).

    If the block left more than :data:`FREEZE_AFTER` new objects, they are frozen (see above).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_count()[0] > FREEZE_AFTER:  # objects created and still alive since the last collection
            gc.freeze()
        if enabled:
            gc.enable()
