"""The raw-reading bus: Redis streams, one per shard of the tag space.

Raw RSSI is not the product, so it never touches PostgreSQL: an accepted batch becomes one stream
entry per shard it touches (bounded by MAXLEN, so a stalled worker cannot fill memory), and the
Celery task of that shard turns readings into positions. Every reading of a tag goes to the same
shard, and one worker at a time owns a shard, which keeps per-tag order and filter state
consistent however many workers run.

Without REDIS_URL (the embedded demo) the same code runs against fakeredis, an in-process
implementation of the Redis protocol, so there is one code path.
"""

from __future__ import annotations

import json
import secrets
import zlib
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache

import redis
from django.conf import settings

from tracking.ingestion import RssiReading

STREAM_KEY = "ww:rssi:{}"
SCHEDULED_KEY = "ww:scheduled:{}"
LOCK_KEY = "ww:lock:{}"


def shard_count() -> int:
    return settings.WARDWISE["SHARDS"]


def shard_of(tag: str) -> int:
    return zlib.crc32(tag.encode()) % shard_count()


@lru_cache(maxsize=1)
def _client_for(url: str) -> redis.Redis:
    if url:
        return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
    import fakeredis

    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


def client() -> redis.Redis:
    return _client_for(settings.REDIS_URL)


def publish(scanner: str, readings: Iterable[RssiReading], received_at: float) -> list[int]:
    """Append readings to their shards' streams in one round trip; returns the shards touched."""
    by_shard: dict[int, list[list]] = defaultdict(list)
    for reading in readings:
        by_shard[shard_of(reading.tag)].append(
            [reading.ts, reading.tag, reading.rssi, reading.battery_pct]
        )
    if not by_shard:
        return []
    pipe = client().pipeline(transaction=False)
    for shard, rows in by_shard.items():
        pipe.xadd(
            STREAM_KEY.format(shard),
            {"s": scanner, "t": repr(received_at), "r": json.dumps(rows, separators=(",", ":"))},
            maxlen=settings.WARDWISE["STREAM_MAXLEN"],
            approximate=True,
        )
    pipe.execute()
    return sorted(by_shard)


def claim_schedule(shard: int) -> bool:
    """True when no processing task of the shard is queued yet (so the caller should queue one)."""
    return bool(client().set(SCHEDULED_KEY.format(shard), 1, nx=True, ex=30))


def release_schedule(shard: int) -> None:
    client().delete(SCHEDULED_KEY.format(shard))


class ShardLock:
    """Exclusive ownership of a shard while a worker processes it (SET NX with a lease)."""

    def __init__(self, shard: int, lease_s: float = 60.0):
        self.key = LOCK_KEY.format(shard)
        self.lease_ms = int(lease_s * 1000)
        self.token = secrets.token_hex(8)

    def acquire(self) -> bool:
        return bool(client().set(self.key, self.token, nx=True, px=self.lease_ms))

    def release(self) -> None:
        connection = client()
        with connection.pipeline() as pipe:
            try:
                pipe.watch(self.key)
                if pipe.get(self.key) == self.token.encode():
                    pipe.multi()
                    pipe.delete(self.key)
                    pipe.execute()
            except redis.WatchError:
                pass


def stream_lengths() -> dict[int, int]:
    pipe = client().pipeline(transaction=False)
    for shard in range(shard_count()):
        pipe.xlen(STREAM_KEY.format(shard))
    return dict(enumerate(pipe.execute()))
