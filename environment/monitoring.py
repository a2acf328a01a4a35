"""Runs the rule engine (environment.rules) over stored readings and turns its incidents into
alerts (alerts.services). The engine's state per sensor lives in `SensorState.monitor`; readings
newer than the `evaluated_through` watermark are fed to it in the upload's own transaction
(environment.ingest calls `evaluate_locked`), and the periodic task catches up on any sensor an
upload could not evaluate (`check_sensors`)."""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from alerts import audit
from alerts import services as alert_services
from alerts.models import Alert, AlertState
from environment import rules
from environment.models import EnvironmentReading, Sensor, SensorState

SOURCE = "environment"
log = logging.getLogger("wardwise.environment")
#: What an evaluation changes on the sensor's state row.
_EVALUATION_FIELDS = (
    "evaluated_through",
    "pending_evaluation",
    "unresolved_alerts",
    "last_ts",
    "temperature_c",
    "humidity_pct",
    "battery_pct",
    "door_open",
    "monitor",
)

LABELS = {
    rules.TEMPERATURE_HIGH: "temperature above range",
    rules.TEMPERATURE_LOW: "temperature below range",
    rules.HUMIDITY_HIGH: "humidity above range",
    rules.HUMIDITY_LOW: "humidity below range",
    rules.DOOR_OPEN: "door open too long",
    rules.LOW_BATTERY: "low battery",
    rules.SENSOR_FAULT: "implausible readings (sensor fault)",
    rules.SENSOR_OFFLINE: "sensor offline",
}


def limits_for(sensor: Sensor) -> rules.Limits:
    p = sensor.profile
    return rules.Limits(
        temperature_min_c=p.temperature_min_c,
        temperature_max_c=p.temperature_max_c,
        temperature_critical_min_c=p.temperature_critical_min_c,
        temperature_critical_max_c=p.temperature_critical_max_c,
        humidity_min_pct=p.humidity_min_pct,
        humidity_max_pct=p.humidity_max_pct,
        alarm_delay_s=float(p.alarm_delay_s),
        clear_hysteresis_s=float(p.clear_hysteresis_s),
        door_open_max_s=float(p.door_open_max_s),
        low_battery_pct=p.low_battery_pct,
        critical_battery_pct=p.critical_battery_pct,
        plausible_min_c=p.plausible_min_c,
        plausible_max_c=p.plausible_max_c,
        expected_interval_s=float(sensor.expected_interval_s),
        offline_after_intervals=float(p.offline_after_intervals),
    )


def subject(sensor: Sensor) -> str:
    return f"sensor:{sensor.pk}"


def title(sensor: Sensor) -> str:
    return f"{sensor.serial} ({sensor.zone.name})"


def to_rule_reading(row: EnvironmentReading) -> rules.Reading:
    return rules.Reading(
        ts=row.ts.timestamp(),
        temperature_c=row.temperature_c,
        humidity_pct=row.humidity_pct,
        battery_pct=row.battery_pct,
        door_open=row.door_open,
    )


def _dt(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC)


@functools.cache
def _history_sql() -> str:
    table = connection.ops.quote_name(EnvironmentReading._meta.db_table)
    return (
        "SELECT ts, temperature_c, humidity_pct, battery_pct, door_open "  # noqa: S608  # nosec B608
        f"FROM {table} WHERE sensor_id = %s AND ts >= %s ORDER BY ts"
    )


def stored_history(sensor_id: int, start: float) -> list[rules.Reading]:
    """A sensor's stored readings from `start` (epoch seconds) on, in ts order, as the rules
    read them (a late reading's replay). One plain query: on this path, which an overloaded
    server takes for every reading that arrives after a newer one, building the ORM query and
    its model instances cost more than the query."""
    since = connection.ops.adapt_datetimefield_value(_dt(start))
    with connection.cursor() as cursor:
        cursor.execute(_history_sql(), [sensor_id, since])
        rows = cursor.fetchall()
    return [
        rules.Reading(
            ts=_epoch(ts),
            temperature_c=temperature,
            humidity_pct=humidity,
            battery_pct=battery,
            door_open=None if door is None else bool(door),
        )
        for ts, temperature, humidity, battery, door in rows
    ]


