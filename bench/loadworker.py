"""The Celery app as bench.load runs it: hospital's own app, plus a warm-up when a worker starts.

Building the localization engine for a 250-scanner site takes seconds of CPU; a real deployment
pays that once per worker at start, so the benchmark builds it before the load begins instead of
counting it as processing lag. (The engine's compiled code is loaded earlier still, by every
worker: tracking.tasks.warm_up_engine.) Start with `celery -A bench.loadworker worker`.
"""

import os

from celery.signals import worker_ready

from hospital.celery import app

WARM_KEY = "bench:warm"

__all__ = ["app"]


@worker_ready.connect
def _warm(**kwargs) -> None:
    from tracking import bus, pipeline

    pipeline.site_runtime()
    bus.client().sadd(WARM_KEY, os.getpid())
