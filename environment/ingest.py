"""Storing environmental readings (CONTRACT.md section 4), and evaluating them.

Everything accepted is committed to the database before the caller answers `202`: these are
compliance records and the device deletes its copy on a 2xx. One upload is one transaction:

1. lock the sensors' state rows (`SensorState`, fetched with the sensor, its profile, zone and
   escalation policy in the same statement);
2. insert the batch record and the readings in one statement (`INSERT ... ON CONFLICT DO NOTHING
   RETURNING`: exactly the new rows come back, with their ids);
3. run the rule engine over the new readings (environment.monitoring.evaluate_locked), reusing the
   locked state row, and save the state once.

Because the state rows stay locked from before the insert to the commit, per sensor the reading
ids follow commit order and the engine's watermark (`SensorState.evaluated_through`) never skips a
reading; a second upload for the same sensor waits for the first. A failing evaluation never fails
the upload: it leaves `pending_evaluation` set, and the periodic task evaluates the readings later.
"""

from __future__ import annotations

import functools
from collections import namedtuple
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import connection, models, transaction
from django.db.models import F
from django.utils.dateparse import parse_datetime

from environment import monitoring
from environment.models import (
    EnvironmentReading,
    ReadingBatch,
    Sensor,
    SensorState,
    ThresholdProfile,
)
from environment.validation import EnvReading, ValidatedBatch
from hospital import prepared
from hospital.joined_rows import JoinedModels

INSERT_CHUNK = 1000

#: A reading just inserted, as the rule engine and the state need it (a row's attribute names).
StoredReading = namedtuple(
    "StoredReading", "pk ts temperature_c humidity_pct battery_pct door_open"
)

