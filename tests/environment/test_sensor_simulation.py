"""The simulated fridge probes (environment.simulation): realistic values per kind, reports on
schedule, and the failing fridge's excursion as the rule engine sees it. Pure Python."""

from __future__ import annotations

import itertools
import statistics

import pytest

from environment import rules
from environment.simulation import Failure, SensorSimulator, SensorSpec, climate_for

T0 = 1_795_000_000.0
VACCINE = rules.Limits(2.0, 8.0, 0.0, 10.0, expected_interval_s=10.0)
FREEZER = rules.Limits(-50.0, -15.0, -60.0, -12.0, expected_interval_s=10.0)
BLOOD = rules.Limits(1.0, 6.0, 0.0, 8.0, expected_interval_s=10.0)
#: The demo's timing (environment.demo): alarm delay 30 s, hysteresis 60 s.
DEMO_VACCINE = rules.Limits(
    2.0, 8.0, 0.0, 10.0, alarm_delay_s=30, clear_hysteresis_s=60, expected_interval_s=10.0
)
SENSORS = [
    SensorSpec("fridge-1", "refrigerator", 10.0),
    SensorSpec("freezer-1", "freezer", 10.0),
    SensorSpec("blood-1", "blood-bank", 10.0),
]


def run(simulator: SensorSimulator, seconds: float, step: float = 1.0) -> list[dict]:
    readings = []
    t = simulator.start_ts
    while t <= simulator.start_ts + seconds:
        readings += simulator.due(t)
        t += step
    return readings


def by_sensor(readings: list[dict], serial: str) -> list[dict]:
    return [r for r in readings if r["sensor"] == serial]


def to_rules(readings: list[dict]) -> list[rules.Reading]:
    return [
        rules.Reading(
            ts=r["ts"],
            temperature_c=r["temperature_c"],
            battery_pct=r["battery_pct"],
            door_open=r["door_open"],
        )
        for r in readings
    ]


@pytest.fixture(scope="module")
def six_hours():
    return run(SensorSimulator(SENSORS, start_ts=T0, seed=3), 6 * 3600, step=5.0)


def test_every_sensor_reports_once_per_interval_in_order(six_hours):
    for spec in SENSORS:
        stamps = [r["ts"] for r in by_sensor(six_hours, spec.serial)]
        assert len(stamps) in (6 * 360, 6 * 360 + 1)
        gaps = {round(b - a, 3) for a, b in itertools.pairwise(stamps)}
        assert gaps == {10.0}
    assert [r["ts"] for r in six_hours] == sorted(r["ts"] for r in six_hours)


@pytest.mark.parametrize(
    ("serial", "limits", "low", "high", "mean"),
    [
        ("fridge-1", VACCINE, 3.5, 7.5, (4.0, 5.0)),
        ("freezer-1", FREEZER, -22.0, -16.0, (-21.0, -19.0)),
        ("blood-1", BLOOD, 3.2, 5.5, (3.7, 4.3)),
    ],
)
def test_healthy_units_hold_their_range_and_never_alert(six_hours, serial, limits, low, high, mean):
    readings = by_sensor(six_hours, serial)
    temperatures = [r["temperature_c"] for r in readings]
    assert low <= min(temperatures)
    assert max(temperatures) <= high
    assert mean[0] <= statistics.fmean(temperatures) <= mean[1]
    assert rules.evaluate(to_rules(readings), limits) == []
    batteries = {r["battery_pct"] for r in readings}
    assert all(60 <= b <= 100 for b in batteries)


def test_fridges_cycle_and_their_doors_open_now_and_then(six_hours):
    fridge = by_sensor(six_hours, "fridge-1")
    hour = [r["temperature_c"] for r in fridge[:360]]
    assert max(hour) - min(hour) >= 0.8, "compressor cycling is visible"
    opened = [r for r in fridge if r["door_open"]]
    assert 5 <= len(opened) <= 200
    assert all(isinstance(r["door_open"], bool) for r in fridge)
    assert all(round(r["temperature_c"], 1) == r["temperature_c"] for r in fridge)


def test_the_same_seed_gives_the_same_readings():
    first = run(SensorSimulator(SENSORS, start_ts=T0, seed=9), 600)
    second = run(SensorSimulator(SENSORS, start_ts=T0, seed=9), 600)
    other = run(SensorSimulator(SENSORS, start_ts=T0, seed=10), 600)
    assert first == second
    assert first != other


def test_restart_moves_the_schedule():
    simulator = SensorSimulator(SENSORS, start_ts=T0, seed=1)
    simulator.restart(T0 + 1000)
    assert simulator.due(T0 + 999) == []
    assert len(simulator.due(T0 + 1010)) == 3


def test_the_failing_fridge_warns_then_goes_critical_then_resolves_after_repair():
    failure = Failure("fridge-1", start_after_s=30, repair_after_s=300)
    simulator = SensorSimulator(SENSORS, start_ts=T0, seed=5, failure=failure)
    readings = run(simulator, 15 * 60)
    fridge = by_sensor(readings, "fridge-1")
    assert max(r["temperature_c"] for r in fridge) >= 12.0
    [incident] = rules.evaluate(to_rules(fridge), DEMO_VACCINE)
    assert incident.kind == rules.TEMPERATURE_HIGH
    assert incident.severity == rules.CRITICAL
    assert incident.resolved_at is not None
    assert 90 <= incident.alarmed_at - T0 <= 150, "the warning shows about two minutes in"
    assert incident.resolved_at - T0 <= 9 * 60, "repaired, it clears well within the demo"
    monitor = rules.SensorMonitor(DEMO_VACCINE)
    severities = []
    for reading in to_rules(fridge):
        severities += [i.severity for i in monitor.feed(reading) if i.resolved_at is None]
    assert severities[0] == rules.WARNING
    assert severities[-1] == rules.CRITICAL
    for serial, limits in (("freezer-1", FREEZER), ("blood-1", BLOOD)):
        assert rules.evaluate(to_rules(by_sensor(readings, serial)), limits) == []


def test_the_drift_is_gradual_not_a_sensor_fault():
    failure = Failure("fridge-1", start_after_s=0, repair_after_s=600)
    readings = run(SensorSimulator(SENSORS[:1], start_ts=T0, seed=2, failure=failure), 900)
    kinds = {i.kind for i in rules.evaluate(to_rules(readings), DEMO_VACCINE)}
    assert rules.SENSOR_FAULT not in kinds


def test_failure_offset_rises_holds_and_falls():
    failure = Failure("x", start_after_s=60, warming_c_per_min=3, peak_c=12.5, repair_after_s=300)
    assert failure.offset_c(30, 4.5) == 0.0
    assert failure.offset_c(120, 4.5) == pytest.approx(3.0)
    assert failure.offset_c(350, 4.5) == pytest.approx(8.0)
    assert failure.offset_c(60 + 300 + 60, 4.5) == pytest.approx(5.0)
    assert failure.offset_c(60 + 300 + 600, 4.5) == 0.0


def test_a_refrigerator_on_a_blood_bank_profile_behaves_like_a_blood_bank():
    assert climate_for("refrigerator", "blood-bank-refrigerator-demo") == "blood-bank"
    assert climate_for("refrigerator", "vaccine-refrigerator") == "refrigerator"
    assert climate_for("freezer", "vaccine-freezer") == "freezer"
    assert climate_for("something-new") == "refrigerator"
