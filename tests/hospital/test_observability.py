"""Shared metrics (Redis or in-process), the Prometheus endpoint, the health endpoint and JSON
logs."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.db import OperationalError

from hospital import observability

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "scrape-me-0123456789"
needs_redis = pytest.mark.skipif(not django_settings.REDIS_URL, reason="needs REDIS_URL")


@pytest.fixture(autouse=True)
def _isolated(isolated_metrics):
    """Every test here reads the metrics: each starts from none."""


@pytest.fixture
def in_process(settings):
    settings.REDIS_URL = ""


@pytest.fixture(params=["redis", "in-process"])
def store(request):
    """Each test using it runs against both metric stores."""
    if request.param == "in-process":
        request.getfixturevalue("in_process")
    elif not django_settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    return request.param


def scrape() -> str:
    return observability.render_metrics().decode()


def test_counters_and_gauges_are_rendered_with_their_labels(store):
    observability.incr("readings_accepted_total", 250)
    observability.incr("readings_accepted_total", 50)
    observability.incr("readings_rejected_total", 3, reason="rssi_out_of_range")
    observability.incr("readings_rejected_total", reason="unknown_scanner")
    observability.incr("positions_total", 0.5)
    observability.set_gauge("processing_lag_seconds", 0.8)
    observability.set_gauge("processing_lag_seconds", 0.25)
    observability.incr("websocket_clients", 2)
    observability.incr("websocket_clients", -1)
    text = scrape()
    assert "# TYPE wardwise_readings_accepted_total counter" in text
    assert "wardwise_readings_accepted_total 300.0" in text
    assert 'wardwise_readings_rejected_total{reason="rssi_out_of_range"} 3.0' in text
    assert 'wardwise_readings_rejected_total{reason="unknown_scanner"} 1.0' in text
    assert "wardwise_positions_total 0.5" in text
    assert "# TYPE wardwise_processing_lag_seconds gauge" in text
    assert "wardwise_processing_lag_seconds 0.25" in text
    assert "# TYPE wardwise_websocket_clients gauge" in text
    assert "wardwise_websocket_clients 1.0" in text


def test_names_are_checked():
    with pytest.raises(ValueError, match="invalid metric"):
        observability.incr("readings accepted")
    with pytest.raises(ValueError, match="invalid metric"):
        observability.set_gauge("lag", 1, **{"bad-label": "x"})


@needs_redis
@pytest.mark.services
def test_counters_are_shared_between_processes():
    """A Celery worker is another process: what it counts must show in the web's scrape."""
    child = (
        "import django; django.setup(); from hospital import observability as o;"
        f"o.KEY_PREFIX = {observability.KEY_PREFIX!r};"
        "o.incr('positions_total', 1234); o.set_gauge('processing_lag_seconds', 0.4)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "hospital.settings"}
    subprocess.run([sys.executable, "-c", child], cwd=ROOT, env=env, check=True)
    text = scrape()
    assert "wardwise_positions_total 1234.0" in text
    assert "wardwise_processing_lag_seconds 0.4" in text


def test_a_broken_store_never_fails_the_caller(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    observability.incr("readings_accepted_total", 5)
    observability.set_gauge("processing_lag_seconds", 1.0)


@needs_redis
@pytest.mark.services
def test_queue_depth_reports_the_reading_streams_and_consumer_lag():
    client = observability.redis_client()
    stream = f"ww:rssi:test{os.getpid()}"
    client.delete(stream)
    try:
        client.xgroup_create(stream, "workers", id="0", mkstream=True)
        for i in range(5):
            client.xadd(stream, {"n": i})
        client.xreadgroup("workers", "w1", {stream: ">"}, count=2)
        text = scrape()
        assert f'wardwise_queue_depth{{stream="{stream}"}} 5.0' in text
        assert f'wardwise_stream_lag{{group="workers",stream="{stream}"}} 3.0' in text
        age_line = next(
            line
            for line in text.splitlines()
            if line.startswith(
                f'wardwise_stream_oldest_undelivered_age_seconds{{group="workers",stream="{stream}"}}'
            )
        )
        assert 0 <= float(age_line.split()[-1]) < 60
        assert 'wardwise_celery_queue_length{queue="celery"}' in text
    finally:
        client.delete(stream)


# -- /metrics ---------------------------------------------------------------------------------


def test_metrics_are_off_without_a_token(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404


def test_metrics_need_the_bearer_token(client, settings):
    settings.METRICS_TOKEN = TOKEN
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Token {TOKEN}").status_code == 401


def test_metrics_with_the_token(client, settings):
    settings.METRICS_TOKEN = TOKEN
    observability.incr("readings_accepted_total", 7)
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert "wardwise_readings_accepted_total 7.0" in body
    assert "wardwise_web_process_resident_memory_bytes" in body


# -- /api/v1/health/ --------------------------------------------------------------------------


def health(client):
    response = client.get("/api/v1/health/")
    return response.status_code, response.json()


@pytest.fixture
def embedded(settings):
    """No Redis, tasks in-process: the demo set-up."""
    settings.REDIS_URL = ""
    settings.CELERY_BROKER_URL = "memory://"


@pytest.mark.django_db
def test_health_in_the_embedded_setup(client, embedded):
    status, body = health(client)
    assert status == 200
    assert body["status"] == "ok"
    assert body["components"] == {
        "database": {"status": "ok"},
        "redis": {"status": "not-configured"},
        "workers": {"status": "not-configured", "count": 0},
    }


@needs_redis
@pytest.mark.services
@pytest.mark.django_db
def test_health_is_503_when_no_worker_answers(client, settings, monkeypatch):
    monkeypatch.setattr(observability, "check_workers", lambda timeout_s: ("down", 0))
    status, body = health(client)
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["components"]["database"] == {"status": "ok"}
    assert body["components"]["redis"] == {"status": "ok"}
    assert body["components"]["workers"] == {"status": "down", "count": 0}


@pytest.mark.django_db
def test_health_is_503_when_redis_is_down(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    status, body = health(client)
    assert status == 503
    assert body["components"]["redis"] == {"status": "down"}
    assert body["components"]["workers"]["status"] == "unknown"


def test_health_is_503_when_the_database_is_down(client, embedded, monkeypatch):
    class Unreachable:
        def cursor(self):
            raise OperationalError("connection refused")

    monkeypatch.setattr(observability, "connection", Unreachable())
    status, body = health(client)
    assert status == 503
    assert body["components"]["database"] == {"status": "down"}
    assert "refused" not in json.dumps(body)


@pytest.fixture
def celery_worker():
    """A real Celery worker on the test Redis, on a queue of its own so it takes no tasks."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "hospital.settings"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "hospital",
            "worker",
            "--pool=solo",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            "-Q",
            f"health-probe-{os.getpid()}",
            "-n",
            f"health-probe-{os.getpid()}@%h",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield process
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@needs_redis
@pytest.mark.services
@pytest.mark.e2e
@pytest.mark.django_db
def test_health_pings_a_real_celery_worker(client, celery_worker):
    deadline = time.monotonic() + 40
    while True:
        status, body = health(client)
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 200, body
    assert body["components"]["workers"]["status"] == "ok"
    assert body["components"]["workers"]["count"] >= 1


def test_health_reveals_no_hosts_or_versions(client, settings, monkeypatch):
    monkeypatch.setattr(observability, "check_database", lambda: "ok")
    monkeypatch.setattr(observability, "check_redis", lambda: "ok")
    monkeypatch.setattr(observability, "check_workers", lambda timeout_s: ("ok", 2))
    status, body = health(client)
    assert status == 200
    assert set(body) == {"status", "time", "components"}
    assert body["components"]["workers"] == {"status": "ok", "count": 2}


# -- logs -------------------------------------------------------------------------------------


def test_the_json_formatter_writes_one_object_per_record():
    formatter = observability.JsonFormatter()
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.getLogger("tracking.pipeline").makeRecord(
            "tracking.pipeline",
            logging.ERROR,
            __file__,
            1,
            "shard %s failed",
            (3,),
            sys.exc_info(),
            extra={"shard": 3, "readings": 120},
        )
    line = formatter.format(record)
    assert "\n" not in line.split('"exc_info"')[0]
    payload = json.loads(line)
    assert payload["level"] == "ERROR"
    assert payload["logger"] == "tracking.pipeline"
    assert payload["message"] == "shard 3 failed"
    assert payload["shard"] == 3
    assert payload["readings"] == 120
    assert "RuntimeError: boom" in payload["exc_info"]
    assert payload["ts"].endswith("+00:00")


def run_with_log_format(value: str) -> subprocess.CompletedProcess:
    probe = (
        "import django, logging; django.setup();"
        "logging.getLogger('wardwise.probe').warning('hello %s', 'ward', extra={'floor': 3})"
    )
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "LOG_FORMAT"}
    }
    env.update(DJANGO_SETTINGS_MODULE="hospital.settings", LOG_FORMAT=value)
    return subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_log_format_json_configures_json_lines():
    result = run_with_log_format("json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stderr.strip().splitlines()[-1])
    assert payload["message"] == "hello ward"
    assert payload["floor"] == 3


def test_log_format_defaults_to_plain_and_refuses_unknown_values():
    plain = run_with_log_format("")
    assert plain.returncode == 0
    assert "WARNING wardwise.probe hello ward" in plain.stderr
    bad = run_with_log_format("xml")
    assert bad.returncode != 0
    assert "LOG_FORMAT" in bad.stderr


def test_a_store_outage_is_swallowed(settings, monkeypatch):
    """An outage of the metrics store is logged and ignored: ingestion must go on."""

    class Down:
        def hincrby(self, *args):
            raise redis.ConnectionError("down")

        def delete(self, *keys):
            return 0

    monkeypatch.setattr(observability, "redis_client", lambda: Down())
    observability.incr("batches_total", outcome="accepted")


def test_histograms_are_rendered_with_cumulative_buckets(store):
    client = observability.redis_client()
    pipe = client.pipeline() if client is not None else None
    observability.queue_observe(pipe, "reading_wait_seconds", [0.05, 0.6, 0.6, 0.75, 2.5, 90.0])
    observability.queue_observe(pipe, "reading_wait_seconds", [])
    observability.queue_observe(pipe, "drain_seconds", [0.2])
    if pipe is not None:
        pipe.execute()
    lines = scrape().splitlines()
    expected = [
        "# TYPE wardwise_reading_wait_seconds histogram",
        'wardwise_reading_wait_seconds_bucket{le="0.1"} 1.0',
        'wardwise_reading_wait_seconds_bucket{le="0.5"} 1.0',
        'wardwise_reading_wait_seconds_bucket{le="0.75"} 4.0',  # le: at most the bound
        'wardwise_reading_wait_seconds_bucket{le="3.0"} 5.0',
        'wardwise_reading_wait_seconds_bucket{le="60.0"} 5.0',
        'wardwise_reading_wait_seconds_bucket{le="+Inf"} 6.0',
        "wardwise_reading_wait_seconds_count 6.0",
        "wardwise_reading_wait_seconds_sum 94.5",
        "# TYPE wardwise_drain_seconds histogram",
        'wardwise_drain_seconds_bucket{le="0.25"} 1.0',
        "wardwise_drain_seconds_count 1.0",
    ]
    assert [line for line in expected if line not in lines] == []
    assert not any(line.startswith("wardwise_reading_wait_seconds_bucket_") for line in lines)
