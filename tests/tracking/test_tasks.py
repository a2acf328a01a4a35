"""Celery worker start-up: the engine's compiled code is loaded before the first drain, and the
garbage collector is set for a long-lived heap."""

import logging

import pytest
from celery.signals import worker_init

from tracking import pipeline, tasks


@pytest.fixture(autouse=True)
def tuned(monkeypatch):
    """The thresholds the hook set; the test process's own collector is left alone."""
    calls = []

    def tune(thresholds):
        calls.append(thresholds)
        return 0 if thresholds is None else 1234

    monkeypatch.setattr(tasks.gc_tuning, "tune", tune)
    return calls


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


def test_the_collector_is_tuned_with_the_configured_thresholds_after_the_warm_up(
    monkeypatch, settings, tuned, caplog
):
    settings.WARDWISE = {**settings.WARDWISE, "GC_THRESHOLDS": (50_000, 20, 10)}
    order = []
    monkeypatch.setattr(tasks, "warm_up", lambda config: order.append(("warm-up", tuned[:])))
    with caplog.at_level(logging.INFO, logger="tracking.tasks"):
        tasks.warm_up_engine()
    assert order == [("warm-up", [])]
    assert tuned == [(50_000, 20, 10)]
    assert "1234 objects frozen, thresholds (50000, 20, 10)" in caplog.text


def test_a_failed_warm_up_still_tunes_the_collector(monkeypatch, tuned):
    def broken(config):
        raise RuntimeError("numba cache unreadable")

    monkeypatch.setattr(tasks, "warm_up", broken)
    tasks.warm_up_engine()
    assert tuned == [(10_000, 10, 10)]


def test_with_the_collector_turned_off_nothing_is_frozen_or_logged(
    monkeypatch, settings, tuned, caplog
):
    settings.WARDWISE = {**settings.WARDWISE, "GC_THRESHOLDS": None}
    monkeypatch.setattr(tasks, "warm_up", lambda config: None)
    with caplog.at_level(logging.INFO, logger="tracking.tasks"):
        tasks.warm_up_engine()
    assert tuned == [None]
    assert "garbage collector" not in caplog.text


@pytest.mark.parametrize(("hold_s", "countdown"), [(0.15, 0.15), (None, 0.5)])
def test_a_shard_left_with_held_readings_is_drained_again_after_its_own_hold(
    monkeypatch, settings, hold_s, countdown
):
    settings.WARDWISE = {**settings.WARDWISE, "LATE_ALLOWANCE_S": 0.5}
    report = pipeline.ShardReport(applied=3, held=2, hold_s=hold_s)
    monkeypatch.setattr(pipeline, "process_shard", lambda shard, on_persisted: report)
    monkeypatch.setattr(
        pipeline, "finish_drain", lambda *args, **kwargs: tasks.bus.NextDrain.AFTER_ALLOWANCE
    )
    queued = []
    monkeypatch.setattr(
        tasks.process_shard, "apply_async", lambda args, countdown: queued.append((args, countdown))
    )
    tasks.process_shard(5)
    assert queued == [((5,), countdown)]
