"""Accepting one scanner's batch of RSSI readings, whatever carried it (HTTP, MQTT).

Everything that must happen before a gateway is told "accepted" lives here, so the REST view
(tracking.views) and the MQTT bridge (integrations.mqtt) behave identically: validate
(tracking.ingestion), then in one Redis round trip check the batch id (a resend is answered what
the first delivery got and not counted twice), append the accepted readings to the bus, remember
the batch's answer, count them for the scanner's health row (tracking.activity) and the metrics,
and claim the shards' processing tasks. Localization runs in the workers.

Admission control: when the workers are more than WARDWISE_MAX_BACKLOG_S behind on a shard the
batch touches, the same round trip keeps nothing of it and `Overloaded` says when to come back.
Accepting what cannot be processed in time would only grow the backlog until the stream's MAXLEN
trims readings that were answered "accepted"; a refused gateway keeps its batch and resends it.
"""

from __future__ import annotations

import json
import logging
import math
import time

from django.conf import settings

from hospital import observability
from tracking import activity, bus, tasks
from tracking.ingestion import EnvelopeError, validate_rssi_batch
from tracking.models import Scanner

BATCH_MEMORY_S = 24 * 3600
#: Bounds of the wait an overloaded answer asks for: not so short that refused gateways hammer a
#: busy server, not so long that they sit on their readings after the workers caught up.
RETRY_AFTER_MIN_S = 2
RETRY_AFTER_MAX_S = 30
OVERLOAD_LOG_EVERY_S = 60.0

log = logging.getLogger(__name__)
_last_overload_log = 0.0

__all__ = [
    "BATCH_MEMORY_S",
    "EnvelopeError",
    "Overloaded",
    "accept_rssi_batch",
    "retry_after_s",
]


def retry_after_s(lag_s: float, limit_s: float) -> int:
    """Seconds a refused gateway should wait: the shard's lag beyond the limit, which is how
    much backlog the workers must clear before it is under the limit again (no sooner than that
    when they drain at the rate the readings came in), clamped to RETRY_AFTER_MIN_S..MAX_S."""
    excess = math.ceil(lag_s - limit_s) if math.isfinite(lag_s - limit_s) else RETRY_AFTER_MAX_S
    return min(RETRY_AFTER_MAX_S, max(RETRY_AFTER_MIN_S, excess))


class Overloaded(Exception):
    """The workers are too far behind on a shard the batch touches: nothing of the batch was
    kept (not even its id), so the gateway should resend it after `retry_after_s`."""

    def __init__(self, shard: int, lag_s: float, limit_s: float):
        self.shard = shard
        self.lag_s = lag_s
        self.limit_s = limit_s
        self.retry_after_s = retry_after_s(lag_s, limit_s)
        super().__init__(
            f"processing is {lag_s:.1f} s behind on shard {shard} (limit {limit_s:g} s); "
            f"retry after {self.retry_after_s} s"
        )


def accept_rssi_batch(scanner: Scanner, body: bytes, *, now: float | None = None) -> dict:
    """The answer body for a batch (CONTRACT.md section 3): accepted count, rejected readings by
    index, and whether the batch id was seen before. Raises EnvelopeError for an unusable
    envelope and Overloaded when the workers are too far behind; of either nothing is kept."""
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

    batch_key = None
    if batch.batch_id is not None:
        batch_key = f"ww:batch:{scanner.pk}:{batch.batch_id}"
    result = {
        "accepted": len(batch.readings),
        "duplicates": 0,
        "rejected": batch.rejected,
        "batch": batch.batch_id,
        "duplicate_batch": False,
    }
    handoff = _hand_off(bus.client(), scanner, batch, result, batch_key, now)
    if handoff.duplicate:
        return _resent(handoff.stored, batch.batch_id)
    for shard in handoff.claimed:
        tasks.queue_claimed(shard)
    if not handoff.admitted:
        overloaded = Overloaded(handoff.lagging, handoff.lag_s, limits["MAX_BACKLOG_S"])
        _log_overload(overloaded)
        raise overloaded
    if handoff.replies[-1]:
        activity.write_all()
    return result


def _hand_off(client, scanner: Scanner, batch, result: dict, batch_key, now: float) -> bus.Handoff:
    """One round trip: the idempotency check (a resent batch only counts itself as one), then
    the admission check, then the readings onto their shards' streams, the batch's answer
    remembered, the scanner's counts and the metrics added and the shards' processing claimed;
    or, refused, the refusal counted and the lagging shards' processing claimed, the batch id
    left unremembered (so its resend is accepted). Admitted, the last follow-up reply is true
    when this batch writes the scanner's counts."""
    shared_metrics = observability.redis_client() is not None
    if_admitted, if_refused, if_duplicate = bus.follow_up(), bus.follow_up(), bus.follow_up()
    if batch_key:
        if_admitted.set(batch_key, json.dumps(result), ex=BATCH_MEMORY_S)
    if shared_metrics:
        _queue_metrics(if_admitted, batch, "accepted")
        _queue_metrics(if_refused, batch, "overloaded")
        _queue_metrics(if_duplicate, batch, "duplicate")
    activity.queue_batch(if_admitted, scanner.pk, len(batch.readings), len(batch.rejected), now)
    pipe = client.pipeline(transaction=False)
    touched = bus.queue_publish_and_claim(
        pipe,
        scanner.serial,
        batch.readings,
        now,
        batch_key=batch_key,
        if_admitted=if_admitted,
        if_refused=if_refused,
        if_duplicate=if_duplicate,
    )
    (reply,) = pipe.execute()
    handoff = bus.read_handoff(touched, reply)
    if not shared_metrics:  # in-process: counted at once
        outcome = "accepted" if handoff.admitted else "overloaded"
        _queue_metrics(None, batch, "duplicate" if handoff.duplicate else outcome)
    return handoff


def _queue_metrics(pipe, batch, outcome: str) -> None:
    observability.queue_incr(pipe, "batches_total", outcome=outcome)
    if outcome == "overloaded":
        observability.queue_incr(pipe, "readings_refused_total", len(batch.readings), kind="rssi")
    elif outcome == "accepted":
        observability.queue_incr(pipe, "readings_accepted_total", len(batch.readings), kind="rssi")
        if batch.rejected:
            observability.queue_incr(
                pipe, "readings_rejected_total", len(batch.rejected), kind="rssi"
            )


def _log_overload(overloaded: Overloaded) -> None:
    """Once a minute per process at most: under overload every batch is refused."""
    global _last_overload_log
    moment = time.monotonic()
    if moment - _last_overload_log >= OVERLOAD_LOG_EVERY_S:
        _last_overload_log = moment
        log.warning("refusing reading batches: %s", overloaded)


def _resent(stored: bytes | None, batch_id: str) -> dict:
    """A batch seen before: nothing is counted again; answer what the first one got. ("pending":
    a batch id remembered by an earlier version while its batch was being appended.)"""
    first = json.loads(stored) if stored and stored != b"pending" else {}
    return {
        "accepted": 0,
        "duplicates": first.get("accepted", 0),
        "rejected": first.get("rejected", []),
        "batch": batch_id,
        "duplicate_batch": True,
    }
