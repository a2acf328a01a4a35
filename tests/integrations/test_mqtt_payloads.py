"""MQTT topics and payload shapes mapped to the contract's batch (no broker, no database)."""

import json

import pytest

from integrations import mqtt
from tracking.ingestion import validate_rssi_batch

NOW = 1_795_000_000.0
TS = "2026-11-18T08:26:40.000Z"


def test_topics_name_serial_shape_and_optional_token():
    assert mqtt.parse_topic("wardwise/gw-1/rssi") == mqtt.Route("gw-1", "rssi", None)
    assert mqtt.parse_topic("site/a/wardwise/AC233FC0A1B2/minew/ww_ab_cd") == mqtt.Route(
        "AC233FC0A1B2", "minew", "ww_ab_cd"
    )
    for bad in ("wardwise/gw-1", "rssi", "wardwise//rssi", "wardwise/gw/rssi/t/extra"):
        with pytest.raises(mqtt.PayloadError):
            mqtt.parse_topic(bad)


def test_plain_shape_takes_the_token_out_and_names_the_batch_by_content():
    payload = json.dumps(
        {"token": "ww_x_y", "readings": [{"tag": "mac:aa:bb:cc:dd:ee:ff", "rssi": -60, "ts": TS}]}
    ).encode()
    mapped = mqtt.plain_batch(payload)
    body = json.loads(mapped.body)
    assert mapped.token == "ww_x_y"
    assert "token" not in body
    assert body["batch"] == mqtt.digest_batch_id(payload)
    batch = validate_rssi_batch(mapped.body, now=NOW)
    assert [r.tag for r in batch.readings] == ["mac:AA:BB:CC:DD:EE:FF"]
    explicit = mqtt.plain_batch(json.dumps({"batch": "b-1", "readings": []}).encode())
    assert json.loads(explicit.body)["batch"] == "b-1"


def test_plain_shape_refuses_what_is_not_an_object():
    for payload in (b"[1, 2]", b"not json", b"\xff\xfe", json.dumps({"token": 5}).encode()):
        with pytest.raises(mqtt.PayloadError):
            mqtt.plain_batch(payload)


MINEW = [
    {"timestamp": TS, "type": "Gateway", "mac": "AC233FC0A1B2", "gatewayFree": 93},
    {
        "timestamp": TS,
        "type": "iBeacon",
        "mac": "AC233F2A1B2C",
        "rssi": -61,
        "ibeaconUuid": "F7826DA64FA24E988024BC5B71E0893E",
        "ibeaconMajor": 1,
        "ibeaconMinor": 2,
        "ibeaconTxPower": -59,
        "battery": 87,
    },
    {"timestamp": TS, "type": "Unknown", "mac": "ac:23:3f:00:11:22", "rssi": -75, "rawData": "02"},
    {"timestamp": TS, "type": "iBeacon", "ibeaconUuid": "F7826DA6", "rssi": -70},
    {"type": "Unknown", "mac": "AC233F001122"},
    "garbage",
]


def test_minew_array_maps_ibeacon_and_mac_entries_and_rejects_by_original_index():
    mapped = mqtt.minew_readings(json.dumps(MINEW).encode())
    body = json.loads(mapped.body)
    assert body["readings"] == [
        {
            "tag": "ibeacon:F7826DA6-4FA2-4E98-8024-BC5B71E0893E:1:2",
            "rssi": -61,
            "ts": TS,
            "battery_pct": 87,
        },
        {"tag": "mac:ac:23:3f:00:11:22", "rssi": -75, "ts": TS},
    ]
    assert mapped.origin == [1, 2]
    assert mapped.skipped == 1
    assert [r["index"] for r in mapped.rejected] == [3, 4, 5]
    batch = validate_rssi_batch(mapped.body, now=NOW)
    assert [r.tag for r in batch.readings] == [
        "ibeacon:f7826da6-4fa2-4e98-8024-bc5b71e0893e:1:2",
        "mac:AC:23:3F:00:11:22",
    ]


def test_validation_rejections_are_reported_by_the_payload_index():
    entries = [
        MINEW[0],
        {"timestamp": TS, "type": "Unknown", "mac": "AC233F001122", "rssi": -500},
        {"timestamp": TS, "type": "Unknown", "mac": "AC233F001133", "rssi": -70},
    ]
    mapped = mqtt.minew_readings(json.dumps(entries).encode())
    batch = validate_rssi_batch(mapped.body, now=NOW)
    merged = mqtt.merge_rejections(mapped, batch.rejected)
    assert [item["index"] for item in merged] == [1]
    assert "out of range" in merged[0]["reason"]


def test_minew_payload_must_be_an_array():
    with pytest.raises(mqtt.PayloadError):
        mqtt.minew_readings(b'{"readings": []}')
