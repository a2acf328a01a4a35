"""POST /api/v1/readings/rssi/ against the real database and Redis (CONTRACT.md section 3)."""

import json
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from hospital.devices import issue_token
from tests.factories import ScannerFactory, TagFactory
from tests.ratelimit import next_window
from tracking import bus, pipeline
from tracking.models import AssetLocation, ScannerHealth

URL = "/api/v1/readings/rssi/"
pytestmark = pytest.mark.django_db


@pytest.fixture
def scanner(redis_bus, monkeypatch):
    monkeypatch.setattr("tracking.tasks.queue_claimed", lambda shard: None)
    return ScannerFactory(serial="gw-1")


@pytest.fixture
def token(scanner):
    return issue_token(scanner=scanner)


def post(client, token, payload, **extra):
    data = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
    return client.post(
        URL, data, content_type="application/json", HTTP_AUTHORIZATION=f"Token {token}", **extra
    )


def readings(count, tag="ibeacon:f7826da6-4fa2-4e98-8024-bc5b71e0893e:9:1", start=None):
    start = time.time() - 30 if start is None else start
    return [{"tag": tag, "rssi": -60 - i % 7, "ts": start + i * 0.1} for i in range(count)]


def queued_readings(client) -> list:
    rows = []
    for shard in range(bus.shard_count()):
        for _, fields in client.xrange(bus.STREAM_KEY.format(shard)):
            rows += [(fields[b"s"].decode(), *r) for r in json.loads(fields[b"r"])]
    return rows


def test_a_good_batch_is_accepted_and_queued_on_the_bus(client, token, redis_bus):
    response = post(client, token, {"batch": "b-1", "readings": readings(5)})
    assert response.status_code == 202
    assert response.json() == {
        "accepted": 5,
        "duplicates": 0,
        "rejected": [],
        "batch": "b-1",
        "duplicate_batch": False,
    }
    rows = queued_readings(redis_bus)
    assert len(rows) == 5
    assert {row[0] for row in rows} == {"gw-1"}


def test_bad_readings_are_listed_and_the_good_ones_kept(client, token, redis_bus):
    batch = readings(3)
    batch[1]["rssi"] = "strong"
    batch.append({"tag": "mac:zz", "rssi": -50, "ts": time.time()})
    body = post(client, token, {"readings": batch}).json()
    assert body["accepted"] == 2
    assert [item["index"] for item in body["rejected"]] == [1, 3]
    assert len(queued_readings(redis_bus)) == 2


def test_a_resent_batch_is_not_counted_twice(client, token, redis_bus):
    payload = {"batch": "b-7", "readings": readings(4)}
    assert post(client, token, payload).json()["accepted"] == 4
    again = post(client, token, payload)
    assert again.status_code == 202
    assert again.json()["accepted"] == 0
    assert again.json()["duplicates"] == 4
    assert again.json()["duplicate_batch"] is True
    assert len(queued_readings(redis_bus)) == 4
    assert ScannerHealth.objects.get().readings_accepted == 4


def test_the_same_batch_id_from_another_scanner_is_a_different_batch(client, token, redis_bus):
    other = issue_token(scanner=ScannerFactory(serial="gw-2"))
    payload = {"batch": "b-1", "readings": readings(2)}
    assert post(client, token, payload).json()["accepted"] == 2
    assert post(client, other, payload).json()["accepted"] == 2
    assert sorted(row[0] for row in queued_readings(redis_bus)) == ["gw-1"] * 2 + ["gw-2"] * 2


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ('{"readings": [{"tag": "ibeacon:', "not valid JSON"),
        ('"just a string"', "must be a JSON object"),
        ('{"batch": "x"}', "'readings' list"),
        ('{"readings": [], "scanner": "gw-2"}', "unknown key(s) in body: scanner"),
    ],
)
def test_a_malformed_envelope_is_a_400_that_says_why_and_stores_nothing(
    client, token, redis_bus, payload, message
):
    response = post(client, token, payload)
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert queued_readings(redis_bus) == []


