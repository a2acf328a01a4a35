"""Validation of scanner reading batches (CONTRACT.md section 3), without Django.

The envelope is all-or-nothing (a malformed one is a 400 and nothing is kept); readings are judged
one by one, so one bad reading never costs the good ones. Every rejection names its problem.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from tracking.tagids import canonical_tag_id

MAX_BATCH_ID_LENGTH = 128
RSSI_RANGE = (-130.0, 20.0)
OPTIONAL_READING_KEYS = {"battery_pct", "tx_power"}
REQUIRED_READING_KEYS = frozenset({"tag", "rssi", "ts"})
READING_KEYS = REQUIRED_READING_KEYS | OPTIONAL_READING_KEYS
ENVELOPE_KEYS = {"batch", "readings"}


class EnvelopeError(ValueError):
    """The request as a whole is unusable; the message says why."""


@dataclass(frozen=True, slots=True)
class RssiReading:
    ts: float
    tag: str
    rssi: float
    battery_pct: float | None = None


@dataclass
class ValidatedBatch:
    batch_id: str | None
    readings: list[RssiReading] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)

    def reject(self, index: int, reason: str) -> None:
        self.rejected.append({"index": index, "reason": reason})


def parse_timestamp(value) -> float:
    """Epoch seconds from ISO 8601 (UTC, 'Z' or an explicit offset) or an epoch number."""
    if isinstance(value, bool):
        raise ValueError("ts must be an ISO 8601 string or epoch seconds, not a boolean")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError("ts must be finite")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(
            f"ts must be an ISO 8601 string or epoch seconds, not {type(value).__name__}"
        )
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"ts {value!r} is not ISO 8601") from None
    if parsed.tzinfo is None:
        raise ValueError(f"ts {value!r} has no time zone (use Z for UTC)")
    return parsed.timestamp()


def format_timestamp(epoch: float) -> str:
    """ISO 8601 UTC with milliseconds, the contract's canonical form."""
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _loads(body: bytes):
    """orjson for the common case; the standard parser where orjson refuses (integers beyond 64
    bits, NaN literals: valid for the standard parser, so one such reading is rejected on its
    own, not the batch) and for its error messages."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def parse_envelope(body: bytes, *, max_readings: int) -> tuple[str | None, list]:
    """The batch id and the raw readings list, or EnvelopeError."""
    try:
        document = _loads(body)
    except UnicodeDecodeError:
        raise EnvelopeError("body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise EnvelopeError(f"body is not valid JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(document, dict):
        raise EnvelopeError("body must be a JSON object with a 'readings' list")
    unknown = sorted(set(document) - ENVELOPE_KEYS)
    if unknown:
        raise EnvelopeError(f"unknown key(s) in body: {', '.join(unknown)}")
    readings = document.get("readings")
    if not isinstance(readings, list):
        raise EnvelopeError("body must have a 'readings' list")
    if len(readings) > max_readings:
        raise EnvelopeError(
            f"too many readings: {len(readings)} in one batch, at most {max_readings}"
        )
    batch_id = document.get("batch")
    if batch_id is not None and (
        not isinstance(batch_id, str) or not batch_id or len(batch_id) > MAX_BATCH_ID_LENGTH
    ):
        raise EnvelopeError(f"'batch' must be a string of 1 to {MAX_BATCH_ID_LENGTH} characters")
    return batch_id, readings


def validate_rssi_batch(
    body: bytes,
    *,
    now: float,
    max_readings: int = 5000,
    max_future_s: float = 60.0,
    max_age_s: float = 86400.0,
) -> ValidatedBatch:
    """Judge a request body; raises EnvelopeError for an unusable envelope."""
    batch_id, raw_readings = parse_envelope(body, max_readings=max_readings)
    batch = ValidatedBatch(batch_id)
    seen: set[tuple[str, float]] = set()
    stamps: dict = {}
    for index, raw in enumerate(raw_readings):
        try:
            reading = _validate_reading(raw, now, max_future_s, max_age_s, stamps)
        except ValueError as exc:
            batch.reject(index, str(exc))
            continue
        key = (reading.tag, reading.ts)
        if key in seen:
            batch.reject(index, "duplicate of an earlier reading in this batch (same tag and ts)")
            continue
        seen.add(key)
        batch.readings.append(reading)
        batch.indexes.append(index)
    return batch


def _timestamp(value, stamps: dict) -> float:
    if type(value) is not str:
        return parse_timestamp(value)
    ts = stamps.get(value)
    if ts is None:
        ts = stamps[value] = parse_timestamp(value)
    return ts


def _validate_reading(
    raw, now: float, max_future_s: float, max_age_s: float, stamps: dict
) -> RssiReading:
    """`stamps` memoises parsed timestamps within a batch: a gateway stamps many readings of one
    scan with the same time string. The common case (known keys, an int or float rssi, no
    battery) takes as few steps as the rules allow: this runs for every reading."""
    if not isinstance(raw, dict):
        raise ValueError("reading must be an object with tag, rssi and ts")
    keys = raw.keys()
    if not keys <= READING_KEYS:
        raise ValueError(f"unknown field(s): {', '.join(sorted(keys - READING_KEYS))}")
    if not keys >= REQUIRED_READING_KEYS:
        missing = [key for key in ("tag", "rssi", "ts") if key not in raw]
        raise ValueError(f"missing field(s): {', '.join(missing)}")
    tag = canonical_tag_id(raw["tag"])
    rssi = raw["rssi"]
    if type(rssi) is bool or not isinstance(rssi, (int, float)):
        raise ValueError(f"rssi must be a number of dBm, not {rssi!r}")
    if not RSSI_RANGE[0] <= rssi <= RSSI_RANGE[1]:  # also false for NaN
        if not math.isfinite(rssi):
            raise ValueError(f"rssi must be a number of dBm, not {rssi!r}")
        raise ValueError(f"rssi {rssi} dBm is out of range {RSSI_RANGE[0]:g}..{RSSI_RANGE[1]:g}")
    ts = _timestamp(raw["ts"], stamps)
    if ts > now + max_future_s:
        raise ValueError(
            f"ts is {ts - now:.0f} s in the future (clock skew above {max_future_s:g} s)"
        )
    if ts < now - max_age_s:
        raise ValueError(f"ts is {now - ts:.0f} s old (older than {max_age_s:g} s)")
    if len(keys) == 3:
        return RssiReading(ts, tag, float(rssi))
    battery = raw.get("battery_pct")
    if battery is not None and (
        isinstance(battery, bool)
        or not isinstance(battery, (int, float))
        or not 0 <= battery <= 100
    ):
        raise ValueError(f"battery_pct must be a number 0..100, not {battery!r}")
    tx_power = raw.get("tx_power")
    if tx_power is not None and (
        isinstance(tx_power, bool)
        or not isinstance(tx_power, (int, float))
        or not -100 <= tx_power <= 20
    ):
        raise ValueError(f"tx_power must be a number of dBm -100..20, not {tx_power!r}")
    return RssiReading(ts, tag, float(rssi), None if battery is None else float(battery))
