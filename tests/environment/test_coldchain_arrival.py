"""Alerts under the arrival patterns of an overloaded link (bench.coldchain at capacity): readings
that never arrive, and readings that arrive late or out of order. Through the HTTP endpoint,
against the real PostgreSQL: whatever arrives, in whatever order, the sensor's alerts end up the
incidents of the stored readings, each opened on the console once, and the sensor's evaluation
never gets stuck."""

from __future__ import annotations

import random

import pytest

from alerts import services as alert_services
from alerts.models import Alert, AlertState
from environment import monitoring, rules
from environment.models import SensorState, ThresholdProfile
from tests.coldchain import minutes_ago, reading

pytestmark = pytest.mark.django_db

INTERVAL_S = 10


@pytest.fixture
def bench_fridge(fridge):
    """The benchmark's timing: alarm delay and hysteresis of two 10 s intervals."""
    profile = ThresholdProfile.objects.get(slug="vaccine-refrigerator")
    profile.pk, profile.slug = None, "vaccine-refrigerator-fast"
    profile.alarm_delay_s = profile.clear_hysteresis_s = 2 * INTERVAL_S
    profile.save()
    fridge.profile, fridge.expected_interval_s = profile, INTERVAL_S
    fridge.save()
    return fridge


@pytest.fixture
def pushed(monkeypatch):
    """(alert id, event) of every change sent to the console."""
    events: list[tuple[int, str]] = []
    monkeypatch.setattr(
        "alerts.live.broadcast", lambda alert, event: events.append((alert.pk, event))
    )
    return events


def send(post, sensor, points):
    """points: (epoch seconds, temperature), one request each, in the order given."""
    for ts, temperature in points:
        body = {"readings": [{"sensor": sensor.serial, "ts": ts, "temperature_c": temperature}]}
        assert post(sensor.token, body).status_code == 202


def probe_series(start: float, count: int) -> list[tuple[float, float]]:
    """The benchmark probe's pattern: four readings at 9 °C every 2 minutes, else 5.5 °C."""
    points = []
    for k in range(count):
        since = (k * INTERVAL_S - 35) % 120
        bad = k * INTERVAL_S >= 35 and since < 4 * INTERVAL_S
        points.append((start + k * INTERVAL_S, 9.0 if bad else 5.5))
    return points


def standing(sensor) -> list[float]:
    alerts = Alert.objects.filter(sensor=sensor, kind=rules.TEMPERATURE_HIGH)
    return sorted(a.started_at.timestamp() for a in alerts if not a.details.get("withdrawn"))


@pytest.mark.parametrize("seed", range(8))
def test_lost_and_reordered_readings_give_the_alerts_of_what_was_stored(
    bench_fridge, post, pushed, seed
):
    rng = random.Random(seed)
    kept = [p for p in probe_series(minutes_ago(60).timestamp(), 120) if rng.random() > 0.4]
    # Each reading late by up to a minute: requests that queued behind others, or resent.
    arrival = sorted(kept, key=lambda p: p[0] + rng.uniform(0, 60))
    send(post, bench_fridge, arrival)
    assert SensorState.objects.get(sensor=bench_fridge).pending_evaluation is False
    expected = rules.evaluate(
        [rules.Reading(ts=ts, temperature_c=t) for ts, t in kept],
        monitoring.limits_for(bench_fridge),
    )
    assert expected, "the pattern has excursions"
    assert standing(bench_fridge) == [i.started_at for i in expected]
    opened = [pk for pk, event in pushed if event == "opened"]
    assert sorted(opened) == sorted(Alert.objects.values_list("pk", flat=True))


def test_a_past_excursion_found_late_while_a_newer_one_is_open_is_recorded(bench_fridge, post):
    """A gateway's spool delivers an excursion of an hour ago while the fridge is out of range
    again now: both incidents are alerts, and the evaluation goes on (it used to fail on the
    one-unresolved-alert constraint, and then failed for every later upload of the sensor)."""
    send(post, bench_fridge, [(minutes_ago(m).timestamp(), 5.0) for m in range(90, 61, -1)])
    send(post, bench_fridge, [(minutes_ago(m).timestamp(), 5.0) for m in range(40, 20, -1)])
    send(post, bench_fridge, [(minutes_ago(m).timestamp(), 9.0) for m in range(20, 2, -1)])
    current = Alert.objects.get()
    body = {"readings": [reading(bench_fridge, minutes_ago(m), 9.0) for m in range(60, 40, -1)]}
    assert post(bench_fridge.token, body).status_code == 202
    state = SensorState.objects.get(sensor=bench_fridge)
    assert state.pending_evaluation is False
    past = Alert.objects.exclude(pk=current.pk).get()
    assert (past.started_at, past.state) == (minutes_ago(60), AlertState.RESOLVED)
    assert past.resolution_note == alert_services.PAST_INCIDENT_NOTE
    send(post, bench_fridge, [(minutes_ago(m).timestamp(), 5.0) for m in (2, 1, 0)])
    current.refresh_from_db()
    assert current.state == AlertState.RESOLVED
