"""Per-device request rate limiting over the shared cache (Redis in production)."""

from __future__ import annotations

import time

from django.core.cache import cache


def allow(key: str, per_second: int) -> tuple[bool, int]:
    """Fixed one-second windows: (allowed, seconds to wait before retrying)."""
    window = int(time.time())
    bucket = f"rate:{key}:{window}"
    cache.add(bucket, 0, timeout=3)
    try:
        count = cache.incr(bucket)
    except ValueError:
        cache.set(bucket, 1, timeout=3)
        count = 1
    if count > per_second:
        return False, 1
    return True, 0
