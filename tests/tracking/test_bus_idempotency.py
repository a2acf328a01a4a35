"""The batch id's idempotency check inside the append script (tracking/bus.py, tracking/intake.py):
a resend is recognised, answered and counted in the same single Redis round trip as a new batch,
and appends nothing."""

import json
import time

import pytest
import redis.connection

from hospital import observability
from tests.factories import ScannerFactory
from tracking import bus, intake, pipeline

TAG = "ibeacon:f7826da6-4fa2-4e98-8024-bc5b71e0893e:9:{}"
pytestmark = pytest.mark.django_db


@pytest.fixture
def scanner(redis_bus, isolated_metrics, monkeypatch, settings):
    settings.WARDWISE = {**settings.WARDWISE, "MAX_BACKLOG_S": 60}
    monkeypatch.setattr("tracking.tasks.queue_claimed", lambda shard: None)
    return ScannerFactory(serial="gw-idem")


@pytest.fixture
def round_trips(monkeypatch):
    """Requests sent to any Redis server (a pipeline's whole batch is one)."""
    sent: list[int] = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        sent.append(1)
        return original(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return sent


def body(batch_id="b-1", count=12, bad=0) -> bytes:
    now = time.time()
    readings = [{"tag": TAG.format(i), "rssi": -60, "ts": now - 1} for i in range(count)]
    readings += [{"tag": "mac:nope", "rssi": -60, "ts": now - 1}] * bad
    return json.dumps({"batch": batch_id, "readings": readings}).encode()


def entries(client) -> int:
    return sum(client.xlen(bus.STREAM_KEY.format(s)) for s in range(bus.shard_count()))


def counter(name: str, **labels) -> float:
    counters, _ = observability.read_shared()
    return counters.get(observability._field(name, labels), 0.0)


def test_a_new_batch_costs_one_round_trip(scanner, redis_bus, round_trips):
    intake.accept_rssi_batch(scanner, body("b-0"))  # the scanner's first writes its counts at once
    round_trips.clear()
    assert intake.accept_rssi_batch(scanner, body())["accepted"] == 12
    assert len(round_trips) == 1


def test_a_duplicate_batch_costs_one_round_trip_and_appends_nothing(
    scanner, redis_bus, round_trips
):
    first = intake.accept_rssi_batch(scanner, body(bad=1))
    appended = entries(redis_bus)
    activity = redis_bus.hgetall(f"ww:activity:{scanner.pk}")
    round_trips.clear()
    again = intake.accept_rssi_batch(scanner, body(bad=1))
    assert len(round_trips) == 1
    assert again == {
        "accepted": 0,
        "duplicates": 12,
        "rejected": first["rejected"],
        "batch": "b-1",
        "duplicate_batch": True,
    }
    assert entries(redis_bus) == appended
    assert redis_bus.hgetall(f"ww:activity:{scanner.pk}") == activity
    assert counter("batches_total", outcome="duplicate") == 1
    assert counter("batches_total", outcome="accepted") == 1
    assert counter("readings_accepted_total", kind="rssi") == 12


def test_the_answer_is_remembered_for_a_day(scanner, redis_bus):
    intake.accept_rssi_batch(scanner, body())
    key = f"ww:batch:{scanner.pk}:b-1"
    assert json.loads(redis_bus.get(key))["accepted"] == 12
    assert intake.BATCH_MEMORY_S - 5 < redis_bus.ttl(key) <= intake.BATCH_MEMORY_S


def test_a_resend_is_a_duplicate_even_while_its_shards_lag(scanner, redis_bus):
    """As before the check moved into the script: the id is checked before admission."""
    intake.accept_rssi_batch(scanner, body())
    shard = bus.shard_of(TAG.format(0))
    seconds, micros = redis_bus.time()
    redis_bus.delete(bus.STREAM_KEY.format(shard))
    redis_bus.xadd(
        bus.STREAM_KEY.format(shard),
        {"s": "gw-old", "t": "0", "r": "[]"},
        id=f"{seconds * 1000 + micros // 1000 - 90_000}-0",
    )
    redis_bus.set(pipeline.CURSOR_KEY.format(shard), "0-0")
    assert intake.accept_rssi_batch(scanner, body())["duplicate_batch"] is True
    with pytest.raises(intake.Overloaded):
        intake.accept_rssi_batch(scanner, body("b-2"))
    assert not redis_bus.exists(f"ww:batch:{scanner.pk}:b-2")


def test_a_batch_id_stored_as_pending_by_an_earlier_version_is_a_duplicate(scanner, redis_bus):
    redis_bus.set(f"ww:batch:{scanner.pk}:b-1", "pending")
    appended = entries(redis_bus)
    answer = intake.accept_rssi_batch(scanner, body())
    assert (answer["duplicate_batch"], answer["duplicates"]) == (True, 0)
    assert entries(redis_bus) == appended


def test_without_shared_redis_a_duplicate_is_counted_in_process(scanner, settings):
    settings.REDIS_URL = ""
    embedded = bus.client()
    embedded.flushdb()
    try:
        intake.accept_rssi_batch(scanner, body())
        assert intake.accept_rssi_batch(scanner, body())["duplicate_batch"] is True
        assert counter("batches_total", outcome="duplicate") == 1
        assert entries(embedded) == len({bus.shard_of(TAG.format(i)) for i in range(12)})
    finally:
        embedded.flushdb()
        observability.reset()
