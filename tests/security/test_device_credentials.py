"""Device credentials: hashed and compared in constant time, revoked and rotated everywhere at
once, and a gateway or sensor can speak only as itself (reading anything is refused: see
test_access_control.test_devices_read_nothing)."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hospital import devices
from hospital.devices import issue_token, revoke_tokens, verify_token_cached
from hospital.models import DeviceToken
from tests.factories import ColdChainSensorFactory, ScannerFactory
from tracking import bus

RSSI = "/api/v1/readings/rssi/"
ENVIRONMENT = "/api/v1/readings/environment/"
TAG = "ibeacon:f7826da6-4fa2-4e98-8024-bc5b71e0893e:9:1"


@pytest.fixture(autouse=True)
def _quiet(settings, monkeypatch):
    settings.WARDWISE = {**settings.WARDWISE, "DEVICE_RATE_PER_S": 1_000_000}
    monkeypatch.setattr("tracking.tasks.queue_claimed", lambda shard: None)
    devices.forget_verified_tokens()


def post(client, token, url, body):
    return client.post(
        url, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Token {token}"
    )


def heartbeat(client, token):
    return post(client, token, "/api/v1/scanners/heartbeat/", {"agent_version": "1", "uptime_s": 1})


def test_only_a_hash_of_the_secret_is_stored(db):
    scanner = ScannerFactory()
    plaintext = issue_token(scanner=scanner)
    _, lookup, secret = plaintext.split("_", 2)
    row = DeviceToken.objects.get(lookup=lookup)
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM hospital_devicetoken")
        stored = " ".join(str(v) for row in cursor.fetchall() for v in row)
    assert secret not in stored
    assert plaintext not in stored


def test_the_secret_is_compared_in_constant_time(db, monkeypatch):
    scanner = ScannerFactory()
    plaintext = issue_token(scanner=scanner)
    compared = []
    real = devices.hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(devices.hmac, "compare_digest", spy)
    assert devices.verify_token(plaintext) is not None
    wrong = plaintext[:-4] + ("AAAA" if not plaintext.endswith("AAAA") else "BBBB")
    assert devices.verify_token(wrong) is None
    assert len(compared) == 2  # every check of a secret goes through hmac.compare_digest


def test_an_unknown_lookup_costs_the_same_hash(db, monkeypatch):
    hashed = []
    real = devices._hash
    monkeypatch.setattr(devices, "_hash", lambda s: hashed.append(s) or real(s))
    assert devices.verify_token("ww_000000000000_" + "x" * 43) is None
    assert hashed == ["x" * 43]


def test_rotation_retires_the_old_token_at_once(db, client, redis_bus):
    scanner = ScannerFactory()
    old = issue_token(scanner=scanner)
    assert heartbeat(client, old).status_code == 204
    new = issue_token(scanner=scanner)
    assert heartbeat(client, old).status_code == 401
    assert heartbeat(client, new).status_code == 204


def test_revocation_takes_effect_at_once_in_this_process(db, client):
    scanner = ScannerFactory()
    token = issue_token(scanner=scanner)
    assert heartbeat(client, token).status_code == 204  # now trusted for VERIFIED_CACHE_S
    assert revoke_tokens(scanner=scanner) == 1
    assert heartbeat(client, token).status_code == 401


def test_revocation_in_another_process_is_seen_at_once(db):
    """Another process revokes: the database row changes (no signal here) and it bumps the
    shared revocation epoch; this process's cached trust ends on the next request."""
    scanner = ScannerFactory()
    token = issue_token(scanner=scanner)
    assert verify_token_cached(token) is not None
    DeviceToken.objects.filter(scanner=scanner).update(revoked_at="2026-01-01T00:00:00Z")
    assert verify_token_cached(token) is not None  # still trusted: nobody said anything
    devices.bump_revocation_epoch()  # as another process's revocation does
    assert verify_token_cached(token) is None


def test_without_the_shared_cache_trust_still_ends_within_the_bound(db, monkeypatch):
    scanner = ScannerFactory()
    token = issue_token(scanner=scanner)
    assert verify_token_cached(token) is not None
    DeviceToken.objects.filter(scanner=scanner).update(revoked_at="2026-01-01T00:00:00Z")
    monkeypatch.setattr(devices, "revocation_epoch", lambda: None)
    devices._verified.update({k: (v[0], v[1], None) for k, v in devices._verified.items()})
    assert verify_token_cached(token) is not None
    later = time.monotonic() + devices.VERIFIED_CACHE_S + 0.1
    monkeypatch.setattr(devices.time, "monotonic", lambda: later)
    assert verify_token_cached(token) is None


def test_with_a_readable_epoch_trust_lasts_longer_and_still_ends(db, monkeypatch):
    scanner = ScannerFactory()
    token = issue_token(scanner=scanner)
    assert devices.revocation_epoch() is not None
    assert verify_token_cached(token) is not None
    DeviceToken.objects.filter(scanner=scanner).update(revoked_at="2026-01-01T00:00:00Z")
    start = time.monotonic()
    later = start + devices.VERIFIED_CACHE_S + 1
    monkeypatch.setattr(devices.time, "monotonic", lambda: later)
    assert verify_token_cached(token) is not None  # no database query past the short bound
    much_later = start + devices.VERIFIED_CACHE_WITH_EPOCH_S + 1
    monkeypatch.setattr(devices.time, "monotonic", lambda: much_later)
    assert verify_token_cached(token) is None


