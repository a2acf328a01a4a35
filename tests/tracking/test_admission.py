"""Admission control for RSSI ingestion (tracking/intake.py, tracking/bus.py): a batch touching a
shard whose oldest unprocessed entry is older than WARDWISE_MAX_BACKLOG_S is refused whole with
503 + Retry-After, so the backlog stays bounded and nothing answered 202 is trimmed unprocessed."""

import json
import re
import time
from collections import defaultdict

import pytest

from hospital import observability
from hospital.devices import issue_token
from tests.factories import ScannerFactory
from tracking import bus, intake, pipeline
from tracking.ingestion import RssiReading
from tracking.models import ScannerHealth

URL = "/api/v1/readings/rssi/"
TAG = "ibeacon:f7826da6-4fa2-4e98-8024-bc5b71e0893e:9:{}"
LIMIT_S = 60
pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch):
    """The shards whose processing task the request queued."""
    shards: list[int] = []
    monkeypatch.setattr("tracking.tasks.queue_claimed", shards.append)
    return shards


@pytest.fixture
def gateway(redis_bus, queued, isolated_metrics, settings):
    settings.WARDWISE = {**settings.WARDWISE, "MAX_BACKLOG_S": LIMIT_S}
    scanner = ScannerFactory(serial="gw-admission")
    return scanner, issue_token(scanner=scanner)


def tags_by_shard(count: int = 64) -> dict[int, list[str]]:
    by_shard = defaultdict(list)
    for i in range(count):
        by_shard[bus.shard_of(TAG.format(i))].append(TAG.format(i))
    return by_shard


def a_batch(batch_id: str | None = "b-1", count: int = 64) -> dict:
    """One reading for each of `count` tags: a batch that touches many shards."""
    now = time.time()
    body = {"readings": [{"tag": TAG.format(i), "rssi": -60, "ts": now - 1} for i in range(count)]}
    if batch_id:
        body["batch"] = batch_id
    return body


def post(client, token, body):
    return client.post(
        URL, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Token {token}"
    )


def server_ms(redis_bus) -> int:
    seconds, micros = redis_bus.time()
    return seconds * 1000 + micros // 1000


def seed_backlog(redis_bus, shard: int, age_s: float, entries: int = 1) -> list[bytes]:
    """Unprocessed entries on a shard, the oldest `age_s` old by the Redis clock."""
    oldest = server_ms(redis_bus) - int(age_s * 1000)
    return [
        redis_bus.xadd(
            bus.STREAM_KEY.format(shard), {"s": "gw-old", "t": "0", "r": "[]"}, id=f"{oldest + i}-0"
        )
        for i in range(entries)
    ]


def stream_lengths(redis_bus) -> dict[int, int]:
    return {s: n for s, n in bus.stream_lengths().items() if n}


def counter(name: str, **labels) -> float:
    counters, _ = observability.read_shared()
    return counters.get(observability._field(name, labels), 0.0)


def test_a_lagging_shard_refuses_the_whole_batch_with_503_and_retry_after(
    client, gateway, redis_bus
):
    scanner, token = gateway
    lagging = next(iter(tags_by_shard()))
    seed_backlog(redis_bus, lagging, age_s=90)
    response = post(client, token, a_batch())
    assert response.status_code == 503
    assert response["Retry-After"] == "30"  # 90 s behind, 60 s allowed: 30 s (the maximum)
    body = response.json()
    assert body["retry_after_s"] == 30
    assert re.fullmatch(
        rf"processing is 9\d\.\d s behind on shard {lagging} \(limit 60 s\); retry after 30 s",
        body["detail"],
    ), body["detail"]
    assert stream_lengths(redis_bus) == {lagging: 1}  # nothing appended to any stream
    assert not redis_bus.exists(f"ww:batch:{scanner.pk}:b-1")
    assert not ScannerHealth.objects.filter(scanner=scanner).exists()
    assert not redis_bus.exists(f"ww:activity:{scanner.pk}")