_READING_COLUMNS = (
    "sensor_id, ts, temperature_c, humidity_pct, battery_pct, door_open, received_at, batch_id"
)
# Typed, so that a column of NULLs in a VALUES list is not taken for text.
_READING_VALUES = (
    "(%s::bigint, %s::timestamptz, %s::double precision, %s::double precision, "
    "%s::double precision, %s::boolean)"
)
_READING_TABLE = EnvironmentReading._meta.db_table
_BATCH_TABLE = ReadingBatch._meta.db_table
_INSERT_BATCH = (
    f"INSERT INTO {_BATCH_TABLE} "  # noqa: S608  # nosec B608
    "(scanner_id, sensor_id, batch_id, received_at, accepted, duplicates, rejected) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)
_STATE_FIELDS = [
    "evaluated_through",
    "pending_evaluation",
    "unresolved_alerts",
    "last_ts",
    "last_received_at",
    "temperature_c",
    "humidity_pct",
    "battery_pct",
    "door_open",
    "monitor",
    "updated_at",
]


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
    sensors are rejected one by one with the reason.

    A sensor posting its own readings (the usual upload) needs no query: its token came with the
    sensor row, fresh (every change to a sensor makes the token be verified again)."""
    serials = {r.sensor for r in batch.readings}
    if sensor is not None and serials <= {sensor.serial}:
        known = {sensor.serial: sensor} if serials else {}
    else:
        known = {s.serial: s for s in _sensors_named(sorted(serials))}
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
    batch: ValidatedBatch,
    sensors: dict[str, Sensor],
    *,
    now: datetime,
    sensor=None,
    scanner=None,
) -> IngestOutcome:
    """Insert the batch's readings durably and run the rules over them, in one transaction. A
    reading already stored counts as a duplicate (or is rejected when the stored one differs).
    Returns the counts the device is answered with."""
    outcome = IngestOutcome(
        duplicates=batch.duplicates, rejected=list(batch.rejected), batch=batch.batch_id
    )
    rows = {(sensors[r.sensor].pk, datetime.fromtimestamp(r.ts, tz=UTC)): r for r in batch.readings}
    owner = (None, sensor.pk) if sensor is not None else (scanner.pk, None)
    with transaction.atomic():
        states = _lock_states(sorted({pk for pk, _ in rows}))
        counts = (len(rows), outcome.duplicates, len(outcome.rejected))
        record_id, created, inserted = _insert(batch.batch_id, owner, rows, counts, now)
        outcome.duplicate_batch = not created
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
        if len(inserted) != len(rows) or not created:
            _count(record_id, created, outcome)
        by_sensor: dict[int, list[StoredReading]] = {}
        for (sensor_id, ts), reading_id in inserted.items():
            r = rows[(sensor_id, ts)]
            by_sensor.setdefault(sensor_id, []).append(
                StoredReading(
                    reading_id, ts, r.temperature_c, r.humidity_pct, r.battery_pct, r.door_open
                )
            )
        for sensor_id in sorted(by_sensor):
            state = states[sensor_id]
            state.last_received_at = now
            new_rows = sorted(by_sensor[sensor_id], key=lambda row: row.ts)
            monitoring.evaluate_locked(state, new_rows, now=now)
            _save_state(state)
    outcome.sensor_ids = sorted(by_sensor)
    return outcome


def _lock_states(sensor_ids: list[int]) -> dict[int, SensorState]:
    """The sensors' state rows, locked (`FOR UPDATE` of the state rows only) and created when
    missing, each with its sensor and profile: one statement usually. (The zone and escalation
    policy, needed only to open an alert, load lazily then.)"""
    if not sensor_ids:
        return {}
    states = _select_states(sensor_ids)
    missing = [pk for pk in sensor_ids if pk not in states]
    if missing:
        SensorState.objects.bulk_create(
            [SensorState(sensor_id=pk) for pk in missing], ignore_conflicts=True
        )
        states.update(_select_states(missing))
    return states


def _sensors_named(serials: list[str]) -> list[Sensor]:
    """`Sensor.objects.filter(serial__in=serials)`: a gateway's relayed batch names its sensors,
    and compiling that ORM query (the model's ordering included) was most of a relayed upload's
    CPU in the web process; on PostgreSQL it is one prepared statement."""
    if not serials:
        return []
    if connection.vendor != "postgresql":
        return list(Sensor.objects.filter(serial__in=serials))
    query = _sensors_query()
    with prepared.cursor() as cursor:
        cursor.execute(query.sql, [serials])
        rows = cursor.fetchall()
    return [query.joined.instances(row)[0] for row in rows]


class _SensorsQuery:
    def __init__(self) -> None:
        self.joined = JoinedModels([(Sensor, "se")])
        self.sql = (
            f"SELECT {self.joined.columns} FROM {prepared.table(Sensor)} se "  # noqa: S608  # nosec B608
            "WHERE se.serial = ANY(%s::text[])"
        )


@functools.cache
def _sensors_query() -> _SensorsQuery:
    return _SensorsQuery()


class _LockQuery:
    """`SensorState.objects.select_for_update(of=("self",)).select_related("sensor__profile")`,
    written out once: on this path the ORM's query compilation cost more than the query."""

    def __init__(self) -> None:
        quote = connection.ops.quote_name
        self.joined = JoinedModels([(SensorState, "st"), (Sensor, "se"), (ThresholdProfile, "pr")])
        state, sensor, profile = (quote(model._meta.db_table) for model in self.joined.models)
        self.sql = (
            f"SELECT {self.joined.columns} FROM {state} st "  # noqa: S608  # nosec B608
            f"JOIN {sensor} se ON se.id = st.sensor_id "
            f"JOIN {profile} pr ON pr.id = se.profile_id "
            "WHERE st.sensor_id = ANY(%s::bigint[]) ORDER BY st.sensor_id FOR UPDATE OF st"
        )

    def instances(self, row: tuple) -> SensorState:
        state, sensor, profile = self.joined.instances(row)
        sensor.profile = profile
        state.sensor = sensor
        return state


@functools.cache
def _lock_query() -> _LockQuery:
    return _LockQuery()


def _select_states(sensor_ids: list[int]) -> dict[int, SensorState]:
    if connection.vendor != "postgresql":  # the embedded demo's SQLite: no row locks to take
        rows = SensorState.objects.select_related("sensor__profile").filter(
            sensor_id__in=sensor_ids
        )
        return {state.sensor_id: state for state in rows}
    query = _lock_query()
    with prepared.cursor() as cursor:
        cursor.execute(query.sql, [[int(pk) for pk in sensor_ids]])
        rows = cursor.fetchall()
    states = (query.instances(row) for row in rows)
    return {state.sensor_id: state for state in states}


@functools.cache
def _state_update() -> tuple[str, list]:
    """The UPDATE of `_save_state`, and per field whether its value needs the field's own
    preparation (`pre_save` for `auto_now`, `get_db_prep_save` for JSON) or goes as it is
    (numbers, booleans, aware datetimes: psycopg adapts them; SQLite's driver does not)."""
    fields = [SensorState._meta.get_field(name) for name in _STATE_FIELDS]
    postgresql = connection.vendor == "postgresql"
    prepared = [(f, not postgresql or _needs_preparing(f)) for f in fields]
    assignments = ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in fields)
    table = connection.ops.quote_name(SensorState._meta.db_table)
    sql = f"UPDATE {table} SET {assignments} WHERE sensor_id = %s"  # noqa: S608  # nosec B608
    return sql, prepared


def _needs_preparing(field) -> bool:
    if isinstance(field, models.FloatField | models.IntegerField | models.BooleanField):
        return False
    return not (type(field) is models.DateTimeField and not field.auto_now)


def _cursor():
    return prepared.cursor() if connection.vendor == "postgresql" else connection.cursor()


def _save_state(state: SensorState) -> None:
    """`state.save(update_fields=_STATE_FIELDS)` in one plain UPDATE."""
    sql, fields = _state_update()
    values = [
        f.get_db_prep_save(f.pre_save(state, add=False), connection=connection)
        if prepare
        else getattr(state, f.attname)
        for f, prepare in fields
    ]
    with _cursor() as cursor:
        cursor.execute(sql, [*values, state.sensor_id])


def _insert(
    batch_id: str | None, owner: tuple, rows: dict[tuple[int, datetime], EnvReading], counts, now
) -> tuple[int, bool, dict]:
    """Insert the batch record and the readings; returns (batch record id, whether the record is
    new, {(sensor id, ts): reading id} of exactly the readings that were new).

    The record is written with the counts of a batch whose readings are all new (`_count`
    corrects them otherwise), in the same statement as the first readings. A resent batch (same
    device, same batch id) inserts no record: its readings go to the existing one."""
    adapt = connection.ops.adapt_datetimefield_value
    received = adapt(now)
    record_params = [*owner, batch_id or "", received, *counts]
    items = list(rows.items())
    chunks = [items[i : i + INSERT_CHUNK] for i in range(0, len(items), INSERT_CHUNK)]
    inserted: dict = {}
    if connection.vendor != "postgresql":
        return _insert_portably(batch_id, owner, chunks, counts, now)
    with prepared.cursor() as cursor:
        if not chunks:
            cursor.execute(f"{_INSERT_BATCH} RETURNING id", record_params)
            found = cursor.fetchone()
            if found is not None:
                return found[0], True, inserted
            return _existing_batch(cursor, owner, batch_id), False, inserted
        values, params = _values(chunks[0])
        # The record, then the readings that point at it, in one round trip. For a resent batch
        # the unique batch id leaves `batch` empty, and so the readings are not inserted yet.
        cursor.execute(
            f"WITH batch AS ({_INSERT_BATCH} RETURNING id), "  # noqa: S608  # nosec B608
            f"stored AS ({_insert_readings_sql('batch.id', 'batch, ', values)}) "
            "SELECT id, NULL, NULL FROM batch UNION ALL SELECT id, sensor_id, ts FROM stored",
            [*record_params, received, *params],
        )
        result = cursor.fetchall()
        record_id = next((row[0] for row in result if row[1] is None), None)
        created = record_id is not None
        if not created:
            record_id = _existing_batch(cursor, owner, batch_id)
            result = _insert_chunk(cursor, record_id, received, values, params)
        for chunk in chunks[1:]:
            values, params = _values(chunk)
            result += _insert_chunk(cursor, record_id, received, values, params)
        inserted.update(
            ((sensor_id, _aware(ts)), pk) for pk, sensor_id, ts in result if sensor_id is not None
        )
    return record_id, created, inserted


def _insert_portably(batch_id, owner: tuple, chunks: list, counts, now) -> tuple[int, bool, dict]:
    """`_insert` for the embedded demo's SQLite: the record first, then plain multi-row inserts
    (no data-modifying CTE there)."""
    scanner_id, sensor_id = owner
    accepted, duplicates, rejected = counts
    fields = {"received_at": now, "accepted": accepted, "duplicates": duplicates}
    fields["rejected"] = rejected
    who = {"scanner_id": scanner_id, "sensor_id": sensor_id}
    if batch_id:
        record, created = ReadingBatch.objects.get_or_create(
            batch_id=batch_id, **who, defaults=fields
        )
    else:
        record, created = ReadingBatch.objects.create(**who, **fields), True
    adapt = connection.ops.adapt_datetimefield_value
    received = adapt(now)
    table = connection.ops.quote_name(_READING_TABLE)
    inserted: dict = {}
    with connection.cursor() as cursor:
        for chunk in chunks:
            params: list = []
            for (reading_sensor, ts), r in chunk:
                params += [reading_sensor, adapt(ts), r.temperature_c, r.humidity_pct]
                params += [r.battery_pct, r.door_open, received, record.pk]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
            cursor.execute(
                f"INSERT INTO {table} ({_READING_COLUMNS}) VALUES {values} "  # noqa: S608  # nosec B608
                "ON CONFLICT (sensor_id, ts) DO NOTHING RETURNING id, sensor_id, ts",
                params,
            )
            inserted.update(((s, _aware(ts)), pk) for pk, s, ts in cursor.fetchall())
    return record.pk, created, inserted


def _values(chunk) -> tuple[str, list]:
    adapt = connection.ops.adapt_datetimefield_value
    params: list = []
    for (sensor_id, ts), r in chunk:
        params += [sensor_id, adapt(ts), r.temperature_c, r.humidity_pct, r.battery_pct]
        params.append(r.door_open)
    return ", ".join([_READING_VALUES] * len(chunk)), params


def _insert_readings_sql(batch_ref: str, batch_from: str, values: str) -> str:
    return (
        f"INSERT INTO {_READING_TABLE} ({_READING_COLUMNS}) "  # noqa: S608  # nosec B608
        "SELECT v.sensor_id, v.ts, v.temperature_c, v.humidity_pct, v.battery_pct, v.door_open, "
        f"%s::timestamptz, {batch_ref} FROM {batch_from}(VALUES {values}) AS v "
        "(sensor_id, ts, temperature_c, humidity_pct, battery_pct, door_open) "
        "ON CONFLICT (sensor_id, ts) DO NOTHING RETURNING id, sensor_id, ts"
    )


def _insert_chunk(cursor, record_id: int, received, values: str, params: list) -> list:
    cursor.execute(_insert_readings_sql("%s::bigint", "", values), [received, record_id, *params])
    return cursor.fetchall()


def _existing_batch(cursor, owner: tuple, batch_id: str | None) -> int:
    scanner_id, sensor_id = owner
    column, value = (
        ("sensor_id", sensor_id) if sensor_id is not None else ("scanner_id", scanner_id)
    )
    cursor.execute(
        f"SELECT id FROM {_BATCH_TABLE} WHERE {column} = %s AND batch_id = %s",  # noqa: S608  # nosec B608
        [value, batch_id],
    )
    return cursor.fetchone()[0]


def _count(record_id: int, created: bool, outcome: IngestOutcome) -> None:
    """Correct the batch record's counts (not every reading was new, or the batch was resent:
    a resent batch's counts add up over its deliveries)."""
    figures = {
        "accepted": outcome.accepted,
        "duplicates": outcome.duplicates,
        "rejected": len(outcome.rejected),
    }
    if not created:
        figures = {name: F(name) + value for name, value in figures.items()}
    ReadingBatch.objects.filter(pk=record_id).update(**figures)


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