def _epoch(value) -> float:
    """Epoch seconds of a timestamp column as a raw cursor returns it (aware on PostgreSQL;
    naive UTC, or text, on the demo's SQLite)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def describe(incident: rules.Incident, sensor: Sensor) -> str:
    unit = rules.UNITS[incident.kind]
    text = f"{sensor.serial}: {LABELS[incident.kind]}"
    if incident.last is not None:
        text += f", now {incident.last:g} {unit}, worst {incident.peak:g} {unit}"
    if sensor.contents:
        text += f"; contents: {sensor.contents}"
    return text


class _NeedsDatabase(Exception):
    """The in-memory fast path cannot decide: the engine asked for stored readings."""


def _no_history(start: float) -> list[rules.Reading]:
    raise _NeedsDatabase


def evaluate_locked(state: SensorState, new_rows, *, now: datetime) -> None:
    """Bring a sensor's monitor up to date with `new_rows` (the readings just stored, in ts
    order, each with `pk`, `ts` and the measurements) and apply the alert changes. The caller
    holds the state row's lock in its transaction, with `state.sensor` and its profile loaded
    (zone and policy load when an alert opens), and saves `state` afterwards.

    Never raises: a failing evaluation leaves `state` as it was with `pending_evaluation` set (the
    periodic task tries again), and its database work is rolled back to a savepoint, so the
    upload that stored the readings still commits.

    The common upload takes a fast path with no query at all: the sensor has nothing pending and
    no unresolved alert (`state.unresolved_alerts` is false), its readings are newer than every
    reading the monitor has seen (no replay, so no stored history is needed) and they raise or
    change no incident (so no alert row is touched)."""
    saved = {name: getattr(state, name) for name in _EVALUATION_FIELDS}
    try:
        if not state.pending_evaluation and not state.unresolved_alerts:
            update = _in_memory(state, new_rows)
            if update is not None:
                _record_latest(state, new_rows, update)
                return
        with audit.entered(), transaction.atomic():
            _evaluate(state, None if state.pending_evaluation else new_rows, now)
    except Exception:
        for name, value in saved.items():
            setattr(state, name, value)
        state.pending_evaluation = True
        log.exception(
            "rule evaluation failed for sensor %s; the periodic task retries", state.sensor_id
        )


def _in_memory(state: SensorState, new_rows) -> rules.Update | None:
    """The engine's update when it needs no stored reading and changes no incident, else None."""
    try:
        update = rules.update_monitor(
            limits_for(state.sensor),
            state.monitor or None,
            [to_rule_reading(r) for r in new_rows],
            _no_history,
        )
    except _NeedsDatabase:
        return None
    return None if update.incidents else update


def evaluate_sensor(sensor_id: int, *, now: datetime | None = None) -> int:
    """Feed the sensor's unevaluated readings to its monitor and apply the alert changes, in one
    transaction (the periodic task's retry of what an upload could not evaluate). Raises on
    failure, leaving everything as it was. Returns how many readings were evaluated."""
    now = now or timezone.now()
    with transaction.atomic():
        state = (
            SensorState.objects.select_for_update(of=("self",))
            .select_related("sensor__profile", "sensor__zone", "sensor__escalation_policy")
            .filter(sensor_id=sensor_id)
            .first()
        )
        if state is None:
            return 0
        evaluated = _evaluate(state, None, now)
        state.save(update_fields=[*_EVALUATION_FIELDS, "updated_at"])
    return evaluated


def _evaluate(state: SensorState, new_rows, now: datetime) -> int:
    """The general case: load what the fast path could not assume (the readings past the
    watermark when `new_rows` is None, the sensor's unresolved alerts, stored history for a
    replay), run the engine and apply its alert changes. Updates `state` in memory."""
    sensor = state.sensor
    if new_rows is None:
        new_rows = list(
            EnvironmentReading.objects.filter(
                sensor_id=sensor.pk, id__gt=state.evaluated_through
            ).order_by("ts")
        )
    if not new_rows:
        state.pending_evaluation = False
        return 0
    limits = limits_for(sensor)
    open_alerts = []
    if state.unresolved_alerts:
        # The open offline alert, if any, comes with the same query.
        open_alerts = _alert_queries().unresolved(sensor)
    unresolved = [a for a in open_alerts if a.kind != rules.SENSOR_OFFLINE]
    was_offline = len(unresolved) < len(open_alerts)

    update = rules.update_monitor(
        limits,
        state.monitor or None,
        [to_rule_reading(r) for r in new_rows],
        lambda start: stored_history(sensor.pk, start),
        [a.started_at.timestamp() for a in unresolved],
    )
    raised = _apply(sensor, update, unresolved, now)
    if was_offline:
        alert_services.clear_condition(
            source=SOURCE,
            kind=rules.SENSOR_OFFLINE,
            subject=subject(sensor),
            ended_at=state.last_received_at or now,
            note="readings received again",
            now=now,
        )
    _record_latest(state, new_rows, update)
    # Cleared only here, holding the state row's lock, after finding no unresolved alert and
    # raising none; the next upload then skips the alert query (see SensorState).
    state.unresolved_alerts = bool(open_alerts) or raised
    return len(new_rows)


