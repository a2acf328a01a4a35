"""Garbage collection for the long-running pipeline workers.

A worker keeps the state of every tag it drains in memory, on top of Django and the site: a few
hundred thousand long-lived objects. With CPython's default thresholds (700, 10, 10) a drain's
allocations set off a full collection, which walks all of them (about 0.2 s each time, a pause
in the drain), every few drains: without the tuning below a worker needed a tenth to a fifth
more CPU per reading (`python -m bench.worker --drain-every 2 --compare-env
WARDWISE_GC_THRESHOLDS=off`, docs/performance.md). Refcounting frees almost everything the
pipeline drops; the collector is only needed for reference cycles, which are rare here, so
collecting less often costs little memory.
"""

from __future__ import annotations

import gc


def tune(thresholds: tuple[int, int, int] | None) -> int:
    """Freeze what the process holds after start-up (the collector never walks it again, and a
    prefork pool's children share its pages instead of copying them when the collector touches
    them) and set the thresholds. Returns the number of objects frozen; None leaves the
    collector as CPython set it."""
    if thresholds is None:
        return 0
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
    return gc.get_freeze_count()