def test_the_refused_batch_is_accepted_once_the_backlog_clears(client, gateway, redis_bus):
    _, token = gateway
    lagging = next(iter(tags_by_shard()))
    (entry,) = seed_backlog(redis_bus, lagging, age_s=90)
    assert post(client, token, a_batch()).status_code == 503
    redis_bus.set(pipeline.CURSOR_KEY.format(lagging), entry)  # the workers caught up
    response = post(client, token, a_batch())
    assert response.status_code == 202
    assert response.json()["accepted"] == 64
    assert response.json()["duplicate_batch"] is False
    lengths = stream_lengths(redis_bus)
    assert set(lengths) == set(tags_by_shard())
    assert lengths[lagging] == 2


def test_the_lagging_shards_expired_claim_is_taken_and_its_task_queued(
    client, gateway, redis_bus, queued
):
    _, token = gateway
    lagging = next(iter(tags_by_shard()))
    seed_backlog(redis_bus, lagging, age_s=90)
    assert not redis_bus.exists(bus.SCHEDULED_KEY.format(lagging))  # its task was lost
    assert post(client, token, a_batch()).status_code == 503
    assert queued == [lagging]
    assert 0 < redis_bus.ttl(bus.SCHEDULED_KEY.format(lagging)) <= bus.SCHEDULE_CLAIM_S
    claims = {s for s in range(bus.shard_count()) if redis_bus.exists(bus.SCHEDULED_KEY.format(s))}
    assert claims == {lagging}  # the shards the batch did not reach are not claimed
    assert post(client, token, a_batch()).status_code == 503
    assert queued == [lagging]  # queued already: nobody queues it twice


def test_the_shard_most_behind_is_named(client, gateway, redis_bus):
    _, token = gateway
    first, second = list(tags_by_shard())[:2]
    seed_backlog(redis_bus, first, age_s=70)
    seed_backlog(redis_bus, second, age_s=200)
    body = post(client, token, a_batch()).json()
    assert f"behind on shard {second} " in body["detail"]
    assert body["detail"].startswith("processing is 2")


def test_a_backlog_under_the_limit_is_accepted(client, gateway, redis_bus):
    _, token = gateway
    shard = next(iter(tags_by_shard()))
    seed_backlog(redis_bus, shard, age_s=LIMIT_S - 20, entries=3)
    response = post(client, token, a_batch())
    assert response.status_code == 202
    assert stream_lengths(redis_bus)[shard] == 4


def test_a_shard_processed_up_to_date_is_not_lagging_however_old_its_entries(
    client, gateway, redis_bus
):
    _, token = gateway
    shard = next(iter(tags_by_shard()))
    entries = seed_backlog(redis_bus, shard, age_s=3600, entries=5)
    redis_bus.set(pipeline.CURSOR_KEY.format(shard), entries[-1])
    assert post(client, token, a_batch()).status_code == 202


def test_a_limit_of_zero_turns_admission_control_off(client, gateway, redis_bus, settings):
    _, token = gateway
    settings.WARDWISE = {**settings.WARDWISE, "MAX_BACKLOG_S": 0}
    shard = next(iter(tags_by_shard()))
    seed_backlog(redis_bus, shard, age_s=3600)
    assert post(client, token, a_batch()).status_code == 202


def test_a_batch_without_an_id_is_refused_too(client, gateway, redis_bus):
    _, token = gateway
    shard = next(iter(tags_by_shard()))
    seed_backlog(redis_bus, shard, age_s=90)
    assert post(client, token, a_batch(batch_id=None)).status_code == 503
    assert stream_lengths(redis_bus) == {shard: 1}


def test_only_the_shards_a_batch_touches_count(client, gateway, redis_bus):
    _, token = gateway
    by_shard = tags_by_shard()
    lagging, other = list(by_shard)[:2]
    seed_backlog(redis_bus, lagging, age_s=90)
    now = time.time()
    body = {"readings": [{"tag": tag, "rssi": -60, "ts": now - 1} for tag in by_shard[other]]}
    assert post(client, token, body).status_code == 202