def _apply(sensor, update: rules.Update, unresolved, now: datetime) -> bool:
    """Carry out the engine's alert actions; returns whether an alert was opened or reopened."""
    raised = False
    candidates = {a.pk: a for a in unresolved}
    starts = [i.started_at for i in update.incidents]
    if update.replayed_from is not None:
        starts.append(update.replayed_from)
    if starts:
        for alert in _alert_queries().resolved_since(sensor, _dt(min(starts))):
            candidates[alert.pk] = alert
    views = [
        rules.AlertView(
            id=a.pk,
            kind=a.kind,
            started_at=a.started_at.timestamp(),
            ended_at=a.ended_at.timestamp() if a.ended_at else None,
            resolved=a.is_resolved,
            automatic=a.resolved_automatically,
        )
        for a in candidates.values()
    ]
    for action in rules.reconcile(update, views):
        incident = action.incident
        alert = candidates.get(action.alert_id)
        if action.op in ("open", "reopen"):
            raised = True
        if action.op == "open":
            alert_services.open_alert(
                source=SOURCE,
                kind=incident.kind,
                subject=subject(sensor),
                title=title(sensor),
                severity=incident.severity,
                started_at=_dt(incident.started_at),
                ended_at=_dt(incident.ended_at),
                resolved_at=_dt(incident.resolved_at),
                message=describe(incident, sensor),
                unit=rules.UNITS[incident.kind],
                value=incident.last,
                peak=incident.peak,
                sensor=sensor,
                policy=sensor.escalation_policy,
                details={"alarmed_at": _dt(incident.alarmed_at).isoformat()},
                now=now,
            )
        elif action.op == "update":
            alert_services.update_alert(
                Alert.objects.get(pk=alert.pk) if action.exact else alert,
                severity=incident.severity,
                value=incident.last,
                peak=incident.peak,
                started_at=_dt(incident.started_at),
                ended_at=_dt(incident.ended_at),
                message=describe(incident, sensor),
                exact=action.exact,
                now=now,
            )
        elif action.op == "resolve":
            alert_services.resolve(
                alert, note="back in range for the hysteresis time", automatically=True, now=now
            )
        elif action.op == "reopen":
            alert_services.reopen(alert, "late readings show the condition went on", now=now)
        elif action.op == "withdraw":
            alert_services.withdraw(
                alert,
                "late readings show the condition lasted less than the alarm delay",
                ended_at=_dt(action.at),
                now=now,
            )
        elif action.op == "settle":
            Alert.objects.filter(pk=alert.pk).update(ended_at=_dt(incident.ended_at))
    return raised


