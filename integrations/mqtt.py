"""MQTT gateway payloads mapped to the contract's RSSI batch (CONTRACT.md section 3), without
Django, so the shapes are tested in microseconds and documented in one place (docs/mqtt.md).

Topic: `<prefix...>/<scanner serial>/<shape>[/<device token>]`, where `shape` is

- `rssi`: the plain shape, the HTTP body itself (`{"batch": ..., "readings": [...]}`), with an
  optional `"token"` key that carries the scanner's device token;
- `minew`: the JSON array that Minew G1-family BLE gateways publish ("JSON long" format): one
  object per advertisement; what is read from each is listed at `minew_readings`.

The device token may instead travel as an MQTT 5 user property `token`, or as the last topic
level (for gateways that can set nothing but a topic).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

SHAPES = ("rssi", "minew")
MAX_TOPIC_TOKEN_LENGTH = 200


class PayloadError(ValueError):
    """The message as a whole is unusable (like a 400 over HTTP); the message says why."""


@dataclass
class Route:
    serial: str
    shape: str
    token: str | None = None


def parse_topic(topic: str) -> Route:
    """The scanner serial, the payload shape and the token (if any) a topic names."""
    levels = topic.split("/")
    for index in range(len(levels) - 1, 0, -1):
        if levels[index] in SHAPES and index >= 1 and len(levels) - index <= 2:
            serial = levels[index - 1]
            rest = levels[index + 1 :]
            token = rest[0] if rest and rest[0] else None
            if not serial:
                break
            if token is not None and len(token) > MAX_TOPIC_TOKEN_LENGTH:
                raise PayloadError("the topic's token level is too long")
            return Route(serial, levels[index], token)
    raise PayloadError(
        f"topic {topic!r} is not <prefix>/<scanner serial>/<{'|'.join(SHAPES)}>[/<token>]"
    )


@dataclass
class Mapped:
    """A contract-shaped batch body, the token found in the payload, and the map from the
    batch's reading indexes back to the original payload's (so rejections name the original)."""

    body: bytes
    token: str | None = None
    origin: list[int] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    skipped: int = 0


def _json(payload: bytes):
    try:
        return json.loads(payload)
    except UnicodeDecodeError:
        raise PayloadError("payload is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise PayloadError(f"payload is not valid JSON: {exc.msg} at position {exc.pos}") from None


def digest_batch_id(payload: bytes) -> str:
    """A batch id from the payload itself: a redelivered MQTT message (QoS 1 may deliver twice)
    is then recognised as a resent batch and not counted again."""
    return "mqtt-" + hashlib.sha256(payload).hexdigest()[:40]


def plain_batch(payload: bytes) -> Mapped:
    """The plain shape: the contract body, plus an optional `token` key that is taken out."""
    document = _json(payload)
    if not isinstance(document, dict):
        raise PayloadError("payload must be a JSON object with a 'readings' list")
    token = document.pop("token", None)
    if token is not None and not isinstance(token, str):
        raise PayloadError("'token' must be a string")
    document.setdefault("batch", digest_batch_id(payload))
    readings = document.get("readings")
    count = len(readings) if isinstance(readings, list) else 0
    return Mapped(json.dumps(document).encode(), token, list(range(count)))


MINEW_GATEWAY_TYPE = "Gateway"


def _minew_tag(entry: dict) -> str:
    uuid = entry.get("ibeaconUuid")
    if uuid not in (None, ""):
        major, minor = entry.get("ibeaconMajor"), entry.get("ibeaconMinor")
        if not isinstance(major, int) or not isinstance(minor, int):
            raise ValueError("iBeacon entry needs integer ibeaconMajor and ibeaconMinor")
        uuid = str(uuid).replace("-", "")
        if len(uuid) != 32:
            raise ValueError(f"ibeaconUuid {entry['ibeaconUuid']!r} is not a 128-bit UUID")
        dashed = f"{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:]}"
        return f"ibeacon:{dashed}:{major}:{minor}"
    mac = entry.get("mac")
    if not isinstance(mac, str) or not mac:
        raise ValueError("entry has neither iBeacon fields nor a mac")
    mac = mac.replace(":", "").replace("-", "")
    if len(mac) != 12:
        raise ValueError(f"mac {entry['mac']!r} is not 6 bytes")
    return "mac:" + ":".join(mac[i : i + 2] for i in range(0, 12, 2))


def minew_readings(payload: bytes) -> Mapped:
    """Minew G1-family "JSON long" array. Per entry:

    - `type` == "Gateway": the gateway's own status (mac, gatewayFree, gatewayLoad): skipped;
    - otherwise `timestamp` (ISO 8601, kept as is) and `rssi` (dBm) are required, and the tag is
      `ibeacon:<ibeaconUuid>:<ibeaconMajor>:<ibeaconMinor>` when `ibeaconUuid` is present, else
      `mac:<mac>`; `battery` (0..100 %), when present, becomes `battery_pct`.

    Everything else (rawData, bleName, ibeaconTxPower...) is ignored. A malformed entry is
    rejected by its index in the array; the others still count."""
    document = _json(payload)
    if not isinstance(document, list):
        raise PayloadError("a minew payload must be a JSON array of advertisements")
    readings, origin, rejected, skipped = [], [], [], 0
    for index, entry in enumerate(document):
        if not isinstance(entry, dict):
            rejected.append({"index": index, "reason": "entry must be a JSON object"})
            continue
        if entry.get("type") == MINEW_GATEWAY_TYPE:
            skipped += 1
            continue
        try:
            tag = _minew_tag(entry)
        except ValueError as exc:
            rejected.append({"index": index, "reason": str(exc)})
            continue
        missing = [key for key in ("timestamp", "rssi") if key not in entry]
        if missing:
            rejected.append({"index": index, "reason": f"missing field(s): {', '.join(missing)}"})
            continue
        reading = {"tag": tag, "rssi": entry["rssi"], "ts": entry["timestamp"]}
        battery = entry.get("battery")
        if (
            isinstance(battery, (int, float))
            and not isinstance(battery, bool)
            and 0 <= battery <= 100
        ):
            reading["battery_pct"] = battery
        readings.append(reading)
        origin.append(index)
    body = json.dumps({"batch": digest_batch_id(payload), "readings": readings}).encode()
    return Mapped(body, None, origin, rejected, skipped)


MAPPERS = {"rssi": plain_batch, "minew": minew_readings}


def to_batch(shape: str, payload: bytes) -> Mapped:
    return MAPPERS[shape](payload)


def merge_rejections(mapped: Mapped, rejected_by_batch: list[dict]) -> list[dict]:
    """Rejections of the mapping and of the batch validation, both by original payload index."""
    merged = list(mapped.rejected)
    for item in rejected_by_batch:
        index = item["index"]
        original = mapped.origin[index] if 0 <= index < len(mapped.origin) else index
        merged.append({"index": original, "reason": item["reason"]})
    return sorted(merged, key=lambda item: item["index"])
