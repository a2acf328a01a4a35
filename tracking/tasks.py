"""Celery tasks: thin wrappers that call tracking.pipeline and tracking.presence."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from celery.signals import worker_init
from django.conf import settings

from hospital import gc_tuning
from tracking import bus, pipeline, presence
from tracking.localization.warmup import warm_up

log = logging.getLogger(__name__)


@worker_init.connect
def warm_up_engine(**kwargs) -> None:
    """The engine's compiled code, loaded before the first drain needs it and before the prefork
    pool forks, so every child starts with it (tracking.localization.warmup). A failure must not
    keep the worker from its other tasks (cold-chain checks, alert escalations): the first drain
    then loads the code itself. Then the start-up heap is frozen and the collector's thresholds
    raised (hospital.gc_tuning), also before the fork."""
    started = time.process_time()
    try:
        warm_up(pipeline.engine_config())
    except Exception:
        log.exception("localization engine warm-up failed; the first drain will compile")
    else:
        log.info("localization engine warmed up in %.1f s of CPU", time.process_time() - started)
    thresholds = settings.WARDWISE["GC_THRESHOLDS"]
    frozen = gc_tuning.tune(thresholds)
    if thresholds is not None:
        log.info("garbage collector: %d objects frozen, thresholds %s", frozen, thresholds)


@shared_task(bind=True, max_retries=None, acks_late=True, ignore_result=True)
def process_shard(self, shard: int) -> None:
    report = pipeline.process_shard(shard, on_persisted=_publish_live)
    eager = settings.CELERY_TASK_ALWAYS_EAGER
    if report.busy:
        if eager:
            return  # the lease holder drains the stream before it lets go
        raise self.retry(countdown=0.05)
    next_drain = pipeline.finish_drain(shard, report, requeue_held=not eager)
    if next_drain is bus.NextDrain.NOW:
        queue_claimed(shard)
    elif next_drain is bus.NextDrain.AFTER_ALLOWANCE:
        hold_s = report.hold_s
        if hold_s is None:
            hold_s = settings.WARDWISE["LATE_ALLOWANCE_S"]
        process_shard.apply_async((shard,), countdown=hold_s)


def schedule(shard: int) -> None:
    """Queue the shard's task unless one is queued already."""
    if bus.claim_schedule(shard):
        queue_claimed(shard)


def queue_claimed(shard: int) -> None:
    """Queue the task of a shard whose schedule the caller has just claimed."""
    process_shard.delay(shard)


def _publish_live(updates: list[dict]) -> None:
    if updates:
        from tracking.live import publish_location_updates

        publish_location_updates(updates)


@shared_task(ignore_result=True)
def mark_missing_assets() -> int:
    return presence.mark_missing_assets()


@shared_task(ignore_result=True)
def mark_offline_scanners() -> int:
    return presence.mark_offline_scanners()


@shared_task(ignore_result=True)
def prune_position_history() -> int:
    return presence.prune_position_history()


@shared_task(ignore_result=True)
def kick_idle_shards() -> None:
    """Safety net: a shard whose task was lost (a worker died) is picked up again, whether its
    work is in the stream or held for the late allowance. Shards left by a larger
    WARDWISE_SHARDS are drained the same way, then deleted."""
    for shard in range(bus.shard_count()):
        if pipeline.has_work(shard):
            schedule(shard)
    for shard in bus.retired_shards():
        if pipeline.has_work(shard):
            log.warning(
                "shard %d is beyond WARDWISE_SHARDS=%d and still holds readings: draining it",
                shard,
                bus.shard_count(),
            )
            schedule(shard)
        elif pipeline.retire_shard(shard):
            log.info("shard %d (beyond WARDWISE_SHARDS) drained and deleted", shard)
