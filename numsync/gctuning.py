"""Garbage-collector tuning for a short-lived numsync process, chosen once by its entry point.

Loading a large tenant creates millions of small containers (dicts, records, locations) that
all stay alive and hold no reference cycles; with Python's default thresholds the cyclic
collector walks them again and again, for nothing (at 100,000 numbers that was a third of
loading the desired files). Library functions never touch the collector — that would change
it for every caller's process — so the command line (``numsync.cli.run``) and the benchmarks
call :func:`tune_for_batch_run` once, at start. Reference counting frees memory as before.
"""

from __future__ import annotations

import gc

#: Allocations between young collections: large enough that bulk loading rarely triggers one,
#: small enough that a long apply still collects the cycles httpx and ssl leave behind.
YOUNG_THRESHOLD = 200_000


def tune_for_batch_run() -> None:
    """Move the objects of start-up (modules, classes) out of the collector's view and raise its threshold."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
