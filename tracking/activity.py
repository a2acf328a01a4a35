"""Scanner activity (batches, reading counts) on the health rows without a database write per
batch: every batch adds its counts to a Redis hash in the same round trip that appends its
readings, and every SCANNER_HEALTH_WRITE_S the batch that finds a write due moves the counts of
all scanners to `ScannerHealth` in one statement (tracking.store), as does the periodic offline
check. A failed write puts the counts back, so none are lost while Redis stays up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Greatest

from tracking import bus, store
from tracking.models import Scanner, ScannerHealth

ACTIVITY_KEY = "ww:activity:{}"
WRITE_DUE_KEY = "ww:activity-due"
ACTIVE_SCANNERS_KEY = "ww:activity-scanners"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Activity:
    scanner_pk: int
    accepted: int
    rejected: int
    last_batch: bytes | None  # epoch seconds as Redis keeps them

    @property
    def last_batch_at(self) -> datetime | None:
        if self.last_batch is None:
            return None
        return datetime.fromtimestamp(float(self.last_batch), tz=UTC)


def queue_batch(pipe, scanner_pk: int, accepted: int, rejected: int, at: float) -> None:
    """Queue a batch's counts on `pipe`; the LAST reply is true when this batch writes them."""
    key = ACTIVITY_KEY.format(scanner_pk)
    pipe.hincrby(key, "accepted", accepted)
    pipe.hincrby(key, "rejected", rejected)
    pipe.hset(key, "last_batch", repr(at))
    pipe.sadd(ACTIVE_SCANNERS_KEY, scanner_pk)
    interval = settings.WARDWISE["SCANNER_HEALTH_WRITE_S"]
    pipe.set(WRITE_DUE_KEY, 1, nx=True, px=max(int(interval * 1000), 1))


def write_all() -> int:
    """Move every scanner's gathered counts to its health row; returns how many scanners had
    counts, 0 when the database refused (the counts are back in Redis for the next write)."""
    client = bus.client()
    members = client.smembers(ACTIVE_SCANNERS_KEY)
    if not members:
        return 0
    scanners = sorted(int(member) for member in members)
    keys = [ACTIVITY_KEY.format(pk) for pk in scanners]
    pipe = client.pipeline(transaction=True)
    for key in keys:
        pipe.hgetall(key)
    pipe.delete(*keys)
    pipe.srem(ACTIVE_SCANNERS_KEY, *members)
    replies = pipe.execute()
    gathered = [
        Activity(
            pk,
            int(counts.get(b"accepted", 0)),
            int(counts.get(b"rejected", 0)),
            counts.get(b"last_batch"),
        )
        for pk, counts in zip(scanners, replies, strict=False)
        if counts
    ]
    if not gathered:
        return 0
    try:
        _write(gathered)
    except Exception:
        log.warning("activity of %d scanners not written; kept for the next write", len(gathered))
        _put_back(client, gathered)
        return 0
    return len(gathered)


def _write(gathered: list[Activity]) -> None:
    if store.set_based():
        store.add_scanner_activity(
            [(a.scanner_pk, a.accepted, a.rejected, a.last_batch_at) for a in gathered]
        )
        return
    existing = set(
        Scanner.objects.filter(pk__in=[a.scanner_pk for a in gathered]).values_list("pk", flat=True)
    )
    for item in gathered:
        if item.scanner_pk in existing and not _update(item):  # deleted meanwhile: skipped
            _create(item)


def _update(item: Activity) -> bool:
    changes = {
        "online": True,
        "readings_accepted": F("readings_accepted") + item.accepted,
        "readings_rejected": F("readings_rejected") + item.rejected,
    }
    if item.last_batch_at is not None:
        # the later of the stored time and this one (SQLite's max() of a NULL is NULL)
        moment = item.last_batch_at
        changes["last_batch_at"] = Coalesce(
            Greatest(F("last_batch_at"), Value(moment)), Value(moment)
        )
    return bool(ScannerHealth.objects.filter(scanner_id=item.scanner_pk).update(**changes))


def _create(item: Activity) -> None:
    _health, created = ScannerHealth.objects.get_or_create(
        scanner_id=item.scanner_pk,
        defaults={
            "online": True,
            "last_batch_at": item.last_batch_at,
            "readings_accepted": item.accepted,
            "readings_rejected": item.rejected,
        },
    )
    if not created:  # another process created it meanwhile
        _update(item)


def _put_back(client, gathered: list[Activity]) -> None:
    pipe = client.pipeline(transaction=True)
    for item in gathered:
        key = ACTIVITY_KEY.format(item.scanner_pk)
        pipe.hincrby(key, "accepted", item.accepted)
        pipe.hincrby(key, "rejected", item.rejected)
        if item.last_batch is not None:
            pipe.hsetnx(key, "last_batch", item.last_batch)
    pipe.sadd(ACTIVE_SCANNERS_KEY, *(item.scanner_pk for item in gathered))
    pipe.execute()