def test_refusals_and_acceptances_are_counted_apart(client, gateway, redis_bus):
    _, token = gateway
    lagging = next(iter(tags_by_shard()))
    (entry,) = seed_backlog(redis_bus, lagging, age_s=90)
    body = a_batch()
    body["readings"].append({"tag": "mac:nope", "rssi": -60, "ts": time.time()})
    assert post(client, token, body).status_code == 503
    assert counter("batches_total", outcome="overloaded") == 1
    assert counter("readings_refused_total", kind="rssi") == 64
    assert counter("batches_total", outcome="accepted") == 0
    assert counter("readings_accepted_total", kind="rssi") == 0
    assert counter("readings_rejected_total", kind="rssi") == 0
    redis_bus.set(pipeline.CURSOR_KEY.format(lagging), entry)
    assert post(client, token, body).status_code == 202
    assert counter("batches_total", outcome="accepted") == 1
    assert counter("readings_accepted_total", kind="rssi") == 64
    assert counter("readings_rejected_total", kind="rssi") == 1
    text = observability.render_metrics().decode()
    assert 'wardwise_batches_total{outcome="overloaded"} 1.0' in text
    assert 'wardwise_readings_refused_total{kind="rssi"} 64.0' in text


def test_without_shared_redis_the_embedded_bus_refuses_and_counts_the_same(
    client, gateway, settings
):
    """The embedded demo: fakeredis runs the same script, metrics are counted in-process."""
    _, token = gateway
    settings.REDIS_URL = ""
    embedded = bus.client()
    embedded.flushdb()
    try:
        shard = next(iter(tags_by_shard()))
        (entry,) = seed_backlog(embedded, shard, age_s=90)
        assert post(client, token, a_batch()).status_code == 503
        assert counter("batches_total", outcome="overloaded") == 1
        assert counter("readings_refused_total", kind="rssi") == 64
        embedded.set(pipeline.CURSOR_KEY.format(shard), entry)
        assert post(client, token, a_batch()).status_code == 202
        assert counter("readings_accepted_total", kind="rssi") == 64
        assert counter("readings_refused_total", kind="rssi") == 64
    finally:
        embedded.flushdb()
        observability.reset()


def test_the_script_runs_each_follow_up_only_for_its_outcome(redis_bus, settings):
    settings.WARDWISE = {**settings.WARDWISE, "MAX_BACKLOG_S": LIMIT_S}
    now = time.time()
    readings = [RssiReading(now, TAG.format(i), -60.0) for i in range(8)]

    def hand_off():
        admitted, refused = bus.follow_up(), bus.follow_up()
        admitted.hincrby("test:outcomes", "admitted", 1)
        admitted.set("test:due", 1, nx=True, ex=60)
        refused.hincrby("test:outcomes", "refused", 1)
        pipe = redis_bus.pipeline(transaction=False)
        shards = bus.queue_publish_and_claim(
            pipe, "gw-x", readings, now, if_admitted=admitted, if_refused=refused
        )
        return bus.read_handoff(shards, pipe.execute()[0])

    first = hand_off()
    assert first.admitted
    assert first.replies == [1, b"OK"]
    assert hand_off().replies == [2, None]  # SET NX of a key that exists
    shard = bus.shard_of(readings[0].tag)
    redis_bus.delete(bus.STREAM_KEY.format(shard))
    seed_backlog(redis_bus, shard, age_s=75)
    refused = hand_off()
    assert (refused.admitted, refused.lagging, refused.replies) == (False, shard, [1])
    assert 75 <= refused.lag_s < 80
    assert redis_bus.hgetall("test:outcomes") == {b"admitted": b"2", b"refused": b"1"}


@pytest.mark.parametrize(
    ("lag_s", "limit_s", "expected"),
    [
        (60.2, 60, 2),  # just over: the minimum, not 1 s
        (67.0, 60, 7),
        (67.01, 60, 8),  # whole seconds, rounded up
        (75.0, 60, 15),
        (89.5, 60, 30),
        (3600.0, 60, 30),  # far behind: the maximum
        (float("inf"), 60, 30),
    ],
)
def test_retry_after_is_the_lag_beyond_the_limit_within_bounds(lag_s, limit_s, expected):
    assert intake.retry_after_s(lag_s, limit_s) == expected


def test_overloaded_names_the_shard_the_lag_and_the_wait():
    exc = intake.Overloaded(shard=3, lag_s=75.04, limit_s=60.0)
    assert str(exc) == "processing is 75.0 s behind on shard 3 (limit 60 s); retry after 16 s"
    assert exc.retry_after_s == 16
