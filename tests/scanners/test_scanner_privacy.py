"""Privacy by default: only registered tag identities produce readings."""

import pytest
from test_scanner_frames import (
    EDDYSTONE_INSTANCE,
    EDDYSTONE_NAMESPACE,
    EDDYSTONE_TLM_ADV,
    EDDYSTONE_UID_ADV,
    IBEACON_ADV,
    RUUVI_RAWV2,
)

from scanners.ble_frames import parse_ad_structures
from scanners.edge import AdvertisementProcessor
from scanners.privacy import TagFilter

HOSPITAL_UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"
OTHER_UUID = "2f234454-cf6d-4a0f-adf2-f4911ba9ffa6"


def advert(raw: bytes):
    return parse_ad_structures(raw)


def processor(**filters) -> AdvertisementProcessor:
    return AdvertisementProcessor(TagFilter.build(**filters), clock=lambda: 1000.0)


PHONES = [
    # iPhone: Apple Nearby Info, random resolvable address.
    ("4A:1B:2C:3D:4E:5F", {0x004C: bytes.fromhex("1005031c5a8f41")}, {}),
    # Android phone: Google Fast Pair service data.
    ("71:22:33:44:55:66", {}, {"0000fe2c-0000-1000-8000-00805f9b34fb": b"\x00\xa3\xf2"}),
    # Windows laptop: Microsoft Swift Pair.
    ("5C:11:22:33:44:55", {0x0006: bytes.fromhex("030080")}, {}),
    # Someone's own iBeacon app broadcasting a UUID that is not the hospital's.
    (
        "60:00:00:00:00:01",
        {0x004C: bytes.fromhex("0215" + OTHER_UUID.replace("-", "") + "00010001c5")},
        {},
    ),
]


def test_default_filter_uploads_nothing():
    empty = processor()
    mfg, svc = advert(IBEACON_ADV)
    assert empty.handle("AC:23:3F:00:00:01", -60, mfg, svc) == ([], [])
    assert empty.tag_filter.is_empty


@pytest.mark.parametrize(("address", "mfg", "svc"), PHONES)
def test_phones_and_foreign_devices_never_produce_readings(address, mfg, svc):
    configured = processor(
        ibeacon_uuids=[HOSPITAL_UUID],
        eddystone_namespaces=[EDDYSTONE_NAMESPACE],
        mac_prefixes=["AC:23:3F"],
    )
    assert configured.handle(address, -50, mfg, svc) == ([], [])
    assert configured.stats.filtered_out == 1


def test_configured_ibeacon_uuid_passes_case_insensitively():
    configured = processor(ibeacon_uuids=[HOSPITAL_UUID.upper()])
    mfg, svc = advert(IBEACON_ADV)
    readings, environment = configured.handle("60:00:00:00:00:02", -61, mfg, svc)
    assert [(r.tag, r.rssi) for r in readings] == [(f"ibeacon:{HOSPITAL_UUID}:1:2", -61)]
    assert environment == []


def test_mac_prefix_identity_only_when_no_beacon_identity_passes():
    configured = processor(ibeacon_uuids=[HOSPITAL_UUID], mac_prefixes=["ac-23-3f"])
    readings, _ = configured.handle("ac:23:3f:01:02:03", -70, {}, {})
    assert [r.tag for r in readings] == ["mac:AC:23:3F:01:02:03"]
    mfg, svc = advert(IBEACON_ADV)
    readings, _ = configured.handle("AC:23:3F:01:02:03", -70, mfg, svc)
    assert [r.tag for r in readings] == [f"ibeacon:{HOSPITAL_UUID}:1:2"]
    readings, _ = configured.handle("AC:24:00:00:00:00", -70, {}, {})
    assert readings == []


def test_tlm_is_forwarded_only_for_an_allowed_eddystone_identity():
    tag = f"eddystone:{EDDYSTONE_NAMESPACE}:{EDDYSTONE_INSTANCE}"
    configured = AdvertisementProcessor(
        TagFilter.build(eddystone_namespaces=[EDDYSTONE_NAMESPACE]),
        sensor_serials={tag: "fridge-101"},
        clock=lambda: 1000.0,
    )
    tlm_mfg, tlm_svc = advert(EDDYSTONE_TLM_ADV)
    # TLM from an address never seen with an allowed UID: nothing leaves.
    assert configured.handle("C0:00:00:00:00:01", -60, tlm_mfg, tlm_svc) == ([], [])
    uid_mfg, uid_svc = advert(EDDYSTONE_UID_ADV)
    readings, _ = configured.handle("C0:00:00:00:00:01", -60, uid_mfg, uid_svc)
    assert [r.tag for r in readings] == [tag]
    readings, environment = configured.handle("C0:00:00:00:00:01", -60, tlm_mfg, tlm_svc)
    assert readings == []
    assert [e.to_json() for e in environment] == [
        {
            "sensor": "fridge-101",
            "ts": "1970-01-01T00:16:40.000Z",
            "temperature_c": 24.5,
            "battery_pct": 100,
        }
    ]


def test_tlm_of_a_foreign_namespace_is_not_forwarded():
    configured = processor(eddystone_namespaces=["00000000000000000000"])
    uid_mfg, uid_svc = advert(EDDYSTONE_UID_ADV)
    tlm_mfg, tlm_svc = advert(EDDYSTONE_TLM_ADV)
    configured.handle("C0:00:00:00:00:02", -60, uid_mfg, uid_svc)
    assert configured.handle("C0:00:00:00:00:02", -60, tlm_mfg, tlm_svc) == ([], [])


def test_environment_readings_are_rate_limited_per_sensor():
    now = [1000.0]
    configured = AdvertisementProcessor(
        TagFilter.build(mac_prefixes=["CB:B8:33"]), environment_interval_s=60, clock=lambda: now[0]
    )
    results = []
    for step in range(5):
        now[0] = 1000.0 + step * 20
        results.append(configured.handle("CB:B8:33:4C:88:4F", -70, {0x0499: RUUVI_RAWV2}, {}))
    assert [len(rssi) for rssi, _ in results] == [1, 1, 1, 1, 1]
    assert [len(env) for _, env in results] == [1, 0, 0, 1, 0]
    assert results[0][1][0].sensor == "mac:CB:B8:33:4C:88:4F"
    assert results[0][1][0].humidity_pct == pytest.approx(53.49)


def test_rfid_epc_prefixes_and_wildcard():
    assert TagFilter.build(epc_prefixes=["3034"]).allows("rfid:3034257bf7194e4000001a85")
    assert not TagFilter.build(epc_prefixes=["3034"]).allows("rfid:e2801160600002")
    assert TagFilter.build(epc_prefixes=["*"]).allows("rfid:e2801160600002")
    assert not TagFilter.build().allows("rfid:e2801160600002")


@pytest.mark.parametrize(
    "filters",
    [{"mac_prefixes": [""]}, {"mac_prefixes": ["::"]}, {"epc_prefixes": [""]}],
)
def test_match_everything_prefixes_are_refused(filters):
    with pytest.raises(ValueError, match="empty"):
        TagFilter.build(**filters)
