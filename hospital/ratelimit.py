"""Per-device request rate limiting over the shared Redis (the process's cache without it).

Fixed one-second windows. A device request counts itself in the same Redis round trip that reads
the token's revocation epoch (hospital.devices), so `queue_hit` and `judge` are the two halves of
`allow` for a pipeline that carries other commands.
"""

from __future__ import annotations

import time

from django.core.cache import cache

from hospital import observability

KEY_PREFIX = "ww:rate"
#: A window's counter outlives its second by this much, then Redis drops it.
BUCKET_TTL_S = 3


def bucket(key: str) -> str:
    return f"{KEY_PREFIX}:{key}:{int(time.time())}"


def queue_hit(pipe, key: str) -> None:
    """Count one request of `key` in its current window; the pipeline's first reply of the two
    is the count (`judge` it)."""
    name = bucket(key)
    pipe.incr(name)
    pipe.expire(name, BUCKET_TTL_S)


def judge(count: int, per_second: int) -> int:
    """Seconds to wait before retrying: 0 while `count` is within the limit."""
    return 0 if count <= per_second else 1


def allow(key: str, per_second: int) -> tuple[bool, int]:
    """(allowed, seconds to wait before retrying), in a round trip of its own."""
    client = observability.redis_client()
    if client is None:
        name = bucket(key)
        cache.add(name, 0, timeout=BUCKET_TTL_S)
        count = cache.incr(name)
    else:
        pipe = client.pipeline(transaction=False)
        queue_hit(pipe, key)
        count, _ = pipe.execute()
    wait = judge(count, per_second)
    return wait == 0, wait
