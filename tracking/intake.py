"""Accepting one scanner's batch of RSSI readings, whatever carried it (HTTP, MQTT).

Everything that must happen before a gateway is told "accepted" lives here, so the REST view
(tracking.views) and the MQTT bridge (integrations.mqtt) behave identically: validate
(tracking.ingestion), remember the batch id so a resend is not counted twice, append the accepted
readings to the Redis bus, count them on the scanner's health row and queue the shards'
processing tasks. Localization runs in the workers.
"""

from __future__ import annotations

import json
import time

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from hospital import observability
from tracking import bus, tasks
from tracking.ingestion import EnvelopeError, validate_rssi_batch
from tracking.models import Scanner, ScannerHealth

BATCH_MEMORY_S = 24 * 3600

__all__ = ["BATCH_MEMORY_S", "EnvelopeError", "accept_rssi_batch"]


def accept_rssi_batch(scanner: Scanner, body: bytes, *, now: float | None = None) -> dict:
    """The answer body for a batch (CONTRACT.md section 3): accepted count, rejected readings by
    index, and whether the batch id was seen before. Raises EnvelopeError for an unusable
    envelope, of which nothing is kept."""
    limits = settings.WARDWISE
    now = time.time() if now is None else now
    try:
        batch = validate_rssi_batch(
            body,
            now=now,
            max_readings=limits["MAX_BATCH_READINGS"],
            max_future_s=limits["MAX_FUTURE_SKEW_S"],
            max_age_s=limits["MAX_READING_AGE_S"],
        )
    except EnvelopeError:
        observability.incr("batches_total", outcome="malformed")
        raise

    client = bus.client()
    batch_key = None
    if batch.batch_id is not None:
        batch_key = f"ww:batch:{scanner.pk}:{batch.batch_id}"
        if not client.set(batch_key, "pending", nx=True, ex=BATCH_MEMORY_S):
            return _resent(client.get(batch_key), batch.batch_id)
    result = {
        "accepted": len(batch.readings),
        "duplicates": 0,
        "rejected": batch.rejected,
        "batch": batch.batch_id,
        "duplicate_batch": False,
    }
    try:
        shards = bus.publish(scanner.serial, batch.readings, now)
    except Exception:
        if batch_key:
            client.delete(batch_key)
        raise
    if batch_key:
        client.set(batch_key, json.dumps(result), ex=BATCH_MEMORY_S)
    _record(scanner, len(batch.readings), len(batch.rejected))
    observability.incr("batches_total", outcome="accepted")
    observability.incr("readings_accepted_total", len(batch.readings), kind="rssi")
    if batch.rejected:
        observability.incr("readings_rejected_total", len(batch.rejected), kind="rssi")
    for shard in shards:
        tasks.schedule(shard)
    return result


def _resent(stored: bytes | None, batch_id: str) -> dict:
    """A batch seen before: nothing is counted again; answer what the first one got."""
    observability.incr("batches_total", outcome="duplicate")
    first = json.loads(stored) if stored and stored != b"pending" else {}
    return {
        "accepted": 0,
        "duplicates": first.get("accepted", 0),
        "rejected": first.get("rejected", []),
        "batch": batch_id,
        "duplicate_batch": True,
    }


def _record(scanner: Scanner, accepted: int, rejected: int) -> None:
    now = timezone.now()
    updated = ScannerHealth.objects.filter(scanner=scanner).update(
        online=True,
        last_batch_at=now,
        readings_accepted=F("readings_accepted") + accepted,
        readings_rejected=F("readings_rejected") + rejected,
    )
    if not updated:
        ScannerHealth.objects.get_or_create(
            scanner=scanner,
            defaults={
                "online": True,
                "last_batch_at": now,
                "readings_accepted": accepted,
                "readings_rejected": rejected,
            },
        )
