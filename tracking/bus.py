"""The raw-reading bus: Redis streams, one per shard of the tag space.

Raw RSSI is not the product, so it never touches PostgreSQL: an accepted batch becomes one stream
entry per shard it touches (bounded by MAXLEN, so a stalled worker cannot fill memory), and the
Celery task of that shard turns readings into positions. Every reading of a tag goes to the same
shard, and one worker at a time owns a shard, which keeps per-tag order and filter state
consistent however many workers run. A batch is accepted only while the workers are less than
MAX_BACKLOG_S behind on the shards it touches, so the backlog stays short of MAXLEN and nothing
accepted is trimmed before a worker saw it.

Without REDIS_URL (the embedded demo) the same code runs against fakeredis, an in-process
implementation of the Redis protocol, so there is one code path.
"""

from __future__ import annotations

import enum
import secrets
import zlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import orjson
import redis
from django.conf import settings

from tracking.ingestion import RssiReading

STREAM_KEY = "ww:rssi:{}"
SCHEDULED_KEY = "ww:scheduled:{}"
LOCK_KEY = "ww:lock:{}"
#: The last stream entry id the shard's workers processed; written by tracking.pipeline (which
#: imports this module), read here by the admission check.
CURSOR_KEY = "ww:cursor:{}"
#: A claimed schedule whose task never ran (worker lost) is claimable again after this.
SCHEDULE_CLAIM_S = 30


def shard_count() -> int:
    return settings.WARDWISE["SHARDS"]


def retired_shards() -> list[int]:
    """Shards at or above `shard_count()` whose streams still exist: left by a larger
    WARDWISE_SHARDS. Their readings were answered `202`, so they are drained all the same
    (tracking.tasks.kick_idle_shards) before their keys are deleted."""
    count = shard_count()
    prefix = STREAM_KEY.format("")
    shards = set()
    for key in client().scan_iter(match=STREAM_KEY.format("*"), count=1000):
        number = key.decode()[len(prefix) :]
        if number.isdigit() and int(number) >= count:
            shards.add(int(number))
    return sorted(shards)


def shard_of(tag: str, shards: int | None = None) -> int:
    """The tag's shard; a caller placing many tags passes `shard_count()` once."""
    return zlib.crc32(tag.encode()) % (shard_count() if shards is None else shards)


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


#: Keys: the stream of each touched shard, then its schedule claim, then its worker cursor, then
#: the batch id's key when the batch has one, then the key of each follow-up command. A batch whose
#: id is already stored is a resend: only the "if duplicate" follow-ups run and the reply carries
#: the stored answer. Otherwise, before appending, the oldest unprocessed entry of every touched
#: shard (the first after the cursor the workers commit, tracking.pipeline) is aged against the
#: server clock. If one is older than the limit, the batch is refused whole: nothing is appended
#: (not even its id, so its resend is a new batch), only the lagging shards' tasks are claimed (so
#: a shard whose task was lost is queued again) and the "if refused" follow-ups run. Otherwise the
#: appends, the claims and the "if admitted" follow-ups run (the batch's answer stored under its
#: id among them). One command either way: a batch touches most shards, and this is the ingestion
#: request's main cost. Reply: {claimed shard indexes, the index of the shard most behind or 0
#: when admitted, its lag in ms, the replies of the follow-ups that ran[, the stored answer of a
#: resent batch]}.
APPEND_AND_CLAIM = """
local unpack = unpack or table.unpack
local n, has_batch = tonumber(ARGV[6]), tonumber(ARGV[7])

local function follow_ups(group)
  local replies, key, arg = {}, 3 * n + has_batch, 8 + n
  while arg <= #ARGV do
    local count = tonumber(ARGV[arg + 1])
    key = key + 1
    if ARGV[arg] == group then
      local command = {ARGV[arg + 2], KEYS[key]}
      for j = 1, count do
        command[j + 2] = ARGV[arg + 2 + j]
      end
      replies[#replies + 1] = redis.call(unpack(command))
    end
    arg = arg + 3 + count
  end
  return replies
end

if has_batch == 1 then
  local stored = redis.call('GET', KEYS[3 * n + 1])
  if stored then
    return {{}, 0, 0, follow_ups('d'), stored}
  end
end
local claimed = {}
local limit_ms = tonumber(ARGV[5])
if limit_ms > 0 and n > 0 then
  local clock = redis.call('TIME')
  local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  local lagging, worst, worst_ms = {}, 0, 0
  for i = 1, n do
    local cursor = redis.call('GET', KEYS[2 * n + i]) or '0-0'
    local oldest = redis.call('XRANGE', KEYS[i], '(' .. cursor, '+', 'COUNT', 1)[1]
    if oldest then
      local lag_ms = now_ms - tonumber(string.match(oldest[1], '^%d+'))
      if lag_ms > limit_ms then
        lagging[#lagging + 1] = i
        if lag_ms > worst_ms then
          worst, worst_ms = i, lag_ms
        end
      end
    end
  end
  if worst > 0 then
    for _, i in ipairs(lagging) do
      if redis.call('SET', KEYS[n + i], 1, 'NX', 'EX', ARGV[2]) then
        claimed[#claimed + 1] = i
      end
    end
    return {claimed, worst, worst_ms, follow_ups('r')}
  end
end
for i = 1, n do
  redis.call('XADD', KEYS[i], 'MAXLEN', '~', ARGV[1], '*',
             's', ARGV[3], 't', ARGV[4], 'r', ARGV[7 + i])
  if redis.call('SET', KEYS[n + i], 1, 'NX', 'EX', ARGV[2]) then
    claimed[#claimed + 1] = i
  end
end
return {claimed, 0, 0, follow_ups('a')}
"""


