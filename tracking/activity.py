"""Scanner activity (batches, reading counts) on the health rows without a database write per
batch: every batch adds its counts to a Redis hash in the same round trip that appends its
readings, and the counts are written to `ScannerHealth` at most every SCANNER_HEALTH_WRITE_S per
scanner (by the batch that finds a write due) and by the periodic offline check. A failed write
puts the counts back, so none are lost while Redis stays up.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from django.conf import settings
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Greatest

from tracking import bus
from tracking.models import ScannerHealth

ACTIVITY_KEY = "ww:activity:{}"
WRITE_DUE_KEY = "ww:activity-due:{}"
ACTIVE_SCANNERS_KEY = "ww:activity-scanners"

log = logging.getLogger(__name__)


def queue_batch(pipe, scanner_pk: int, accepted: int, rejected: int, at: float) -> None:
    """Queue a batch's counts on `pipe`; the LAST reply is true when this batch writes them."""
    key = ACTIVITY_KEY.format(scanner_pk)
    pipe.hincrby(key, "accepted", accepted)
    pipe.hincrby(key, "rejected", rejected)
    pipe.hset(key, "last_batch", repr(at))
    pipe.sadd(ACTIVE_SCANNERS_KEY, scanner_pk)
    interval = settings.WARDWISE["SCANNER_HEALTH_WRITE_S"]
    pipe.set(WRITE_DUE_KEY.format(scanner_pk), 1, nx=True, px=max(int(interval * 1000), 1))


def write(scanner_pk: int) -> bool:
    """Move the scanner's gathered counts to its health row; False when the database refused
    (the counts are back in Redis for the next write)."""
    client = bus.client()
    key = ACTIVITY_KEY.format(scanner_pk)
    pipe = client.pipeline(transaction=True)
    pipe.hgetall(key)
    pipe.delete(key)
    gathered, _ = pipe.execute()
    if not gathered:
        return True
    accepted = int(gathered.get(b"accepted", 0))
    rejected = int(gathered.get(b"rejected", 0))
    last_batch = datetime.fromtimestamp(float(gathered[b"last_batch"]), tz=UTC)
    try:
        updated = ScannerHealth.objects.filter(scanner_id=scanner_pk).update(
            online=True,
            last_batch_at=_later(last_batch),
            readings_accepted=F("readings_accepted") + accepted,
            readings_rejected=F("readings_rejected") + rejected,
        )
        if not updated:
            _create(scanner_pk, accepted, rejected, last_batch)
    except Exception:
        log.warning("scanner %s activity not written; kept for the next write", scanner_pk)
        _put_back(client, key, accepted, rejected, gathered[b"last_batch"])
        return False
    return True


def _later(moment: datetime):
    """The later of the stored time and `moment` (SQLite's max() of a NULL is NULL)."""
    return Coalesce(Greatest(F("last_batch_at"), Value(moment)), Value(moment))


def _create(scanner_pk: int, accepted: int, rejected: int, last_batch: datetime) -> None:
    health, created = ScannerHealth.objects.get_or_create(
        scanner_id=scanner_pk,
        defaults={
            "online": True,
            "last_batch_at": last_batch,
            "readings_accepted": accepted,
            "readings_rejected": rejected,
        },
    )
    if not created:  # another process created it meanwhile
        ScannerHealth.objects.filter(pk=health.pk).update(
            online=True,
            last_batch_at=_later(last_batch),
            readings_accepted=F("readings_accepted") + accepted,
            readings_rejected=F("readings_rejected") + rejected,
        )


def _put_back(client, key: str, accepted: int, rejected: int, last_batch: bytes) -> None:
    pipe = client.pipeline(transaction=True)
    pipe.hincrby(key, "accepted", accepted)
    pipe.hincrby(key, "rejected", rejected)
    pipe.hsetnx(key, "last_batch", last_batch)
    pipe.execute()


def write_all() -> int:
    """Write every scanner's gathered counts (the periodic check, before it judges who is
    offline); returns how many scanners had counts."""
    client = bus.client()
    written = 0
    for member in client.smembers(ACTIVE_SCANNERS_KEY):
        scanner_pk = int(member)
        client.srem(ACTIVE_SCANNERS_KEY, member)
        if not client.exists(ACTIVITY_KEY.format(scanner_pk)):
            continue
        if write(scanner_pk):
            written += 1
        else:
            client.sadd(ACTIVE_SCANNERS_KEY, member)
    return written
