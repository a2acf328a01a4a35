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
#: A claimed schedule whose task never ran (worker lost) is claimable again after this.
SCHEDULE_CLAIM_S = 30


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
    pipe = client().pipeline(transaction=False)
    shards = queue_publish(pipe, scanner, readings, received_at)
    if shards:
        pipe.execute()
    return shards


#: Appends one stream entry per shard and claims each shard's processing task, atomically and
#: as one command: a batch touches most shards, and this is the ingestion request's main cost.
APPEND_AND_CLAIM = """
local n = #KEYS / 2
local claimed = {}
for i = 1, n do
  redis.call('XADD', KEYS[i], 'MAXLEN', '~', ARGV[1], '*',
             's', ARGV[3], 't', ARGV[4], 'r', ARGV[4 + i])
  if redis.call('SET', KEYS[n + i], 1, 'NX', 'EX', ARGV[2]) then
    claimed[#claimed + 1] = i
  end
end
return claimed
"""


def _by_shard(readings: Iterable[RssiReading]) -> dict[int, list[list]]:
    by_shard: dict[int, list[list]] = defaultdict(list)
    for reading in readings:
        by_shard[shard_of(reading.tag)].append(
            [reading.ts, reading.tag, reading.rssi, reading.battery_pct]
        )
    return by_shard


def queue_publish(pipe, scanner: str, readings: Iterable[RssiReading], received_at: float):
    """Queue the stream appends of a batch on `pipe` (one entry per shard); returns the shards."""
    by_shard = _by_shard(readings)
    maxlen = settings.WARDWISE["STREAM_MAXLEN"]
    for shard, rows in by_shard.items():
        pipe.xadd(
            STREAM_KEY.format(shard),
            {"s": scanner, "t": repr(received_at), "r": json.dumps(rows, separators=(",", ":"))},
            maxlen=maxlen,
            approximate=True,
        )
    return sorted(by_shard)


def queue_publish_and_claim(
    pipe, scanner: str, readings: Iterable[RssiReading], received_at: float
) -> list[int]:
    """Queue the appends of a batch and the claims of its shards' tasks as one script call on
    `pipe`; its reply, passed to `claimed_shards`, names the shards this batch must queue."""
    by_shard = _by_shard(readings)
    shards = sorted(by_shard)
    if shards:
        keys = [STREAM_KEY.format(s) for s in shards] + [SCHEDULED_KEY.format(s) for s in shards]
        rows = [json.dumps(by_shard[s], separators=(",", ":")) for s in shards]
        args = [settings.WARDWISE["STREAM_MAXLEN"], SCHEDULE_CLAIM_S, scanner, repr(received_at)]
        # EVAL, not EVALSHA: the body is small, the server caches it, and there is no
        # "script not loaded" case after a Redis restart to recover from mid-pipeline.
        pipe.eval(APPEND_AND_CLAIM, len(keys), *keys, *args, *rows)
    return shards


def claimed_shards(shards: list[int], reply) -> list[int]:
    return [shards[index - 1] for index in reply]


def claim_schedule(shard: int) -> bool:
    """True when no processing task of the shard is queued yet (so the caller should queue one)."""
    return bool(client().set(SCHEDULED_KEY.format(shard), 1, nx=True, ex=SCHEDULE_CLAIM_S))


def release_schedule(shard: int) -> None:
    client().delete(SCHEDULED_KEY.format(shard))


RELEASE_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class ShardLock:
    """Exclusive ownership of a shard while a worker processes it (SET NX with a lease)."""

    def __init__(self, shard: int, lease_s: float = 60.0):
        self.key = LOCK_KEY.format(shard)
        self.lease_ms = int(lease_s * 1000)
        self.token = secrets.token_hex(8)

    def acquire(self) -> bool:
        return bool(client().set(self.key, self.token, nx=True, px=self.lease_ms))

    def release(self) -> None:
        """Compare-and-delete in one script: never drop a lease another worker took over."""
        client().eval(RELEASE_IF_OWNER, 1, self.key, self.token)


def stream_lengths() -> dict[int, int]:
    pipe = client().pipeline(transaction=False)
    for shard in range(shard_count()):
        pipe.xlen(STREAM_KEY.format(shard))
    return dict(enumerate(pipe.execute()))