def test_a_huge_batch_is_refused_whole(client, token, redis_bus, settings):
    settings.WARDWISE = {**settings.WARDWISE, "MAX_BATCH_READINGS": 100}
    response = post(client, token, {"readings": readings(101)})
    assert response.status_code == 400
    assert "too many readings: 101" in response.json()["detail"]
    assert queued_readings(redis_bus) == []


def test_an_oversized_body_is_refused_before_it_is_read(client, token, redis_bus, settings):
    settings.WARDWISE = {**settings.WARDWISE, "MAX_BODY_BYTES": 2000}
    response = post(client, token, {"readings": readings(100)})
    assert response.status_code == 400
    assert "larger than 2000 bytes" in response.json()["detail"]


@pytest.mark.parametrize(
    "header",
    [None, "Token nonsense", "Token ww_000000000000_secret", "Bearer abc", "Token a b"],
)
def test_no_or_a_bad_token_is_a_401(client, redis_bus, header):
    ScannerFactory()
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.post(
        URL, json.dumps({"readings": readings(1)}), content_type="application/json", **extra
    )
    assert response.status_code == 401
    assert queued_readings(redis_bus) == []


def test_a_revoked_or_rotated_token_is_a_401(client, scanner, redis_bus):
    old = issue_token(scanner=scanner)
    out = StringIO()
    call_command("scanner_token", "gw-1", stdout=out)
    new = out.getvalue().strip()
    assert post(client, old, {"readings": readings(1)}).status_code == 401
    assert post(client, new, {"readings": readings(1)}).status_code == 202
    call_command("scanner_token", "gw-1", "--revoke", stderr=StringIO())
    assert post(client, new, {"readings": readings(1)}).status_code == 401


def test_scanner_token_prints_only_the_token(scanner):
    out = StringIO()
    call_command("scanner_token", "gw-1", stdout=out)
    assert out.getvalue().count("\n") <= 1
    assert out.getvalue().startswith("ww_")


def test_a_person_cannot_post_readings(admin_client, redis_bus, scanner):
    response = admin_client.post(
        URL, json.dumps({"readings": readings(1)}), content_type="application/json"
    )
    assert response.status_code in (401, 403)
    assert queued_readings(redis_bus) == []


def test_a_device_is_throttled_with_retry_after(client, token, settings):
    settings.WARDWISE = {**settings.WARDWISE, "DEVICE_RATE_PER_S": 3}
    for _attempt in range(3):  # the limit is per clock second: four requests in one window
        window = next_window()
        answers = [post(client, token, {"readings": readings(1)}) for _ in range(4)]
        if int(time.time()) == window:
            break
    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    assert answers[-1]["Retry-After"] == "1"


def test_the_database_down_is_a_503_with_retry_after(client, token):
    original_port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"
    try:
        response = post(client, token, {"readings": readings(1)})
    finally:
        connection.close()
        connection.settings_dict["PORT"] = original_port
    assert response.status_code == 503
    assert response["Retry-After"]
    assert "database" in response.json()["detail"]


def test_redis_down_is_a_503_and_the_batch_id_stays_usable(client, token, settings):
    bus._client_for.cache_clear()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    try:
        response = post(client, token, {"batch": "b-9", "readings": readings(1)})
    finally:
        bus._client_for.cache_clear()
    assert response.status_code == 503
    assert response["Retry-After"]
    settings.REDIS_URL = settings.REDIS_URL  # restored by the settings fixture after the test


def test_accepted_readings_become_a_location(client, token, redis_bus, scanner):
    tag = TagFactory()
    post(client, token, {"readings": readings(40, tag=tag.tag_id, start=time.time() - 60)})
    for shard in range(bus.shard_count()):
        pipeline.process_shard(shard)
    location = AssetLocation.objects.get(asset=tag.asset)
    assert location.floor == scanner.floor
    assert location.accuracy_m > 0
    health = ScannerHealth.objects.get(scanner=scanner)
    assert health.online
    assert health.readings_accepted == 40
