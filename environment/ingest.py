"""Storing environmental readings (CONTRACT.md section 4).

Everything accepted is committed to the database before the caller answers `202`: these are
compliance records and the device deletes its copy on a 2xx. The sensors' state rows are locked
while their readings are inserted, so per sensor the reading ids follow commit order and the rule
engine's watermark (`SensorState.evaluated_through`) never skips a reading.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import connection, transaction
from django.utils.dateparse import parse_datetime

from environment.models import EnvironmentReading, ReadingBatch, Sensor, SensorState
from environment.validation import EnvReading, ValidatedBatch

INSERT_CHUNK = 1000


@dataclass
class IngestOutcome:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict] = field(default_factory=list)
    batch: str | None = None
    duplicate_batch: bool = False
    sensor_ids: list[int] = field(default_factory=list)

    def response(self) -> dict:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": sorted(self.rejected, key=lambda r: r["index"]),
            "batch": self.batch,
            "duplicate_batch": self.duplicate_batch,
        }


def authorize(batch: ValidatedBatch, *, sensor=None, scanner=None) -> dict[str, Sensor]:
    """The sensors this device may upload for, among those the batch names. Readings of other
    sensors are rejected one by one with the reason."""
    serials = {r.sensor for r in batch.readings}
    known = {s.serial: s for s in Sensor.objects.filter(serial__in=serials)}
    allowed: dict[str, Sensor] = {}
    reasons: dict[str, str] = {}
    for serial in serials:
        target = known.get(serial)
        if target is None:
            reasons[serial] = f"unknown sensor {serial!r}"
        elif sensor is not None and target.pk != sensor.pk:
            reasons[serial] = f"this token belongs to sensor {sensor.serial!r}, not {serial!r}"
        elif scanner is not None and target.gateway_id != scanner.pk:
            reasons[serial] = f"sensor {serial!r} is not relayed by gateway {scanner.serial!r}"
        elif not target.is_active:
            reasons[serial] = f"sensor {serial!r} is decommissioned"
        else:
            allowed[serial] = target
    kept = []
    for reading in batch.readings:
        if reading.sensor in reasons:
            batch.reject(reading.index, reasons[reading.sensor])
        else:
            kept.append(reading)
    batch.readings = kept
    return allowed


def store(
    batch: ValidatedBatch, sensors: dict[str, Sensor], *, now: datetime, sensor=None, scanner=None
) -> IngestOutcome:
    """Insert the batch's readings durably; a reading already stored counts as a duplicate (or is
    rejected when the stored one differs). Returns the counts the device is answered with."""
    outcome = IngestOutcome(
        duplicates=batch.duplicates, rejected=list(batch.rejected), batch=batch.batch_id
    )
    with transaction.atomic():
        record, created = _batch_record(batch.batch_id, now, sensor=sensor, scanner=scanner)
        outcome.duplicate_batch = not created
        sensor_ids = sorted({sensors[r.sensor].pk for r in batch.readings})
        SensorState.objects.bulk_create(
            [SensorState(sensor_id=pk) for pk in sensor_ids], ignore_conflicts=True
        )
        list(
            SensorState.objects.select_for_update()
            .filter(sensor_id__in=sensor_ids)
            .order_by("sensor_id")
            .values_list("sensor_id", flat=True)
        )
        rows = {
            (sensors[r.sensor].pk, datetime.fromtimestamp(r.ts, tz=UTC)): r for r in batch.readings
        }
        inserted = _insert(rows, record, now)
        outcome.accepted = len(inserted)
        leftover = {key: r for key, r in rows.items() if key not in inserted}
        for key, reading in _conflicts(leftover).items():
            outcome.rejected.append(
                {
                    "index": reading.index,
                    "reason": f"a different reading of {reading.sensor!r} at this ts is stored",
                }
            )
            leftover.pop(key)
        outcome.duplicates += len(leftover)
        touched = sorted({pk for pk, _ in inserted})
        if touched:
            SensorState.objects.filter(sensor_id__in=touched).update(
                pending_evaluation=True, last_received_at=now
            )
        ReadingBatch.objects.filter(pk=record.pk).update(
            accepted=record.accepted + outcome.accepted,
            duplicates=record.duplicates + outcome.duplicates,
            rejected=record.rejected + len(outcome.rejected),
        )
    outcome.sensor_ids = touched
    return outcome


def _batch_record(batch_id, now, *, sensor, scanner) -> tuple[ReadingBatch, bool]:
    owner = {"sensor": sensor} if sensor is not None else {"scanner": scanner}
    if not batch_id:
        return ReadingBatch.objects.create(received_at=now, **owner), True
    return ReadingBatch.objects.get_or_create(
        batch_id=batch_id, **owner, defaults={"received_at": now}
    )


def _insert(rows: dict[tuple[int, datetime], EnvReading], record, now) -> set:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING: exactly the rows that are new."""
    table = connection.ops.quote_name(EnvironmentReading._meta.db_table)
    columns = (
        "sensor_id, ts, temperature_c, humidity_pct, battery_pct, door_open, received_at, batch_id"
    )
    adapt = connection.ops.adapt_datetimefield_value
    received = adapt(now)
    items = list(rows.items())
    inserted: set = set()
    with connection.cursor() as cursor:
        for start in range(0, len(items), INSERT_CHUNK):
            chunk = items[start : start + INSERT_CHUNK]
            params: list = []
            for (sensor_id, ts), r in chunk:
                params += [
                    sensor_id,
                    adapt(ts),
                    r.temperature_c,
                    r.humidity_pct,
                    r.battery_pct,
                    r.door_open,
                    received,
                    record.pk,
                ]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {values} "  # noqa: S608  (names are ours)  # nosec B608
                "ON CONFLICT (sensor_id, ts) DO NOTHING RETURNING sensor_id, ts",
                params,
            )
            inserted.update((sensor_id, _aware(ts)) for sensor_id, ts in cursor.fetchall())
    return inserted


def _aware(value) -> datetime:
    if isinstance(value, str):
        value = parse_datetime(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def _conflicts(leftover: dict[tuple[int, datetime], EnvReading]) -> dict:
    """The not-inserted readings whose stored twin has different values."""
    if not leftover:
        return {}
    sensor_ids = {pk for pk, _ in leftover}
    stamps = [ts for _, ts in leftover]
    stored = EnvironmentReading.objects.filter(
        sensor_id__in=sensor_ids, ts__gte=min(stamps), ts__lte=max(stamps)
    ).values_list("sensor_id", "ts", "temperature_c", "humidity_pct", "battery_pct", "door_open")
    differing = {}
    for sensor_id, ts, *values in stored:
        reading = leftover.get((sensor_id, ts))
        if reading is not None and tuple(values) != reading.values():
            differing[(sensor_id, ts)] = reading
    return differing