def _by_shard(readings: Iterable[RssiReading]) -> dict[int, list[list]]:
    by_shard: dict[int, list[list]] = defaultdict(list)
    shards = shard_count()
    for reading in readings:
        by_shard[shard_of(reading.tag, shards)].append(
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
            {"s": scanner, "t": repr(received_at), "r": orjson.dumps(rows)},
            maxlen=maxlen,
            approximate=True,
        )
    return sorted(by_shard)


def follow_up() -> redis.client.Pipeline:
    """A recorder for commands that must run only if a batch is admitted (its answer, its counts),
    only if it is refused, or only if it is a resend: queue them with the usual pipeline methods
    and pass it to `queue_publish_and_claim`, which runs them inside the append script. Never
    executed itself. Single-key commands only (the key is the first argument)."""
    return client().pipeline(transaction=False)


def _follow_up_commands(recorder, group: str, keys: list, args: list) -> None:
    for command, _options in recorder.command_stack if recorder is not None else []:
        name, key, *rest = command
        keys.append(key)
        args += [group, len(rest), name, *rest]


def queue_publish_and_claim(
    pipe,
    scanner: str,
    readings: Iterable[RssiReading],
    received_at: float,
    *,
    batch_key: str | None = None,
    if_admitted: redis.client.Pipeline | None = None,
    if_refused: redis.client.Pipeline | None = None,
    if_duplicate: redis.client.Pipeline | None = None,
) -> list[int]:
    """Queue the idempotency check of `batch_key`, the admission check, the appends of a batch,
    the claims of its shards' tasks and the follow-up commands (see `follow_up`) as one script
    call on `pipe`; its reply, passed to `read_handoff`, says whether the batch was a resend
    (`batch_key` exists: its value is the stored answer), admitted, and which shards it must
    queue. The caller stores the answer under `batch_key` with an "if admitted" follow-up."""
    by_shard = _by_shard(readings)
    shards = sorted(by_shard)
    keys = [STREAM_KEY.format(s) for s in shards]
    keys += [SCHEDULED_KEY.format(s) for s in shards]
    keys += [CURSOR_KEY.format(s) for s in shards]
    if batch_key is not None:
        keys.append(batch_key)
    args = [
        settings.WARDWISE["STREAM_MAXLEN"],
        SCHEDULE_CLAIM_S,
        scanner,
        repr(received_at),
        max(0, round(settings.WARDWISE["MAX_BACKLOG_S"] * 1000)),
        len(shards),
        0 if batch_key is None else 1,
    ]
    args += [orjson.dumps(by_shard[s]) for s in shards]
    _follow_up_commands(if_admitted, "a", keys, args)
    _follow_up_commands(if_refused, "r", keys, args)
    _follow_up_commands(if_duplicate, "d", keys, args)
    # EVAL, not EVALSHA: the body is small, the server caches it, and there is no
    # "script not loaded" case after a Redis restart to recover from mid-pipeline.
    pipe.eval(APPEND_AND_CLAIM, len(keys), *keys, *args)
    return shards


@dataclass(frozen=True)
class Handoff:
    """What the append script did with a batch."""

    #: Shards whose processing task the batch claimed: the caller must queue them.
    claimed: list[int]
    #: The touched shard furthest behind when the batch was refused (None: admitted).
    lagging: int | None = None
    #: How far behind that shard is: age of its oldest unprocessed entry, in seconds.
    lag_s: float = 0.0
    #: Replies of the follow-up commands that ran (those of the batch's outcome).
    replies: list = field(default_factory=list)
    #: The answer stored under the batch's id when it is a resend (None: a new batch).
    stored: bytes | None = None

    @property
    def duplicate(self) -> bool:
        return self.stored is not None

    @property
    def admitted(self) -> bool:
        return self.lagging is None and self.stored is None


def read_handoff(shards: list[int], reply) -> Handoff:
    claimed, lagging, lag_ms, replies, *stored = reply
    return Handoff(
        claimed=[shards[index - 1] for index in claimed],
        lagging=shards[lagging - 1] if lagging else None,
        lag_s=lag_ms / 1000.0,
        replies=list(replies),
        stored=stored[0] if stored else None,
    )


def claim_schedule(shard: int) -> bool:
    """True when no processing task of the shard is queued yet (so the caller should queue one)."""
    return bool(client().set(SCHEDULED_KEY.format(shard), 1, nx=True, ex=SCHEDULE_CLAIM_S))


class NextDrain(enum.IntEnum):
    """What a shard needs after a drain, decided by `queue_after_drain`'s script."""

    NONE = 0
    NOW = 1  # entries arrived after the cursor
    AFTER_ALLOWANCE = 2  # only readings held for the late allowance are left


AFTER_DRAIN = """
redis.call('DEL', KEYS[1])
local cursor = redis.call('GET', KEYS[2]) or '0-0'
local next_drain = 0
if #redis.call('XRANGE', KEYS[3], '(' .. cursor, '+', 'COUNT', 1) > 0 then
  next_drain = 1
elseif ARGV[1] == '1' then
  next_drain = 2
end
if next_drain > 0 then
  redis.call('SET', KEYS[1], 1, 'EX', ARGV[2])
end
return next_drain
"""


def queue_after_drain(pipe, shard: int, held: bool) -> None:
    """The end of a drain as one script on the caller's pipeline: the shard's schedule is
    released, and claimed again for the caller when entries arrived after the cursor or, with
    `held`, readings wait for the late allowance. One script, so a batch arriving meanwhile
    either finds the claim or is found by the check; read the reply with `NextDrain`."""
    pipe.eval(
        AFTER_DRAIN,
        3,
        SCHEDULED_KEY.format(shard),
        CURSOR_KEY.format(shard),
        STREAM_KEY.format(shard),
        int(held),
        SCHEDULE_CLAIM_S,
    )


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
