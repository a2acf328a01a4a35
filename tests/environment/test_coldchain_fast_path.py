"""The cheap path of an upload (environment.ingest, environment.monitoring.evaluate_locked), as a
specification: one transaction; for a sensor with no unresolved alert and in-order in-range
readings no query for alerts or stored readings; the `unresolved_alerts` flag that allows this
kept true whenever an alert is unresolved; and an evaluation that fails never failing the upload.
Against the real PostgreSQL, through the HTTP endpoint."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts import services as alert_services
from alerts.models import Alert, AlertState
from environment import monitoring, rules
from environment.models import EnvironmentReading, ReadingBatch, SensorState
from tests.coldchain import minutes_ago, reading
from tests.factories import ColdChainSensorFactory, UserFactory

pytestmark = pytest.mark.django_db

#: Upper bound of the statements of an upload on the cheap path: BEGIN, the state lock, the
#: batch-and-readings insert, the state update, COMMIT; perhaps the device token's row.
CHEAP_UPLOAD_STATEMENTS = 7


def upload(post, sensor, points, token=None):
    """points: (minutes ago, temperature) pairs, uploaded in one batch."""
    body = {"readings": [reading(sensor, minutes_ago(m), t) for m, t in points]}
    response = post(token or sensor.token, body)
    assert response.status_code == 202, response.content
    return response.json()


def captured(post, sensor, points):
    with CaptureQueriesContext(connection) as queries:
        answer = upload(post, sensor, points)
    return answer, [q["sql"] for q in queries.captured_queries]


def touching(statements, table):
    return [sql for sql in statements if f'"{table}"' in sql or f" {table} " in sql]


def state(sensor):
    return SensorState.objects.get(sensor=sensor)


@pytest.mark.django_db(transaction=True)  # the upload's own BEGIN and COMMIT, not a savepoint
def test_an_in_range_upload_of_a_sensor_without_alerts_is_one_cheap_transaction(fridge, post):
    upload(post, fridge, [(10, 5.0)])  # first upload: creates the state, looks for alerts once
    assert state(fridge).unresolved_alerts is False
    answer, statements = captured(post, fridge, [(9, 5.1)])
    assert answer["accepted"] == 1
    assert len(statements) <= CHEAP_UPLOAD_STATEMENTS, statements
    assert not touching(statements, "alerts_alert")
    assert not [s for s in statements if s.startswith("SELECT") and "environmentreading" in s]
    assert not [s for s in statements if "SAVEPOINT" in s]
    assert sum(s == "COMMIT" for s in statements) == 1
    stored = state(fridge)
    assert (stored.temperature_c, stored.pending_evaluation) == (5.1, False)
    assert (
        stored.evaluated_through == EnvironmentReading.objects.filter(sensor=fridge).latest("ts").pk
    )
    assert stored.monitor["last_ts"] == minutes_ago(9).timestamp()


def test_the_cheap_path_gives_the_alerts_of_the_general_path(fridge, post):
    """An excursion reported reading by reading: the rule engine's result is the same as one
    evaluation of all the readings at once (environment.rules.evaluate)."""
    points = [(m, 5.0) for m in range(60, 50, -1)]
    points += [(m, 9.5) for m in range(50, 35, -1)] + [(m, 5.0) for m in range(35, 15, -1)]
    for point in points:
        upload(post, fridge, [point])
    alert = Alert.objects.get()
    expected = rules.evaluate(
        [rules.Reading(ts=minutes_ago(m).timestamp(), temperature_c=t) for m, t in points],
        monitoring.limits_for(fridge),
    )
    assert len(expected) == 1
    assert alert.started_at.timestamp() == expected[0].started_at
    assert alert.ended_at.timestamp() == expected[0].ended_at
    assert (alert.state, alert.resolved_automatically) == (AlertState.RESOLVED, True)
    assert alert.peak_value == expected[0].peak


def test_a_sensor_with_an_open_alert_still_gets_it_updated(fridge, post):
    upload(post, fridge, [(m, 9.0) for m in range(40, 28, -1)])
    alert = Alert.objects.get()
    assert state(fridge).unresolved_alerts is True
    answer, statements = captured(post, fridge, [(27, 11.5)])
    assert answer["accepted"] == 1
    assert touching(statements, "alerts_alert")
    alert.refresh_from_db()
    assert (alert.last_value, alert.peak_value) == (11.5, 11.5)
    upload(post, fridge, [(m, 5.0) for m in range(26, 10, -1)])
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED
    # The upload that resolved it kept the flag; the next one finds no alert and clears it ...
    upload(post, fridge, [(9, 5.0)])
    assert state(fridge).unresolved_alerts is False
    # ... and from then on uploads do not look for alerts.
    _, statements = captured(post, fridge, [(8, 5.0)])
    assert not touching(statements, "alerts_alert")


def test_an_alert_resolved_by_hand_is_noticed_by_the_next_upload(fridge, post):
    upload(post, fridge, [(m, 9.0) for m in range(40, 28, -1)])
    alert = Alert.objects.get()
    alert_services.resolve(alert, UserFactory(), "stock moved to fridge 3")
    upload(post, fridge, [(m, 5.0) for m in range(28, 10, -1)])
    assert state(fridge).unresolved_alerts is False
    alert.refresh_from_db()
    assert alert.ended_at == minutes_ago(28)


def test_an_offline_alert_sets_the_flag_and_the_next_upload_clears_it(fridge, post):
    upload(post, fridge, [(2, 5.0)])
    assert state(fridge).unresolved_alerts is False
    later = state(fridge).last_received_at + timedelta(minutes=5)
    assert monitoring.check_sensors(now=later)["offline"] == 1
    assert state(fridge).unresolved_alerts is True
    upload(post, fridge, [(1, 5.0)])
    offline = Alert.objects.get(kind=rules.SENSOR_OFFLINE)
    assert offline.state == AlertState.RESOLVED
    upload(post, fridge, [(0.5, 5.0)])
    assert state(fridge).unresolved_alerts is False


def test_opening_or_reopening_any_alert_of_a_sensor_sets_the_flag(fridge, post):
    upload(post, fridge, [(5, 5.0)])
    assert state(fridge).unresolved_alerts is False
    alert = alert_services.open_alert(
        source="environment",
        kind=rules.DOOR_OPEN,
        subject=monitoring.subject(fridge),
        title="fridge",
        severity="warning",
        started_at=minutes_ago(4),
        sensor=fridge,
    )
    assert state(fridge).unresolved_alerts is True
    alert_services.resolve(alert, automatically=True)
    SensorState.objects.filter(sensor=fridge).update(unresolved_alerts=False)
    alert_services.reopen(alert, "late readings show the condition went on")
    assert state(fridge).unresolved_alerts is True


def test_late_readings_replay_from_the_stored_history(fridge, post):
    """An out-of-order reading leaves the cheap path (the engine needs the stored readings)."""
    upload(post, fridge, [(m, 5.0) for m in range(30, 0, -1) if not 20 <= m <= 22])
    answer, statements = captured(post, fridge, [(21, 5.0)])
    assert answer["accepted"] == 1
    assert [s for s in statements if s.startswith("SELECT") and "environmentreading" in s]
    assert state(fridge).monitor["last_ts"] == minutes_ago(1).timestamp()


def test_a_failing_evaluation_rolls_back_alone_and_the_upload_is_kept(fridge, post, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("channel layer bug")

    # Fails inside the evaluation's savepoint, after the alert row was written.
    monkeypatch.setattr("alerts.live.broadcast", broken)
    answer = upload(post, fridge, [(m, 9.0) for m in range(40, 25, -1)])
    assert answer["accepted"] == 15
    assert EnvironmentReading.objects.filter(sensor=fridge).count() == 15
    assert not Alert.objects.exists()
    stored = state(fridge)
    assert stored.pending_evaluation is True
    assert stored.evaluated_through == 0
    assert stored.monitor == {}
    monkeypatch.undo()
    monitoring.check_sensors()
    assert Alert.objects.get().started_at == minutes_ago(40)
    assert state(fridge).pending_evaluation is False


def test_readings_left_pending_are_evaluated_with_the_next_upload(fridge, post, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("rule engine bug")

    monkeypatch.setattr(rules, "update_monitor", broken)
    upload(post, fridge, [(m, 9.0) for m in range(40, 30, -1)])
    assert state(fridge).pending_evaluation is True
    monkeypatch.undo()
    upload(post, fridge, [(m, 9.0) for m in range(30, 25, -1)])
    assert Alert.objects.get().started_at == minutes_ago(40)
    assert state(fridge).pending_evaluation is False


def test_a_gateway_batch_for_several_sensors_is_stored_and_evaluated_per_sensor(
    gateway, relayed, post
):
    other = ColdChainSensorFactory(serial="fridge-lab-2", gateway=gateway)
    body = {
        "batch": "gw-7",
        "readings": [reading(relayed, minutes_ago(m), 9.0) for m in range(30, 15, -1)]
        + [reading(other, minutes_ago(m), 5.0) for m in range(30, 15, -1)],
    }
    response = post(gateway.token, body)
    assert response.json()["accepted"] == 30
    assert Alert.objects.get().sensor == relayed
    assert state(other).temperature_c == 5.0
    assert (state(relayed).pending_evaluation, state(other).pending_evaluation) == (False, False)
    again = post(gateway.token, body).json()
    assert (again["accepted"], again["duplicates"], again["duplicate_batch"]) == (0, 30, True)
    record = ReadingBatch.objects.get(batch_id="gw-7")
    assert (record.accepted, record.duplicates, record.rejected) == (30, 30, 0)
    assert EnvironmentReading.objects.filter(batch=record).count() == 30


def test_a_resent_batch_adds_its_new_readings_to_the_first_record(fridge, post):
    first = {"batch": "spool-3", "readings": [reading(fridge, minutes_ago(3), 5.0)]}
    post(fridge.token, first)
    resent = {
        "batch": "spool-3",
        "readings": [reading(fridge, minutes_ago(3), 5.0), reading(fridge, minutes_ago(2), 5.2)],
    }
    answer = post(fridge.token, resent).json()
    assert (answer["accepted"], answer["duplicates"], answer["duplicate_batch"]) == (1, 1, True)
    record = ReadingBatch.objects.get(batch_id="spool-3")
    assert (record.accepted, record.duplicates) == (2, 1)
    assert set(EnvironmentReading.objects.values_list("batch", flat=True)) == {record.pk}


def test_an_upload_with_nothing_accepted_still_records_the_batch(fridge, post):
    answer = post(fridge.token, {"batch": "empty-1", "readings": [{"sensor": fridge.serial}]})
    assert answer.status_code == 202
    record = ReadingBatch.objects.get(batch_id="empty-1")
    assert (record.accepted, record.rejected) == (0, 1)
    assert not SensorState.objects.filter(sensor=fridge).exists()


def test_an_uploads_statements_are_planned_once_per_connection(fridge, post):
    """Hundreds of uploads a second run the same three statements: PostgreSQL keeps their plans
    (hospital.prepared) instead of parsing and planning each one again."""
    for minute in range(6, 0, -1):
        upload(post, fridge, [(minute, 5.0)])
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        statements = [statement for (statement,) in cursor.fetchall()]
    assert touching(statements, "environment_sensorstate")  # the state lock and its update
    assert touching(statements, "environment_environmentreading")  # the insert
