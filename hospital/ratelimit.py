"""Per-device request rate limiting over the shared Redis (the process's cache without it)."""

from __future__ import annotations

import time

from django.core.cache import cache

from hospital import observability

KEY_PREFIX = "ww:rate"


def allow(key: str, per_second: int) -> tuple[bool, int]:
    """Fixed one-second windows: (allowed, seconds to wait before retrying)."""
    window = int(time.time())
    bucket = f"{KEY_PREFIX}:{key}:{window}"
    client = observability.redis_client()
    if client is None:
        cache.add(bucket, 0, timeout=3)
        count = cache.incr(bucket)
    else:
        pipe = client.pipeline(transaction=False)
        pipe.incr(bucket)
        pipe.expire(bucket, 3)
        count, _ = pipe.execute()
    if count > per_second:
        return False, 1
    return True, 0
