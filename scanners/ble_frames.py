"""Decoders for BLE beacon advertisements: iBeacon, AltBeacon, Eddystone UID/URL/TLM, Ruuvi RAWv2.

Every decoder takes untrusted radio bytes, so none of them raises: a frame that is truncated or
out of spec is counted in `FrameStats.malformed` and skipped.
"""

import struct
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from scanners import tagids

APPLE_COMPANY_ID = 0x004C
RUUVI_COMPANY_ID = 0x0499
EDDYSTONE_SERVICE_UUID16 = 0xFEAA
ALTBEACON_CODE = b"\xbe\xac"

# Bluetooth base UUID: 16-bit service UUIDs appear in bleak as 0000xxxx-0000-1000-8000-00805f9b34fb.
_BASE_UUID_SUFFIX = "-0000-1000-8000-00805f9b34fb"

AD_TYPE_SERVICE_DATA_16 = 0x16
AD_TYPE_MANUFACTURER_DATA = 0xFF

# Coin cells (CR2032/CR2477) are flat near 3.0 V and the beacon browns out near 2.0 V.
BATTERY_FULL_MV = 3000
BATTERY_EMPTY_MV = 2000

_EDDYSTONE_URL_SCHEMES = ("http://www.", "https://www.", "http://", "https://")
_EDDYSTONE_URL_EXPANSIONS = (
    ".com/",
    ".org/",
    ".edu/",
    ".net/",
    ".info/",
    ".biz/",
    ".gov/",
    ".com",
    ".org",
    ".edu",
    ".net",
    ".info",
    ".biz",
    ".gov",
)


@dataclass(frozen=True, slots=True)
class Telemetry:
    temperature_c: float | None = None
    humidity_pct: float | None = None
    battery_mv: int | None = None

    @property
    def battery_pct(self) -> int | None:
        if self.battery_mv is None:
            return None
        span = BATTERY_FULL_MV - BATTERY_EMPTY_MV
        fraction = (self.battery_mv - BATTERY_EMPTY_MV) / span
        return round(100 * min(1.0, max(0.0, fraction)))


@dataclass(frozen=True, slots=True)
class BeaconFrame:
    """One decoded frame; `tag_id` is None for frames that carry no identity (Eddystone URL/TLM)."""

    kind: str
    tag_id: str | None = None
    tx_power: int | None = None
    url: str | None = None
    telemetry: Telemetry | None = None


@dataclass
class FrameStats:
    decoded: Counter = field(default_factory=Counter)
    malformed: Counter = field(default_factory=Counter)

    @property
    def malformed_total(self) -> int:
        return sum(self.malformed.values())


def service_uuid16(key: str | int) -> int | None:
    """16-bit UUID of a service-data key as bleak reports it, or None for a true 128-bit UUID."""
    if isinstance(key, int):
        return key
    text = key.strip().lower()
    if len(text) <= 4:
        try:
            return int(text, 16)
        except ValueError:
            return None
    if len(text) == 36 and text.startswith("0000") and text.endswith(_BASE_UUID_SUFFIX):
        try:
            return int(text[4:8], 16)
        except ValueError:
            return None
    return None


def parse_ad_structures(
    raw: bytes, stats: FrameStats | None = None
) -> tuple[dict[int, bytes], dict[str, bytes]]:
    """Split a raw advertising payload (length, type, data)* into bleak-shaped dictionaries.

    Lets the decoders run on captured HCI payloads and on the byte strings in the specifications,
    not only on what bleak hands over.
    """
    manufacturer_data: dict[int, bytes] = {}
    service_data: dict[str, bytes] = {}
    offset = 0
    while offset < len(raw):
        length = raw[offset]
        if length == 0:
            break
        structure = raw[offset + 1 : offset + 1 + length]
        if len(structure) < length:
            if stats is not None:
                stats.malformed["ad-structure"] += 1
            break
        ad_type, data = structure[0], structure[1:]
        if ad_type == AD_TYPE_MANUFACTURER_DATA and len(data) >= 2:
            manufacturer_data[int.from_bytes(data[:2], "little")] = data[2:]
        elif ad_type == AD_TYPE_SERVICE_DATA_16 and len(data) >= 2:
            uuid16 = int.from_bytes(data[:2], "little")
            service_data[f"0000{uuid16:04x}{_BASE_UUID_SUFFIX}"] = data[2:]
        offset += 1 + length
    return manufacturer_data, service_data


def decode_ibeacon(payload: bytes) -> BeaconFrame | None:
    """Apple manufacturer data after the company id: 02 15, uuid(16), major, minor, tx power."""
    if len(payload) < 23 or payload[0] != 0x02 or payload[1] != 0x15:
        return None
    major, minor, tx_power = struct.unpack(">HHb", payload[18:23])
    return BeaconFrame("ibeacon", tagids.ibeacon_id(payload[2:18], major, minor), tx_power)


