"""Runs the rule engine (environment.rules) over stored readings and turns its incidents into
alerts (alerts.services). The engine's state per sensor lives in `SensorState.monitor`; readings
newer than the `evaluated_through` watermark are fed to it after every upload, and the periodic
task catches up on any sensor an upload could not evaluate."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from alerts import services as alert_services
from alerts.models import Alert, AlertState
from environment import rules
from environment.models import EnvironmentReading, Sensor, SensorState

SOURCE = "environment"
log = logging.getLogger("wardwise.environment")

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


def describe(incident: rules.Incident, sensor: Sensor) -> str:
    unit = rules.UNITS[incident.kind]
    text = f"{sensor.serial}: {LABELS[incident.kind]}"
    if incident.last is not None:
        text += f", now {incident.last:g} {unit}, worst {incident.peak:g} {unit}"
    if sensor.contents:
        text += f"; contents: {sensor.contents}"
    return text


def evaluate_sensor(sensor_id: int, *, now: datetime | None = None) -> int:
    """Feed the sensor's unevaluated readings to its monitor and apply the alert changes.
    Returns how many readings were evaluated."""
    now = now or timezone.now()
    with transaction.atomic():
        state = (
            SensorState.objects.select_for_update()
            .select_related("sensor__profile", "sensor__zone")
            .filter(sensor_id=sensor_id)
            .first()
        )
        if state is None:
            return 0
        sensor = state.sensor
        new_rows = list(
            EnvironmentReading.objects.filter(
                sensor_id=sensor_id, id__gt=state.evaluated_through
            ).order_by("ts")
        )
        if not new_rows:
            if state.pending_evaluation:
                state.pending_evaluation = False
                state.save(update_fields=["pending_evaluation", "updated_at"])
            return 0
        limits = limits_for(sensor)
        kinds = Q(source=SOURCE, sensor=sensor, kind__in=rules.EVENT_TIME_KINDS)
        # The open offline alert, if any, comes with the same query: most uploads have none and
        # then need no second transaction to clear it.
        offline = Q(source=SOURCE, subject=subject(sensor), kind=rules.SENSOR_OFFLINE)
        open_alerts = list(Alert.objects.filter(kinds | offline).exclude(state=AlertState.RESOLVED))
        unresolved = [a for a in open_alerts if a.kind != rules.SENSOR_OFFLINE]
        was_offline = len(unresolved) < len(open_alerts)

        def history(start: float) -> list[rules.Reading]:
            rows = EnvironmentReading.objects.filter(sensor_id=sensor_id, ts__gte=_dt(start))
            return [to_rule_reading(r) for r in rows.order_by("ts")]

        update = rules.update_monitor(
            limits,
            state.monitor or None,
            [to_rule_reading(r) for r in new_rows],
            history,
            [a.started_at.timestamp() for a in unresolved],
        )
        _apply(sensor, update, unresolved, kinds, now)
        _record_latest(state, new_rows, update, now)
    if not was_offline:
        return len(new_rows)
    alert_services.clear_condition(
        source=SOURCE,
        kind=rules.SENSOR_OFFLINE,
        subject=subject(sensor),
        ended_at=state.last_received_at or now,
        note="readings received again",
        now=now,
    )
    return len(new_rows)


def _apply(sensor, update: rules.Update, unresolved, kinds: Q, now: datetime) -> None:
    candidates = {a.pk: a for a in unresolved}
    starts = [i.started_at for i in update.incidents]
    if update.replayed_from is not None:
        starts.append(update.replayed_from)
    if starts:
        earliest = _dt(min(starts))
        for alert in Alert.objects.filter(kinds, state=AlertState.RESOLVED).filter(
            Q(ended_at__isnull=True) | Q(ended_at__gte=earliest) | Q(started_at__gte=earliest)
        ):
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


def _record_latest(state: SensorState, new_rows, update: rules.Update, now: datetime) -> None:
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
    state.save()


def evaluate_safely(sensor_ids, *, now: datetime | None = None) -> None:
    """After an upload: evaluate, but never fail the upload, whose readings are already stored.
    A sensor left unevaluated keeps `pending_evaluation` and the periodic task retries it."""
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
