"""Celery worker start-up: the engine's compiled code is loaded before the first drain."""

import logging

from celery.signals import worker_init

from tracking import pipeline, tasks


def test_every_worker_warms_up_the_engine_when_it_starts():
    assert tasks.warm_up_engine in worker_init._live_receivers(None)


def test_the_warm_up_uses_the_pipelines_engine_configuration(monkeypatch, settings):
    settings.WARDWISE = {**settings.WARDWISE, "SELF_CALIBRATION": True}
    configs = []
    monkeypatch.setattr(tasks, "warm_up", configs.append)
    tasks.warm_up_engine()
    assert configs == [pipeline.engine_config()]
    assert configs[0].self_calibration


def test_a_failed_warm_up_is_logged_and_the_worker_starts_anyway(monkeypatch, caplog):
    def broken(config):
        raise RuntimeError("no writable numba cache and no compiler")

    monkeypatch.setattr(tasks, "warm_up", broken)
    with caplog.at_level(logging.ERROR, logger="tracking.tasks"):
        tasks.warm_up_engine()
    assert "warm-up failed" in caplog.text
    assert "no writable numba cache" in caplog.text
