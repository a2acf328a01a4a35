"""Accepting one scanner's batch of RSSI readings, whatever carried it (HTTP, MQTT).

Everything that must happen before a gateway is told "accepted" lives here, so the REST view
(tracking.views) and the MQTT bridge (integrations.mqtt) behave identically: validate
(tracking.ingestion), remember the batch id so a resend is not counted twice, then in one Redis
round trip append the accepted readings to the bus, count them for the scanner's health row
(tracking.activity) and the metrics, and claim the shards' processing tasks. Localization runs in
the workers.
"""

from __future__ import annotations

import json
import time

from django.conf import settings

from hospital import observability
from tracking import activity, bus, tasks
from tracking.ingestion import EnvelopeError, validate_rssi_batch
from tracking.models import Scanner

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
        shards, write_activity = _append(client, scanner, batch, result, batch_key, now)
    except Exception:
        if batch_key:
            client.delete(batch_key)
        raise
    if write_activity:
        activity.write_all()
    for shard in shards:
        tasks.queue_claimed(shard)
    return result


def _append(client, scanner: Scanner, batch, result: dict, batch_key, now: float):
    """One round trip: the readings onto their shards' streams, the batch's answer remembered,
    the scanner's counts and the metrics added, the shards' processing claimed. Returns the
    shards whose task this batch must queue and whether it writes the scanner's counts."""
    pipe = client.pipeline(transaction=False)
    touched = bus.queue_publish_and_claim(pipe, scanner.serial, batch.readings, now)
    if batch_key:
        pipe.set(batch_key, json.dumps(result), ex=BATCH_MEMORY_S)
    observability.queue_incr(pipe, "batches_total", outcome="accepted")
    observability.queue_incr(pipe, "readings_accepted_total", len(batch.readings), kind="rssi")
    if batch.rejected:
        observability.queue_incr(pipe, "readings_rejected_total", len(batch.rejected), kind="rssi")
    activity.queue_batch(pipe, scanner.pk, len(batch.readings), len(batch.rejected), now)
    replies = pipe.execute()
    claimed = bus.claimed_shards(touched, replies[0]) if touched else []
    return claimed, bool(replies[-1])


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