class _AlertQueries:
    """The sensor's alerts the general path reads, as two plain queries written out once (like
    environment.ingest's lock query): through the ORM, compiling them cost more than running
    them, on every upload of a sensor with an unresolved alert and every late reading's replay.
    Same rows, same order (`Alert.Meta.ordering`, newest opened first) as

    - unresolved: `Alert.objects.filter(Q(source, sensor, kind__in=EVENT_TIME_KINDS) |
      Q(source, subject, kind=SENSOR_OFFLINE)).exclude(state=RESOLVED)`;
    - resolved_since(earliest): `Alert.objects.filter(Q(source, sensor, kind__in=
      EVENT_TIME_KINDS), state=RESOLVED).filter(Q(ended_at__isnull=True) |
      Q(ended_at__gte=earliest) | Q(started_at__gte=earliest))`."""

    def __init__(self) -> None:
        quote = connection.ops.quote_name
        column = {f.name: quote(f.column) for f in Alert._meta.concrete_fields}
        table = quote(Alert._meta.db_table)
        kinds = ", ".join(["%s"] * len(rules.EVENT_TIME_KINDS))
        own = f"{column['sensor']} = %s AND {column['kind']} IN ({kinds})"
        select = f"SELECT * FROM {table} WHERE {column['source']} = %s AND "  # noqa: S608  # nosec B608
        order = f" ORDER BY {column['opened_at']} DESC"
        self.unresolved_sql = (
            f"{select}{column['state']} <> %s AND (({own}) OR "
            f"({column['subject']} = %s AND {column['kind']} = %s)){order}"
        )
        self.resolved_sql = (
            f"{select}{own} AND {column['state']} = %s AND ({column['ended_at']} IS NULL OR "
            f"{column['ended_at']} >= %s OR {column['started_at']} >= %s){order}"
        )

    def unresolved(self, sensor: Sensor) -> list[Alert]:
        params = [SOURCE, AlertState.RESOLVED.value, sensor.pk, *rules.EVENT_TIME_KINDS]
        params += [subject(sensor), rules.SENSOR_OFFLINE]
        return list(Alert.objects.raw(self.unresolved_sql, params))

    def resolved_since(self, sensor: Sensor, earliest: datetime) -> list[Alert]:
        since = connection.ops.adapt_datetimefield_value(earliest)
        params = [SOURCE, sensor.pk, *rules.EVENT_TIME_KINDS, AlertState.RESOLVED.value]
        params += [since, since]
        return list(Alert.objects.raw(self.resolved_sql, params))


@functools.cache
def _alert_queries() -> _AlertQueries:
    return _AlertQueries()


def _record_latest(state: SensorState, new_rows, update: rules.Update) -> None:
    """The newest values, the watermark and the monitor, in memory (the caller saves)."""
    for row in new_rows:
        if state.last_ts is not None and row.ts < state.last_ts:
            continue
        state.last_ts = row.ts
        for name in ("temperature_c", "humidity_pct", "battery_pct", "door_open"):
            value = getattr(row, name)
            if value is not None:
                setattr(state, name, value)
    state.evaluated_through = max(state.evaluated_through, max(r.pk for r in new_rows))
    state.monitor = update.state
    state.pending_evaluation = False


def evaluate_safely(sensor_ids, *, now: datetime | None = None) -> None:
    """Evaluate each sensor in its own transaction; a failure is logged and leaves that sensor's
    `pending_evaluation` set for the next pass."""
    for sensor_id in sensor_ids:
        try:
            evaluate_sensor(sensor_id, now=now)
        except Exception:
            log.exception(
                "rule evaluation failed for sensor %s; the periodic task retries", sensor_id
            )


def check_sensors(*, now: datetime | None = None) -> dict:
    """The periodic pass: evaluate sensors with readings still pending, and raise an offline
    alert for every active sensor not heard from for `offline_after_intervals` intervals."""
    now = now or timezone.now()
    pending = list(
        SensorState.objects.filter(pending_evaluation=True).values_list("sensor_id", flat=True)
    )
    evaluate_safely(pending, now=now)
    offline = 0
    states = SensorState.objects.filter(
        sensor__is_active=True, last_received_at__isnull=False
    ).select_related("sensor__profile", "sensor__zone", "sensor__escalation_policy")
    for state in states:
        sensor = state.sensor
        limits = limits_for(sensor)
        if not rules.is_offline(state.last_received_at.timestamp(), now.timestamp(), limits):
            continue
        offline += 1
        silent_s = (now - state.last_received_at).total_seconds()
        alert_services.report_condition(
            source=SOURCE,
            kind=rules.SENSOR_OFFLINE,
            subject=subject(sensor),
            title=title(sensor),
            severity=rules.WARNING,
            started_at=state.last_received_at,
            value=silent_s,
            peak=silent_s,
            unit="s",
            message=(
                f"{sensor.serial}: nothing received for {silent_s / 60:.0f} min "
                f"(expected every {sensor.expected_interval_s} s)"
            ),
            sensor=sensor,
            policy=sensor.escalation_policy,
            now=now,
        )
    return {"evaluated": len(pending), "offline": offline}
