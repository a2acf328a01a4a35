"""Beacon decoders on byte strings laid out exactly as the format specifications give them."""

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from scanners.ble_frames import (
    FrameStats,
    decode_eddystone,
    decode_frames,
    decode_ruuvi_rawv2,
    parse_ad_structures,
)

KONTAKT_UUID = "f7826da64fa24e988024bc5b71e0893e"

# Apple iBeacon: flags AD, then manufacturer AD: 4C00 (Apple, LE), 02 15, uuid, major, minor, tx.
IBEACON_ADV = bytes.fromhex("0201061aff4c000215" + KONTAKT_UUID + "0001" + "0002" + "c5")
# AltBeacon spec: 1B FF <mfg id LE> BE AC <20-byte beacon id> <ref rssi> <mfg reserved>.
ALTBEACON_ADV = bytes.fromhex("1bff1801beac" + KONTAKT_UUID + "0007" + "0009" + "c5" + "00")
# Eddystone: complete 16-bit service UUIDs AD (AAFE), then service data AD 16 AAFE <frame>.
EDDYSTONE_NAMESPACE = "edd1ebeac04e5defa017"
EDDYSTONE_INSTANCE = "0123456789ab"
EDDYSTONE_UID_ADV = bytes.fromhex(
    "0303aafe" + "1716aafe" + "00e8" + EDDYSTONE_NAMESPACE + EDDYSTONE_INSTANCE + "0000"
)
# TLM v0: battery 3000 mV, 24.5 degC (8.8 fixed point 0x1880), 100 advertisements, 360 s.
EDDYSTONE_TLM_ADV = bytes.fromhex("0303aafe" + "1116aafe" + "2000" + "0bb8" + "1880" + "00000064")
EDDYSTONE_TLM_ADV += bytes.fromhex("00000e10")
# URL frame: https:// (0x03) "example" .com (0x07)
EDDYSTONE_URL_ADV = bytes.fromhex("0303aafe" + "0e16aafe" + "10f8" + "03" + b"example".hex() + "07")
# Ruuvi RAWv2 test vector from the Ruuvi data format 5 documentation ("valid data").
RUUVI_RAWV2 = bytes.fromhex("0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F")


def decode(raw: bytes):
    stats = FrameStats()
    manufacturer_data, service_data = parse_ad_structures(raw, stats)
    return decode_frames(manufacturer_data, service_data, stats), stats


def test_ibeacon_from_full_advertisement():
    (frame,), stats = decode(IBEACON_ADV)
    assert frame.kind == "ibeacon"
    assert frame.tag_id == "ibeacon:f7826da6-4fa2-4e98-8024-bc5b71e0893e:1:2"
    assert frame.tx_power == -59
    assert stats.malformed_total == 0


def test_altbeacon_maps_to_ibeacon_form():
    (frame,), _ = decode(ALTBEACON_ADV)
    assert frame.kind == "altbeacon"
    assert frame.tag_id == "ibeacon:f7826da6-4fa2-4e98-8024-bc5b71e0893e:7:9"
    assert frame.tx_power == -59


def test_eddystone_uid():
    (frame,), _ = decode(EDDYSTONE_UID_ADV)
    assert frame.tag_id == f"eddystone:{EDDYSTONE_NAMESPACE}:{EDDYSTONE_INSTANCE}"
    assert frame.tx_power == -24


def test_eddystone_uid_without_reserved_bytes_is_accepted():
    frame = decode_eddystone(bytes.fromhex("00e8" + EDDYSTONE_NAMESPACE + EDDYSTONE_INSTANCE))
    assert frame is not None
    assert frame.tag_id.endswith(EDDYSTONE_INSTANCE)


def test_eddystone_tlm():
    (frame,), _ = decode(EDDYSTONE_TLM_ADV)
    assert frame.kind == "eddystone-tlm"
    assert frame.tag_id is None
    assert frame.telemetry.battery_mv == 3000
    assert frame.telemetry.battery_pct == 100
    assert frame.telemetry.temperature_c == 24.5


def test_eddystone_tlm_negative_and_unsupported_values():
    cold = decode_eddystone(bytes.fromhex("2000" + "0960" + "ff80" + "00" * 8))
    assert cold.telemetry.temperature_c == -0.5
    assert cold.telemetry.battery_pct == 40
    unsupported = decode_eddystone(bytes.fromhex("2000" + "0000" + "8000" + "00" * 8))
    assert unsupported.telemetry.temperature_c is None
    assert unsupported.telemetry.battery_mv is None


