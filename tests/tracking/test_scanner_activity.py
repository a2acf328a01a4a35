"""A gateway's batch counts reach its health row without a database write per batch, and none
are lost (tracking/activity.py)."""

import json
import time

import pytest
from django.db import DatabaseError

from hospital.devices import issue_token
from tests.factories import ScannerFactory
from tracking import activity, bus, presence
from tracking.models import ScannerHealth

URL = "/api/v1/readings/rssi/"
TAG = "ibeacon:f7826da6-4fa2-4e98-8024-bc5b71e0893e:9:{}"
pytestmark = pytest.mark.django_db


@pytest.fixture
def gateway(redis_bus, monkeypatch, settings):
    settings.WARDWISE = {**settings.WARDWISE, "SCANNER_HEALTH_WRITE_S": 3600.0}
    monkeypatch.setattr("tracking.tasks.queue_claimed", lambda shard: None)
    scanner = ScannerFactory(serial="gw-activity")
    return scanner, issue_token(scanner=scanner)


def send(client, token, good: int, bad: int = 0):
    now = time.time()
    rows = [{"tag": TAG.format(i), "rssi": -60, "ts": now - 1} for i in range(good)]
    rows += [{"tag": "mac:nope", "rssi": -60, "ts": now} for _ in range(bad)]
    response = client.post(
        URL,
        json.dumps({"readings": rows}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
    )
    assert response.status_code == 202, response.content


def counts(scanner):
    health = ScannerHealth.objects.get(scanner=scanner)
    return health.readings_accepted, health.readings_rejected


def test_the_first_batch_of_a_scanner_is_on_its_health_row_at_once(client, gateway):
    scanner, token = gateway
    send(client, token, 4, bad=1)
    health = ScannerHealth.objects.get(scanner=scanner)
    assert (health.online, health.readings_accepted, health.readings_rejected) == (True, 4, 1)
    assert health.last_batch_at is not None


def test_later_batches_gather_in_redis_until_the_next_write(client, gateway):
    scanner, token = gateway
    send(client, token, 4)
    send(client, token, 6, bad=2)
    send(client, token, 10)
    assert counts(scanner) == (4, 0)
    assert activity.write_all() == 1
    assert counts(scanner) == (20, 2)
    assert activity.write_all() == 0  # nothing counted twice
    assert counts(scanner) == (20, 2)


def test_a_write_becomes_due_again_after_the_interval(client, gateway, settings):
    scanner, token = gateway
    settings.WARDWISE = {**settings.WARDWISE, "SCANNER_HEALTH_WRITE_S": 0.05}
    send(client, token, 4)
    time.sleep(0.1)
    send(client, token, 5)
    assert counts(scanner) == (9, 0)


def test_a_failed_database_write_keeps_the_counts_for_the_next_one(client, gateway, monkeypatch):
    scanner, token = gateway
    send(client, token, 4)
    send(client, token, 7)

    def refuse(*args, **kwargs):
        raise DatabaseError("database is down")

    with monkeypatch.context() as patch:
        patch.setattr("tracking.store.add_scanner_activity", refuse)
        patch.setattr(ScannerHealth.objects, "filter", refuse)
        assert activity.write_all() == 0
    assert counts(scanner) == (4, 0)
    assert activity.write_all() == 1
    assert counts(scanner) == (11, 0)


@pytest.mark.parametrize("path", ["statement", "orm"])
def test_one_write_moves_the_counts_of_every_scanner(client, gateway, monkeypatch, path):
    if path == "orm":  # the embedded SQLite demo's path
        monkeypatch.setattr("tracking.store.set_based", lambda: False)
    scanner, token = gateway
    other = ScannerFactory(serial="gw-activity-2")
    other_token = issue_token(scanner=other)
    send(client, token, 4)  # writes (the first batch finds the write due)
    send(client, other_token, 3, bad=1)  # a first batch too, but the write is not due
    send(client, token, 2)
    assert not ScannerHealth.objects.filter(scanner=other).exists()

    assert activity.write_all() == 2
    assert counts(scanner) == (6, 0)
    assert counts(other) == (3, 1)
    assert ScannerHealth.objects.get(scanner=other).online


def test_the_offline_check_writes_gathered_counts_before_it_judges(client, gateway):
    scanner, token = gateway
    send(client, token, 3)
    ScannerHealth.objects.filter(scanner=scanner).update(
        last_batch_at="2020-01-01T00:00:00Z", online=True
    )
    send(client, token, 2)  # only in Redis so far
    assert presence.mark_offline_scanners() == 0
    health = ScannerHealth.objects.get(scanner=scanner)
    assert health.online
    assert health.readings_accepted == 5
    assert health.last_batch_at.year > 2020


def test_a_batch_appends_and_claims_every_shard_it_touches_in_one_script(redis_bus, settings):
    from tracking.ingestion import RssiReading

    now = time.time()
    readings = [RssiReading(now, TAG.format(i), -60.0) for i in range(64)]
    pipe = redis_bus.pipeline(transaction=False)
    shards = bus.queue_publish_and_claim(pipe, "gw-x", readings, now)
    (reply,) = pipe.execute()
    assert len(shards) > 1
    assert bus.read_handoff(shards, reply).claimed == shards
    pipe = redis_bus.pipeline(transaction=False)
    bus.queue_publish_and_claim(pipe, "gw-x", readings, now)
    (reply,) = pipe.execute()
    assert bus.read_handoff(shards, reply).claimed == []  # already queued: nobody queues them again
    lengths = bus.stream_lengths()
    assert sum(lengths.values()) == 2 * len(shards)


@pytest.mark.parametrize("path", ["statement", "orm"])
def test_a_scanner_deleted_meanwhile_does_not_hold_up_the_others(
    client, gateway, monkeypatch, path
):
    if path == "orm":
        monkeypatch.setattr("tracking.store.set_based", lambda: False)
    scanner, token = gateway
    gone = ScannerFactory(serial="gw-activity-gone")
    gone_token = issue_token(scanner=gone)
    send(client, token, 4)  # the first batch writes
    send(client, gone_token, 3)
    send(client, token, 2)
    gone.delete()

    activity.write_all()

    assert counts(scanner) == (6, 0)
    assert not ScannerHealth.objects.filter(scanner_id=gone.pk).exists()
    assert activity.write_all() == 0  # nothing was put back to fail again