def test_revoking_in_the_admin_and_decommissioning_a_gateway_apply_everywhere(db, client):
    scanner = ScannerFactory()
    token = issue_token(scanner=scanner)
    assert heartbeat(client, token).status_code == 204
    epoch = devices.revocation_epoch()
    scanner.is_active = False
    scanner.save()
    assert devices.revocation_epoch() != epoch
    assert heartbeat(client, token).status_code == 401
    scanner.is_active = True
    scanner.save()
    row = DeviceToken.objects.get(scanner=scanner, revoked_at__isnull=True)
    row.revoked_at = "2026-01-01T00:00:00Z"
    row.save()
    assert heartbeat(client, token).status_code == 401


def test_a_gateway_posts_only_as_itself(db, client, redis_bus):
    """Readings are attributed to the token's scanner, whatever the body claims."""
    mine = ScannerFactory(serial="gw-mine")
    ScannerFactory(serial="gw-other")
    token = issue_token(scanner=mine)
    reading = {"tag": TAG, "rssi": -60, "ts": time.time() - 1, "scanner": "gw-other"}
    response = post(client, token, RSSI, {"scanner": "gw-other", "readings": [reading]})
    assert response.status_code in (202, 400)
    scanners = {
        fields[b"s"].decode()
        for shard in range(bus.shard_count())
        for _, fields in redis_bus.xrange(bus.STREAM_KEY.format(shard))
    }
    assert scanners <= {"gw-mine"}


def test_a_sensor_token_is_good_for_its_own_sensor_only(db, client):
    fridge = ColdChainSensorFactory(serial="sec-own")
    other = ColdChainSensorFactory(serial="sec-other")
    token = issue_token(sensor=fridge)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
    body = {
        "readings": [
            {"sensor": "sec-own", "ts": now, "temperature_c": 4.0},
            {"sensor": "sec-other", "ts": now, "temperature_c": 4.0},
        ]
    }
    answer = post(client, token, ENVIRONMENT, body).json()
    assert answer["accepted"] == 1
    assert "belongs to sensor 'sec-own'" in answer["rejected"][0]["reason"]
    assert other.readings.count() == 0
    # A sensor's token is no gateway's: the RSSI and heartbeat endpoints refuse it.
    assert post(client, token, RSSI, {"readings": []}).status_code == 403
    assert heartbeat(client, token).status_code == 403


def test_a_gateway_relays_only_the_sensors_assigned_to_it(db, client):
    gateway = ScannerFactory(serial="gw-relay")
    mine = ColdChainSensorFactory(serial="sec-relayed", gateway=gateway)
    ColdChainSensorFactory(serial="sec-not-mine")
    token = issue_token(scanner=gateway)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
    body = {
        "readings": [
            {"sensor": "sec-relayed", "ts": now, "temperature_c": 4.0},
            {"sensor": "sec-not-mine", "ts": now, "temperature_c": 4.0},
        ]
    }
    answer = post(client, token, ENVIRONMENT, body).json()
    assert answer["accepted"] == 1
    assert "not relayed by gateway" in answer["rejected"][0]["reason"]
    assert mine.readings.count() == 1


def test_last_use_records_the_gateways_address_behind_the_proxy(db, client, settings):
    """Behind nginx every request comes from 127.0.0.1; the address that used the token is the
    one the proxy appended to X-Forwarded-For."""
    settings.WARDWISE_PROXY_HOPS = 1
    scanner = ScannerFactory(serial="gw-behind-proxy")
    token = issue_token(scanner=scanner)
    response = client.post(
        "/api/v1/scanners/heartbeat/",
        json.dumps({"agent_version": "1", "uptime_s": 1}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
        HTTP_X_FORWARDED_FOR="203.0.113.9, 10.20.30.40",
        REMOTE_ADDR="127.0.0.1",
    )
    assert response.status_code < 300, response.content
    stored = DeviceToken.objects.get(scanner=scanner, revoked_at__isnull=True)
    assert stored.last_used_ip == "10.20.30.40"
    assert stored.last_used_at is not None


@pytest.mark.parametrize("owner", ["scanner", "sensor"])
def test_a_verified_token_comes_with_its_owner_as_the_orm_loads_it(db, owner):
    """verify_token's plain query gives the row select_related gives, owner included, in one
    query: the request's device checks (active gateway, relayed sensors) need no other."""
    device = ScannerFactory() if owner == "scanner" else ColdChainSensorFactory()
    token = issue_token(**{owner: device})
    expected = DeviceToken.objects.select_related("scanner", "sensor").get(
        revoked_at__isnull=True, **{owner: device}
    )
    with CaptureQueriesContext(connection) as queries:
        verified = devices.verify_token(token)
        loaded = getattr(verified, owner)
        other = verified.sensor if owner == "scanner" else verified.scanner
    assert len(queries.captured_queries) == 1
    assert other is None
    assert {f.attname: getattr(verified, f.attname) for f in DeviceToken._meta.concrete_fields} == {
        f.attname: getattr(expected, f.attname) for f in DeviceToken._meta.concrete_fields
    }
    owner_fields = type(device)._meta.concrete_fields
    assert {f.attname: getattr(loaded, f.attname) for f in owner_fields} == {
        f.attname: getattr(getattr(expected, owner), f.attname) for f in owner_fields
    }