def decode_altbeacon(payload: bytes) -> BeaconFrame | None:
    """AltBeacon manufacturer data after the company id: BE AC, beacon id(20), ref RSSI, reserved.

    The 20-byte beacon id is split 16 + 2 + 2, the layout AltBeacon's reference parsers use, and
    reported in the iBeacon id form so that one UUID filter and one tag id scheme cover both.
    """
    if len(payload) < 24 or payload[:2] != ALTBEACON_CODE:
        return None
    major, minor, ref_rssi = struct.unpack(">HHb", payload[18:23])
    return BeaconFrame("altbeacon", tagids.ibeacon_id(payload[2:18], major, minor), ref_rssi)


def _decode_eddystone_url(body: bytes) -> str | None:
    if not body or body[0] >= len(_EDDYSTONE_URL_SCHEMES):
        return None
    parts = [_EDDYSTONE_URL_SCHEMES[body[0]]]
    for byte in body[1:]:
        if byte < len(_EDDYSTONE_URL_EXPANSIONS):
            parts.append(_EDDYSTONE_URL_EXPANSIONS[byte])
        elif 0x21 <= byte <= 0x7E:
            parts.append(chr(byte))
        else:
            return None
    return "".join(parts)


def decode_eddystone(payload: bytes) -> BeaconFrame | None:
    """Service data of UUID 0xFEAA; the first byte selects UID (0x00), URL (0x10) or TLM (0x20)."""
    if not payload:
        return None
    frame_type = payload[0]
    if frame_type == 0x00:
        # Spec: 20 bytes with 2 reserved at the end; many beacons omit the reserved bytes.
        if len(payload) < 18:
            return None
        tx_power = struct.unpack(">b", payload[1:2])[0]
        return BeaconFrame(
            "eddystone-uid", tagids.eddystone_id(payload[2:12], payload[12:18]), tx_power
        )
    if frame_type == 0x10:
        if len(payload) < 3 or len(payload) > 20:
            return None
        url = _decode_eddystone_url(payload[2:])
        if url is None:
            return None
        return BeaconFrame("eddystone-url", tx_power=struct.unpack(">b", payload[1:2])[0], url=url)
    if frame_type == 0x20:
        # Version 0x00 is plain TLM; 0x01 (eTLM) is encrypted and cannot be read here.
        if len(payload) < 14 or payload[1] != 0x00:
            return None
        battery_mv, temp_raw = struct.unpack(">HH", payload[2:6])
        temperature = None if temp_raw == 0x8000 else struct.unpack(">h", payload[4:6])[0] / 256
        telemetry = Telemetry(temperature_c=temperature, battery_mv=battery_mv or None)
        return BeaconFrame("eddystone-tlm", telemetry=telemetry)
    return None


def decode_ruuvi_rawv2(payload: bytes) -> BeaconFrame | None:
    """Ruuvi data format 5 (RAWv2) after the company id; identity is the MAC in the payload."""
    if len(payload) < 24 or payload[0] != 0x05:
        return None
    temp_raw, humidity_raw, _pressure = struct.unpack(">hHH", payload[1:7])
    (power_info,) = struct.unpack(">H", payload[13:15])
    battery_raw = power_info >> 5
    telemetry = Telemetry(
        temperature_c=None if temp_raw == -32768 else temp_raw * 0.005,
        humidity_pct=None if humidity_raw == 0xFFFF else humidity_raw * 0.0025,
        battery_mv=None if battery_raw == 0x7FF else battery_raw + 1600,
    )
    tx_power_raw = power_info & 0x1F
    tx_power = None if tx_power_raw == 0x1F else -40 + 2 * tx_power_raw
    mac = ":".join(f"{byte:02X}" for byte in payload[18:24])
    return BeaconFrame("ruuvi", tagids.mac_id(mac), tx_power, telemetry=telemetry)


def decode_frames(
    manufacturer_data: Mapping[int, bytes],
    service_data: Mapping[str, bytes],
    stats: FrameStats,
) -> list[BeaconFrame]:
    """All beacon frames in one advertisement; unknown vendors are ignored, bad frames counted."""
    frames: list[BeaconFrame] = []

    def attempt(kind: str, decoder, payload: bytes) -> None:
        try:
            frame = decoder(payload)
        except (struct.error, ValueError, IndexError):
            frame = None
        if frame is None:
            stats.malformed[kind] += 1
        else:
            stats.decoded[frame.kind] += 1
            frames.append(frame)

    for company_id, payload in manufacturer_data.items():
        payload = bytes(payload)
        if company_id == APPLE_COMPANY_ID and payload[:1] == b"\x02":
            attempt("ibeacon", decode_ibeacon, payload)
        elif company_id == RUUVI_COMPANY_ID and payload[:1] == b"\x05":
            attempt("ruuvi", decode_ruuvi_rawv2, payload)
        elif payload[:2] == ALTBEACON_CODE:
            attempt("altbeacon", decode_altbeacon, payload)
    for key, payload in service_data.items():
        if service_uuid16(key) == EDDYSTONE_SERVICE_UUID16:
            attempt("eddystone", decode_eddystone, bytes(payload))
    return frames
