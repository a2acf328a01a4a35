"""Validation of environmental reading batches (CONTRACT.md section 4), without Django.

The envelope rules and timestamp parsing are the scanner endpoint's (tracking.ingestion), so both
endpoints answer alike. Readings are judged one by one; every rejection names its problem. Late
readings are fine (a sensor that was cut off uploads its log later), readings from the future
beyond the clock-skew allowance are not, nor readings from a sensor whose clock was never set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tracking.ingestion import EnvelopeError, parse_envelope, parse_timestamp

__all__ = ["EnvReading", "EnvelopeError", "ValidatedBatch", "validate_environment_batch"]

MAX_READINGS = 5000
MAX_FUTURE_SKEW_S = 300.0
EARLIEST_TS = 946684800.0  # 2000-01-01T00:00:00Z: anything older is an unset sensor clock
MEASUREMENTS = ("temperature_c", "humidity_pct", "battery_pct", "door_open")
READING_KEYS = {"sensor", "ts", *MEASUREMENTS}
RANGES = {
    "temperature_c": (-273.15, 200.0),
    "humidity_pct": (0.0, 100.0),
    "battery_pct": (0.0, 100.0),
}


@dataclass(frozen=True, slots=True)
class EnvReading:
    index: int
    sensor: str
    ts: float
    temperature_c: float | None = None
    humidity_pct: float | None = None
    battery_pct: float | None = None
    door_open: bool | None = None

    def values(self) -> tuple:
        return (self.temperature_c, self.humidity_pct, self.battery_pct, self.door_open)


@dataclass
class ValidatedBatch:
    batch_id: str | None
    readings: list[EnvReading] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    duplicates: int = 0

    def reject(self, index: int, reason: str) -> None:
        self.rejected.append({"index": index, "reason": reason})


def validate_environment_batch(
    body: bytes,
    *,
    now: float,
    max_readings: int = MAX_READINGS,
    max_future_s: float = MAX_FUTURE_SKEW_S,
) -> ValidatedBatch:
    """Judge a request body; raises EnvelopeError for an unusable envelope."""
    batch_id, raw_readings = parse_envelope(body, max_readings=max_readings)
    batch = ValidatedBatch(batch_id)
    seen: dict[tuple[str, float], EnvReading] = {}
    for index, raw in enumerate(raw_readings):
        try:
            reading = _validate_reading(index, raw, now, max_future_s)
        except ValueError as exc:
            batch.reject(index, str(exc))
            continue
        key = (reading.sensor, reading.ts)
        earlier = seen.get(key)
        if earlier is not None:
            if earlier.values() == reading.values():
                batch.duplicates += 1
            else:
                batch.reject(
                    index,
                    f"conflicts with reading {earlier.index} of this batch (same sensor and ts, "
                    "other values)",
                )
            continue
        seen[key] = reading
        batch.readings.append(reading)
    return batch


def _number(raw: dict, name: str) -> float | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number, not {value!r}")
    low, high = RANGES[name]
    if not low <= value <= high:
        raise ValueError(f"{name} {value:g} is out of range {low:g}..{high:g}")
    return float(value)


def _validate_reading(index: int, raw, now: float, max_future_s: float) -> EnvReading:
    if not isinstance(raw, dict):
        raise ValueError("reading must be an object with sensor, ts and a measurement")
    unknown = sorted(set(raw) - READING_KEYS)
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(unknown)}")
    missing = [key for key in ("sensor", "ts") if key not in raw]
    if missing:
        raise ValueError(f"missing field(s): {', '.join(missing)}")
    sensor = raw["sensor"]
    if not isinstance(sensor, str) or not sensor.strip() or len(sensor) > 64:
        raise ValueError("sensor must be a serial of 1 to 64 characters")
    if all(raw.get(name) is None for name in MEASUREMENTS):
        raise ValueError(f"no measurement: give at least one of {', '.join(MEASUREMENTS)}")
    ts = parse_timestamp(raw["ts"])
    if ts > now + max_future_s:
        raise ValueError(
            f"ts is {ts - now:.0f} s in the future (clock skew above {max_future_s:g} s)"
        )
    if ts < EARLIEST_TS:
        raise ValueError("ts is before 2000-01-01: the sensor's clock is not set")
    door = raw.get("door_open")
    if door is not None and not isinstance(door, bool):
        raise ValueError(f"door_open must be true or false, not {door!r}")
    return EnvReading(
        index=index,
        sensor=sensor.strip(),
        ts=ts,
        temperature_c=_number(raw, "temperature_c"),
        humidity_pct=_number(raw, "humidity_pct"),
        battery_pct=_number(raw, "battery_pct"),
        door_open=door,
    )