def test_eddystone_url():
    (frame,), _ = decode(EDDYSTONE_URL_ADV)
    assert frame.url == "https://example.com"
    assert frame.tag_id is None


def test_ruuvi_rawv2_vector():
    frame = decode_ruuvi_rawv2(RUUVI_RAWV2)
    assert frame.tag_id == "mac:CB:B8:33:4C:88:4F"
    assert abs(frame.telemetry.temperature_c - 24.3) < 1e-9
    assert abs(frame.telemetry.humidity_pct - 53.49) < 1e-9
    assert frame.telemetry.battery_mv == 2977
    assert frame.tx_power == 4


def test_ruuvi_through_manufacturer_data():
    frames = decode_frames({0x0499: RUUVI_RAWV2}, {}, FrameStats())
    assert [f.kind for f in frames] == ["ruuvi"]


def test_bleak_style_service_data_keys():
    payload = bytes.fromhex("00e8" + EDDYSTONE_NAMESPACE + EDDYSTONE_INSTANCE)
    for key in ("0000feaa-0000-1000-8000-00805f9b34fb", "FEAA"):
        assert len(decode_frames({}, {key: payload}, FrameStats())) == 1
    assert decode_frames({}, {"0000feaa-1111-2222-3333-444455556666": payload}, FrameStats()) == []


def test_malformed_frames_are_counted_and_skipped():
    stats = FrameStats()
    frames = decode_frames(
        {
            0x004C: bytes.fromhex("0215" + KONTAKT_UUID[:10]),  # truncated iBeacon
            0x0499: RUUVI_RAWV2[:10],  # truncated Ruuvi
            0x0118: bytes.fromhex("beac0102"),  # truncated AltBeacon
        },
        {
            "feaa": bytes.fromhex("00e8" + EDDYSTONE_NAMESPACE),  # UID without instance
        },
        stats,
    )
    assert frames == []
    assert stats.malformed == {"ibeacon": 1, "ruuvi": 1, "altbeacon": 1, "eddystone": 1}


def test_other_malformed_eddystone_frames():
    assert decode_eddystone(b"") is None
    assert decode_eddystone(bytes.fromhex("2001" + "00" * 16)) is None  # encrypted eTLM
    assert decode_eddystone(bytes.fromhex("2000" + "0bb8")) is None  # truncated TLM
    assert decode_eddystone(bytes.fromhex("10f8" + "09" + "41")) is None  # unknown scheme
    assert decode_eddystone(bytes.fromhex("10f8" + "03" + "41ff")) is None  # reserved byte
    assert decode_eddystone(bytes.fromhex("30")) is None  # unknown frame type


def test_truncated_ad_structure_is_counted():
    stats = FrameStats()
    manufacturer_data, _ = parse_ad_structures(IBEACON_ADV[:-5], stats)
    assert manufacturer_data == {}
    assert stats.malformed["ad-structure"] == 1


def test_phone_advertisements_decode_to_nothing():
    """Apple Nearby/Find My and Google Fast Pair are not beacons and are not 'malformed'."""
    stats = FrameStats()
    frames = decode_frames(
        {0x004C: bytes.fromhex("1005031c5a8f41"), 0x0006: bytes.fromhex("0109200271")},
        {"0000fe2c-0000-1000-8000-00805f9b34fb": bytes.fromhex("00a3f2")},
        stats,
    )
    assert frames == []
    assert stats.malformed_total == 0


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=64))
def test_random_advertisements_never_crash(raw):
    manufacturer_data, service_data = parse_ad_structures(raw, FrameStats())
    decode_frames(manufacturer_data, service_data, FrameStats())


@settings(max_examples=300, deadline=None)
@given(
    company=st.sampled_from([0x004C, 0x0499, 0x0118]),
    prefix=st.sampled_from([b"\x02\x15", b"\x05", b"\xbe\xac", b""]),
    tail=st.binary(max_size=40),
    eddystone=st.binary(max_size=30),
)
def test_random_beacon_payloads_never_crash(company, prefix, tail, eddystone):
    decode_frames({company: prefix + tail}, {"feaa": eddystone}, FrameStats())


def test_struct_layout_of_ibeacon_vector():
    """Guards the test vector itself: major/minor are big-endian per Apple's specification."""
    major, minor = struct.unpack(">HH", IBEACON_ADV[25:29])
    assert (major, minor) == (1, 2)
