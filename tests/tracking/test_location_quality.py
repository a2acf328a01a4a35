"""Honest location through the real path: readings posted to the ingestion API, the shard
pipeline, the stored location, and the read API that judges it again at read time."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from hospital.devices import issue_token
from hospital.roles import NURSE
from tests.factories import AssetFactory, FloorFactory, ScannerFactory, TagFactory, ZoneFactory
from tests.tracking.readside import person
from tracking import activity, bus, live, pipeline, presence
from tracking.ingestion import RssiReading
from tracking.models import AssetLocation, ScannerHealth

pytestmark = [pytest.mark.services, pytest.mark.django_db]
URL = "/api/v1/readings/rssi/"


@pytest.fixture
def ward(redis_bus, settings, monkeypatch):
    """Two rooms side by side with a scanner in each, a scanner in the hall along them, a
    tagged pump; gateways post through the ingestion API with their own tokens."""
    monkeypatch.setattr("tracking.tasks.queue_claimed", lambda shard: None)
    settings.WARDWISE = {**settings.WARDWISE, "LATE_ALLOWANCE_S": 0.5, "HOLD_MAX_S": 1.0}
    floor = FloorFactory(width_m=20, height_m=9)
    west = ZoneFactory(floor=floor, name="West", polygon=[[0, 0], [10, 0], [10, 6], [0, 6]])
    east = ZoneFactory(floor=floor, name="East", polygon=[[10, 0], [20, 0], [20, 6], [10, 6]])
    ZoneFactory(
        floor=floor, name="Hall", kind="corridor", polygon=[[0, 6], [20, 6], [20, 9], [0, 9]]
    )
    scanners = {
        "w": ScannerFactory(serial="w", floor=floor, x=5, y=3),
        "e": ScannerFactory(serial="e", floor=floor, x=15, y=3),
        "h": ScannerFactory(serial="h", floor=floor, x=10, y=7.5),
    }
    tag = TagFactory(asset=AssetFactory(name="Pump 1"))
    nurse = APIClient()
    nurse.force_login(person("nurse-quality", NURSE))
    return {
        "floor": floor,
        "west": west,
        "east": east,
        "tag": tag.tag_id,
        "asset": tag.asset,
        "tokens": {serial: issue_token(scanner=s) for serial, s in scanners.items()},
        "nurse": nurse,
    }


def post(client, ward, serial, readings):
    response = client.post(
        URL,
        json.dumps({"readings": readings}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {ward['tokens'][serial]}",
    )
    assert response.status_code == 202, response.content
    assert response.json()["accepted"] == len(readings)


def hear(client, ward, start, end, levels, step=0.5):
    """The pump heard from `start` to `end` (epoch seconds) at `levels` {serial: dBm}."""
    for index, (serial, rssi) in enumerate(sorted(levels.items())):
        count = int((end - start) / step)
        readings = [
            {"tag": ward["tag"], "rssi": rssi, "ts": start + i * step + 0.01 * index}
            for i in range(count)
        ]
        post(client, ward, serial, readings)


def drain() -> list[dict]:
    updates = []
    for shard in range(bus.shard_count()):
        updates += pipeline.process_shard(shard, now=time.time() + 10).updates
    return updates


def location(ward) -> dict:
    body = ward["nurse"].get(f"/api/v1/assets/{ward['asset'].pk}/").json()
    return body["location"]


def test_a_well_heard_pump_is_confirmed_in_its_room(client, ward):
    now = time.time()
    hear(client, ward, now - 30, now - 2, {"w": -55.0, "e": -80.0, "h": -72.0})
    updates = drain()
    shown = location(ward)
    assert shown["zone"] == "West"
    assert shown["quality"] == "confirmed", json.dumps(shown)
    assert shown["quality_reasons"] == []
    assert shown["zone_confidence"] >= 0.85
    assert shown["scanners_used"] == 3
    assert shown["last_confirmed_zone"] == "West"
    assert shown["last_confirmed_zone_id"] == ward["west"].pk
    stored = AssetLocation.objects.get(asset=ward["asset"])
    assert stored.confirmed_at == stored.estimated_at  # the newest estimate confirmed it
    # the live payload carries the same judgement
    (last,) = [u for u in updates if u["asset_id"] == ward["asset"].pk][-1:]
    assert last["quality"] == "confirmed"
    assert last["last_confirmed_zone"] == "West"
    assert last["zone_confidence"] == stored.zone_probability
    assert last["last_confirmed_at"] == stored.confirmed_at.isoformat()
    assert set(live.location_update(last)) == set(live.LOCATION_FIELDS)


def test_a_low_confidence_estimate_shows_the_last_confirmed_room(client, ward):
    now = time.time()
    hear(client, ward, now - 60, now - 30, {"w": -55.0, "e": -80.0, "h": -72.0})
    drain()
    confirmed_at = AssetLocation.objects.get(asset=ward["asset"]).confirmed_at
    # then only the scanner of the other room hears it, faintly: one scanner gives a range,
    # not a side of a wall
    hear(client, ward, now - 30, now - 2, {"e": -78.0})
    updates = drain()
    shown = location(ward)
    assert shown["quality"] == "uncertain"
    assert "few-scanners" in shown["quality_reasons"]
    assert shown["scanners_used"] == 1
    assert shown["last_confirmed_zone"] == "West"
    # confirmed until the other scanners' evidence faded (the engine keeps it for 8 s)
    stored = AssetLocation.objects.get(asset=ward["asset"])
    assert shown["last_confirmed_at"] == stored.confirmed_at.isoformat().replace("+00:00", "Z")
    assert confirmed_at <= stored.confirmed_at <= confirmed_at + timedelta(seconds=12)
    assert stored.confirmed_at < stored.estimated_at - timedelta(seconds=10)
    last = [u for u in updates if u["asset_id"] == ward["asset"].pk][-1]
    assert last["quality"] == "uncertain"
    assert last["last_confirmed_zone"] == "West"


def test_the_last_confirmed_room_survives_a_lost_tag_state(client, ward):
    now = time.time()
    hear(client, ward, now - 60, now - 30, {"w": -55.0, "e": -80.0, "h": -72.0})
    drain()
    bus.client().flushdb()  # Redis lost: engine states, cursors, the kept confirmed zone
    pipeline._runtime = None
    hear(client, ward, now - 30, now - 2, {"e": -78.0})
    updates = drain()
    assert location(ward)["last_confirmed_zone"] == "West"
    assert [u for u in updates if u["asset_id"] == ward["asset"].pk][-1]["last_confirmed_zone"]


def test_when_the_rooms_scanner_goes_offline_the_pump_is_no_longer_confirmed_there(
    client, ward, monkeypatch
):
    now = time.time()
    hear(client, ward, now - 30, now - 2, {"w": -55.0, "e": -80.0, "h": -72.0})
    drain()
    activity.write_all()  # the gateways' batches on their health rows
    assert location(ward)["quality"] == "confirmed"
    sent = []
    monkeypatch.setattr(live, "_send", sent.extend)
    long_ago = timezone.now() - timedelta(minutes=20)
    ScannerHealth.objects.filter(scanner__serial="w").update(
        last_batch_at=long_ago, last_heartbeat_at=long_ago
    )
    assert presence.mark_offline_scanners() == 1
    shown = location(ward)
    assert shown["quality"] == "uncertain"
    assert shown["quality_reasons"] == ["scanners-offline"]
    assert shown["zone"] == "West"  # still the engine's best guess, no longer shown as sure
    assert shown["last_confirmed_zone"] == "West"
    # the floor maps are told at once, without waiting for a new position
    (message,) = [m for group, m in sent if group == live.floor_group(ward["floor"].pk)]
    assert message["update"]["quality"] == "uncertain"
    assert message["update"]["asset_id"] == ward["asset"].pk
    # positions computed while its health row says offline (readings straight onto the bus:
    # a batch through the API would bring it back online) confirm nothing in that room
    before = AssetLocation.objects.get(asset=ward["asset"]).confirmed_at
    for i in range(20):
        ts = now - 1 + i * 0.5
        bus.publish("w", [RssiReading(ts, ward["tag"], -55.0)], received_at=now)
        bus.publish("e", [RssiReading(ts + 0.01, ward["tag"], -80.0)], received_at=now)
    drain()
    stored = AssetLocation.objects.get(asset=ward["asset"])
    assert stored.estimated_at > before
    assert stored.confirmed_at == before


def test_a_pump_not_heard_for_a_minute_is_stale(client, ward):
    now = time.time()
    hear(client, ward, now - 120, now - 90, {"w": -55.0, "e": -80.0, "h": -72.0})
    drain()
    shown = location(ward)
    assert shown["quality"] == "stale"
    assert shown["quality_reasons"][0] == "not-heard"
    assert shown["presence"] == "present"  # missing only after WARDWISE_ASSET_MISSING_AFTER_S
    assert shown["last_confirmed_zone"] == "West"


def test_the_stale_threshold_is_a_setting(client, ward, settings):
    now = time.time()
    hear(client, ward, now - 40, now - 20, {"w": -55.0, "e": -80.0, "h": -72.0})
    drain()
    assert location(ward)["quality"] == "confirmed"
    settings.WARDWISE = {**settings.WARDWISE, "LOCATION_STALE_AFTER_S": 10}
    assert location(ward)["quality"] == "stale"


def test_evidence_split_between_two_rooms_is_not_a_confirmed_room(client, ward):
    now = time.time()
    hear(client, ward, now - 60, now - 30, {"w": -55.0, "e": -80.0, "h": -72.0})
    drain()
    # then as loud in both rooms: on the wall between them, or in either
    hear(client, ward, now - 30, now - 2, {"w": -68.0, "e": -68.0, "h": -74.0})
    drain()
    shown = location(ward)
    assert shown["quality"] == "uncertain"
    assert "low-confidence" in shown["quality_reasons"]
    assert shown["zone_confidence"] < 0.85
    assert shown["last_confirmed_zone"] == "West"


def test_a_deleted_confirmed_zone_is_forgotten_not_written_back(client, ward):
    now = time.time()
    hear(client, ward, now - 60, now - 30, {"w": -55.0, "e": -80.0, "h": -72.0})
    drain()
    ward["west"].delete()  # the site changed under the worker's kept state
    hear(client, ward, now - 30, now - 2, {"e": -78.0})
    drain()
    shown = location(ward)
    assert shown["last_confirmed_zone"] is None
    assert shown["last_confirmed_at"] is None
    assert shown["quality"] == "uncertain"
