"""The cold-chain benchmark's probes (bench.coldchaingen): the reading they mark as completing an
alarm condition is the one at which the rule engine raises the alert, once per excursion."""

import random

from bench.coldchaingen import completes, excursion_plan, reading_value
from environment import rules

CONFIG = {
    "interval_s": 10.0,
    "alarm_delay_s": 20.0,
    "excursion_one_in": 10,
    "excursion_every_s": 120.0,
    "excursion_readings": 4,
}
LIMITS = rules.Limits(
    2.0, 8.0, 0.0, 10.0, alarm_delay_s=20, clear_hysteresis_s=20, expected_interval_s=10
)


def probe(index: int, steps: int):
    rng = random.Random(index)
    start = 1_795_000_000.0 + index * 0.05
    offset = excursion_plan(index, CONFIG)
    for step in range(steps):
        ts = start + step * CONFIG["interval_s"]
        temperature, step = reading_value(ts, start, offset, CONFIG, rng)
        yield ts, temperature, completes(step, CONFIG)


def test_one_sensor_in_ten_has_excursions():
    assert [excursion_plan(i, CONFIG) is not None for i in range(20)].count(True) == 2


def test_the_marked_reading_is_the_one_that_raises_each_alert():
    for index in (0, 10, 20, 1990):
        monitor = rules.SensorMonitor(LIMITS)
        raised, marked = [], []
        for ts, temperature, completing in probe(index, 120):
            if completing:
                marked.append(ts)
            for incident in monitor.feed(rules.Reading(ts=ts, temperature_c=temperature)):
                if incident.alarmed_at == ts and incident.kind == rules.TEMPERATURE_HIGH:
                    raised.append(ts)
                assert incident.kind == rules.TEMPERATURE_HIGH, "no fault, no other kind"
        assert len(marked) >= 9, "about one excursion every two minutes"
        assert raised == marked


def test_steady_sensors_never_alert():
    readings = [rules.Reading(ts=ts, temperature_c=t) for ts, t, _ in probe(3, 200)]
    assert rules.evaluate(readings, LIMITS) == []
