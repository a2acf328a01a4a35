"""The same trace through two real Celery worker processes and through replay gives the same
positions: per-tag state stays consistent and readings are applied in event-time order."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from hospital.devices import issue_token
from hospital.site_loader import load_site_document
from tracking.localization import LocalizationEngine
from tracking.models import PositionSample, Scanner, Tag
from tracking.pipeline import SiteRuntime, engine_config
from tracking.simulation.layout import generate_hospital
from tracking.simulation.radio import RadioSimulator

ROOT = Path(__file__).resolve().parents[2]
WORKER_ENV = {
    "WARDWISE_LATE_ALLOWANCE_S": "3",
    "WARDWISE_HOLD_MAX_S": "6",
    "WARDWISE_POSITION_SAMPLE_INTERVAL_S": "0",
}
ONE_ROUNDING_STEP_M = 0.0100001
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def start_worker(name: str, log: Path) -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ,
        **WORKER_ENV,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    command = [sys.executable, "-m", "celery", "-A", "hospital", "worker", "-P", "solo"]
    command += ["-n", f"{name}@%h", "--without-gossip", "--without-mingle", "-l", "info"]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
    )


@pytest.fixture
def recorded_trace(redis_bus, settings):
    """A simulated ward and 90 s of what its scanners heard, loaded and sorted like a trace."""
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.fail("this test needs PostgreSQL and Redis (run it through make test)")
    settings.WARDWISE = {
        **settings.WARDWISE,
        "LATE_ALLOWANCE_S": 3.0,
        "HOLD_MAX_S": 6.0,
        "POSITION_SAMPLE_INTERVAL_S": 0,
        "DEVICE_RATE_PER_S": 100_000,
    }
    document = generate_hospital(floors=1, rooms_per_side=4, assets_per_floor=6, seed=11)
    load_site_document(document)
    simulator = RadioSimulator(document, seed=11, start_ts=time.time() - 900)
    readings, _truth = simulator.run(90.0)
    readings.sort(key=lambda r: (r.ts, r.scanner, r.tag, r.rssi))
    return readings


def post_like_gateways(client, readings, window_s: float = 1.0) -> int:
    """One batch per scanner per second of event time, in time order, as gateways would."""
    batches: dict[tuple[int, str], list] = {}
    start = readings[0].ts
    for reading in readings:
        batches.setdefault((int((reading.ts - start) // window_s), reading.scanner), []).append(
            reading
        )
    tokens = {s.serial: issue_token(scanner=s) for s in Scanner.objects.all()}
    accepted = 0
    for (window, serial), batch in sorted(batches.items()):
        body = {
            "batch": f"{serial}-{window}",
            "readings": [{"tag": r.tag, "rssi": r.rssi, "ts": r.ts} for r in batch],
        }
        response = client.post(
            "/api/v1/readings/rssi/",
            json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Token {tokens[serial]}",
        )
        assert response.status_code == 202, response.content
        accepted += response.json()["accepted"]
    return accepted


def replayed_positions(readings) -> list[tuple]:
    """What the replay path computes for the registered tags (without the end-of-trace flush,
    which a live system never does)."""
    runtime = SiteRuntime()
    engine = LocalizationEngine(runtime.spec, engine_config(), runtime.engine.mobility_for_tag)
    positions = []
    for reading in readings:
        if reading.tag in runtime.asset_of_tag:
            positions += [
                (e.tag, round(e.ts, 3), round(e.x, 6), round(e.y, 6), e.zone)
                for e in engine.process(reading)
            ]
    return sorted(positions)


def stored_positions() -> list[tuple]:
    tag_of_asset = dict(Tag.objects.values_list("asset_id", "tag_id"))
    return sorted(
        (
            tag_of_asset[s.asset_id],
            round(s.ts.timestamp(), 3),
            round(s.x, 6),
            round(s.y, 6),
            s.zone.name if s.zone else "",
        )
        for s in PositionSample.objects.select_related("zone")
    )


def test_two_workers_and_replay_agree(client, recorded_trace, tmp_path):
    expected = replayed_positions(recorded_trace)
    assert len(expected) > 100
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    workers = [start_worker(f"w{i}", log) for i, log in enumerate(logs, 1)]
    try:
        assert post_like_gateways(client, recorded_trace) == len(recorded_trace)
        deadline = time.time() + 120
        while time.time() < deadline and PositionSample.objects.count() < len(expected):
            time.sleep(0.5)
        time.sleep(2)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
    stored = stored_positions()
    assert [(tag, ts, zone) for tag, ts, _, _, zone in stored] == [
        (tag, ts, zone) for tag, ts, _, _, zone in expected
    ]
    # The engine reports centimetres; numpy's summation order can differ in the last bit between
    # processes, which may flip a rounding by one centimetre, never more.
    assert all(
        abs(a[2] - b[2]) <= ONE_ROUNDING_STEP_M and abs(a[3] - b[3]) <= ONE_ROUNDING_STEP_M
        for a, b in zip(stored, expected, strict=True)
    )
    for log in logs:
        text = log.read_text()
        assert "localization engine warmed up" in text, f"{log.name} did not warm up"
        assert "objects frozen, thresholds (10000, 10, 10)" in text, f"{log.name} kept CPython's GC"
        assert "process_shard" in text, f"{log.name} did no work"
