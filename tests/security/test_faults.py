"""Fault injection that fits in CI: a Celery worker killed with SIGKILL in the middle of the
stream. Its shards' leases expire, the surviving worker takes them over, and every acknowledged
reading still ends up in the same positions as the replay path computes: nothing is lost or
applied twice. (Redis and PostgreSQL restarts, which disturb everything else on the machine,
are in `python -m bench.faults`; docs/reliability.md.)"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from django.db import connection

from tests.tracking.test_worker_consistency import (  # noqa: F401  (recorded_trace: fixture)
    post_like_gateways,
    recorded_trace,
    replayed_positions,
    start_worker,
    stored_positions,
)
from tracking.models import PositionSample
from tracking.tasks import kick_idle_shards

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
#: The shard lease (tracking.bus.ShardLock) is 60 s and a shard's schedule claim 30 s; the
#: survivor needs at most that plus the rest of the work.
DEADLINE_S = 150
#: tracking-kick-idle-shards runs every 10 s on Celery beat (hospital/celery.py).
BEAT_S = 10.0


def test_a_worker_killed_mid_stream_loses_nothing(client, recorded_trace, tmp_path):  # noqa: F811
    expected = replayed_positions(recorded_trace)
    logs = [tmp_path / "victim.log", tmp_path / "survivor.log"]
    victim, survivor = (
        start_worker(name, log) for name, log in zip(("victim", "survivor"), logs, strict=True)
    )
    killed = threading.Event()

    def kill_mid_stream():
        try:
            deadline = time.time() + 60
            while time.time() < deadline:
                if PositionSample.objects.count() >= len(expected) // 10:
                    os.kill(victim.pid, signal.SIGKILL)
                    killed.set()
                    return
                time.sleep(0.05)
        finally:
            connection.close()

    killer = threading.Thread(target=kill_mid_stream, daemon=True)
    try:
        killer.start()
        assert post_like_gateways(client, recorded_trace) == len(recorded_trace)
        killer.join(timeout=70)
        assert killed.is_set(), "the stream ended before the worker could be killed"
        deadline = time.time() + DEADLINE_S
        kicked = 0.0
        while time.time() < deadline and PositionSample.objects.count() < len(expected):
            if time.time() - kicked > BEAT_S:
                # What Celery beat does in production: the victim's task message is lost
                # with it (acks_late keeps it invisible for an hour), so the safety net queues
                # the shards that still have unprocessed readings.
                kick_idle_shards()
                kicked = time.time()
            time.sleep(0.5)
        time.sleep(2)
    finally:
        for worker in (victim, survivor):
            if worker.poll() is None:
                worker.terminate()
        for worker in (victim, survivor):
            worker.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    assert stored_positions() == expected
    assert "process_shard" in logs[1].read_text(), "the survivor did no work"
