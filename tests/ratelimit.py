"""The device rate limit counts requests per clock second; tests that exceed it start at a fresh
second so that the window starts uncounted."""

from __future__ import annotations

import time


def next_window() -> int:
    """Waits for the next clock second, the rate limit's window, so that it starts uncounted
    (an attempt that ran into the next second has counted requests there)."""
    time.sleep(1 - time.time() % 1)
    return int(time.time())
