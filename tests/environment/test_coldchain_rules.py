"""The rule engine on its own: plain Python, fake readings, event time in seconds."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from environment import rules
from environment.rules import Limits, Reading, SensorMonitor, evaluate

FRIDGE = Limits(
    temperature_min_c=2.0,
    temperature_max_c=8.0,
    temperature_critical_min_c=0.0,
    temperature_critical_max_c=10.0,
    alarm_delay_s=600,
    clear_hysteresis_s=600,
    door_open_max_s=300,
    expected_interval_s=60,
)


def series(values, step=60.0, start=0.0, **extra):
    return [Reading(ts=start + i * step, temperature_c=v, **extra) for i, v in enumerate(values)]


def kinds(incidents):
    return [(i.kind, i.severity) for i in incidents]


def test_in_range_data_never_alerts():
    assert evaluate(series([4.0, 5.5, 7.9, 2.1, 3.0] * 20), FRIDGE) == []


def test_short_excursion_within_the_alarm_delay_rides_through():
    # a door opening: 9 minutes above 8 °C, then back
    values = [5.0] + [9.5] * 10 + [5.0] * 5  # 9.5 from t=60 to t=600, i.e. 540 s
    assert evaluate(series(values), FRIDGE) == []


def test_excursion_longer_than_the_delay_raises_one_incident_updated_in_place():
    values = [5.0] + [9.0] * 30 + [5.0] * 20
    incidents = evaluate(series(values), FRIDGE)
    assert kinds(incidents) == [(rules.TEMPERATURE_HIGH, rules.WARNING)]
    incident = incidents[0]
    assert incident.started_at == 60.0
    assert incident.alarmed_at == 660.0
    assert incident.peak == 9.0
    assert incident.ended_at == 31 * 60.0
    assert incident.resolved_at == 31 * 60.0 + 600


def test_warning_escalates_to_critical_in_place_after_the_delay_at_critical():
    values = [5.0] + [9.0] * 12 + [11.0] * 12 + [5.0] * 12
    monitor = SensorMonitor(FRIDGE)
    opened = []
    for reading in series(values):
        for incident in monitor.feed(reading):
            opened.append((incident.started_at, incident.severity))
    assert {start for start, _ in opened} == {60.0}
    assert opened[0][1] == rules.WARNING
    assert (60.0, rules.CRITICAL) in opened
    incident = evaluate(series(values), FRIDGE)[0]
    assert incident.severity == rules.CRITICAL
    assert incident.peak == 11.0


def test_low_excursion_and_critical_low():
    incidents = evaluate(series([4.0] + [-1.0] * 15 + [4.0] * 12), FRIDGE)
    assert kinds(incidents) == [(rules.TEMPERATURE_LOW, rules.CRITICAL)]
    assert incidents[0].peak == -1.0


def test_clears_only_after_the_hysteresis_and_a_relapse_keeps_the_same_incident():
    values = [9.0] * 12 + [5.0] * 5 + [9.0] * 3 + [5.0] * 11
    incidents = evaluate(series(values), FRIDGE)
    assert len(incidents) == 1
    incident = incidents[0]
    assert incident.ended_at == 20 * 60.0
    assert incident.resolved_at == 30 * 60.0


def test_door_open_too_long():
    readings = [Reading(ts=i * 60.0, door_open=i in range(2, 9)) for i in range(12)]
    incidents = evaluate(readings, FRIDGE)
    assert kinds(incidents) == [(rules.DOOR_OPEN, rules.WARNING)]
    assert incidents[0].started_at == 120.0
    assert incidents[0].alarmed_at == 420.0
    assert incidents[0].resolved_at == 540.0
    assert incidents[0].peak == 360.0


def test_short_door_openings_do_not_alert():
    readings = [Reading(ts=i * 60.0, door_open=i % 3 == 0) for i in range(30)]
    assert evaluate(readings, FRIDGE) == []


def test_low_battery_warning_critical_and_margin_to_clear():
    levels = [50, 21, 19, 18, 9, 22, 24, 26, 30]
    readings = [Reading(ts=i * 60.0, battery_pct=b) for i, b in enumerate(levels)]
    incidents = evaluate(readings, FRIDGE)
    assert kinds(incidents) == [(rules.LOW_BATTERY, rules.CRITICAL)]
    assert incidents[0].started_at == 120.0
    assert incidents[0].resolved_at == 7 * 60.0  # 22 and 24 are inside the 5 % margin
    assert incidents[0].peak == 9


@pytest.mark.parametrize("bad", [-127.0, 85.5, 150.0])
def test_probe_error_codes_are_sensor_faults_not_excursions(bad):
    incidents = evaluate(series([5.0, 5.1, bad, bad, bad, 5.0] + [5.0] * 12), FRIDGE)
    assert kinds(incidents) == [(rules.SENSOR_FAULT, rules.WARNING)]


def test_impossible_jump_is_a_sensor_fault():
    readings = [Reading(0, 5.0), Reading(10, 25.0), Reading(20, 5.0)]
    incidents = evaluate(readings, FRIDGE)
    assert [i.kind for i in incidents] == [rules.SENSOR_FAULT]
    assert incidents[0].peak == 25.0


def test_humidity_limits():
    room = Limits(humidity_min_pct=20, humidity_max_pct=60, alarm_delay_s=300)
    readings = [Reading(ts=i * 60.0, humidity_pct=75.0) for i in range(10)]
    assert kinds(evaluate(readings, room)) == [(rules.HUMIDITY_HIGH, rules.WARNING)]


def test_monitor_state_round_trips_through_json():
    import json

    values = [5.0] + [9.0] * 15 + [5.0] * 4
    whole = SensorMonitor(FRIDGE)
    for reading in series(values):
        whole.feed(reading)
    half = SensorMonitor(FRIDGE)
    readings = series(values)
    for reading in readings[:10]:
        half.feed(reading)
    resumed = SensorMonitor(FRIDGE, json.loads(json.dumps(half.state())))
    for reading in readings[10:]:
        resumed.feed(reading)
    assert resumed.state() == whole.state()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([5.0, 9.0, 11.0, 1.0, 85.0]), max_size=40))
def test_monitor_state_is_every_field_of_every_machine(values):
    """The saved state is the machines' fields as `dataclasses.asdict` gives them, incidents
    included, and nothing shares memory with the live monitor."""
    from dataclasses import asdict

    monitor = SensorMonitor(FRIDGE)
    for reading in series(values, battery_pct=15.0, door_open=True):
        monitor.feed(reading)
    state = monitor.state()
    assert state["machines"] == {kind: asdict(m) for kind, m in monitor.machines.items()}
    for kind, machine in monitor.machines.items():
        if machine.incident is not None:
            state["machines"][kind]["incident"]["peak"] = "changed"
            assert machine.incident.peak != "changed"


def test_feeding_out_of_order_is_refused():
    monitor = SensorMonitor(FRIDGE)
    monitor.feed(Reading(100, 5.0))
    with pytest.raises(ValueError, match="increasing ts"):
        monitor.feed(Reading(50, 5.0))


def test_offline_is_judged_on_receipt_time():
    assert not rules.is_offline(None, 10_000, FRIDGE)
    assert not rules.is_offline(1000, 1000 + 179, FRIDGE)
    assert rules.is_offline(1000, 1000 + 180, FRIDGE)


# --- the live path: late data, replay and reconciliation with alert rows -------------------


class AlertBook:
    """An in-memory stand-in for alert rows, driven only by `rules.reconcile` actions."""

    def __init__(self):
        self.alerts = {}
        self.next_id = 1

    def views(self):
        return [
            rules.AlertView(
                a["id"], a["kind"], a["started_at"], a["ended_at"], a["resolved"] is not None
            )
            for a in self.alerts.values()
        ]

    def apply(self, actions):
        for action in actions:
            inc = action.incident
            if action.op == "open":
                self.alerts[self.next_id] = {
                    "id": self.next_id,
                    "kind": inc.kind,
                    "started_at": inc.started_at,
                    "ended_at": inc.ended_at,
                    "severity": inc.severity,
                    "resolved": "auto" if inc.resolved_at is not None else None,
                }
                self.next_id += 1
            elif action.op == "update":
                alert = self.alerts[action.alert_id]
                alert.update(started_at=inc.started_at, ended_at=inc.ended_at)
                rank = rules.SEVERITY_RANK
                if action.exact or rank[inc.severity] > rank[alert["severity"]]:
                    alert["severity"] = inc.severity
            elif action.op == "resolve":
                self.alerts[action.alert_id]["resolved"] = "auto"
            elif action.op == "withdraw":
                alert = self.alerts[action.alert_id]
                alert["resolved"] = "withdrawn"
                alert["ended_at"] = alert["ended_at"] or action.at
            elif action.op == "reopen":
                self.alerts[action.alert_id]["resolved"] = None
            elif action.op == "settle":
                self.alerts[action.alert_id]["ended_at"] = inc.ended_at

    def summary(self):
        """The alerts that stand: (kind, severity, resolved), leaving out withdrawn ones."""
        return sorted(
            (a["kind"], a["severity"], a["resolved"] is not None)
            for a in self.alerts.values()
            if a["resolved"] != "withdrawn"
        )


def run_live(batches, limits):
    """Upload batches one after the other, as the service does: store, update, reconcile."""
    stored = {}
    state = None
    book = AlertBook()
    for batch in batches:
        new = [r for r in batch if r.ts not in stored]
        for r in new:
            stored[r.ts] = r
        unresolved = [a["started_at"] for a in book.alerts.values() if not a["resolved"]]
        update = rules.update_monitor(
            limits,
            state,
            new,
            lambda start: [r for t, r in stored.items() if t >= start],
            unresolved,
        )
        state = update.state
        book.apply(rules.reconcile(update, book.views()))
    return book


def test_late_batch_revealing_a_past_excursion_opens_an_already_resolved_alert():
    values = [5.0] * 5 + [9.0] * 15 + [5.0] * 30
    readings = series(values)
    early, middle, late = readings[:5], readings[5:20], readings[20:]
    book = run_live([early, late, middle], FRIDGE)
    assert book.summary() == [(rules.TEMPERATURE_HIGH, rules.WARNING, True)]


def test_late_in_range_data_withdraws_an_alert_it_disproves():
    # the gap made the fridge look warm for 12 minutes; the late readings show two short bumps
    readings = series([5.0] + [9.0] * 14 + [5.0] * 3)
    on_time = [r for i, r in enumerate(readings) if i not in (7, 8)]
    late = [Reading(7 * 60.0, 5.0), Reading(8 * 60.0, 5.0)]
    book = run_live([on_time], FRIDGE)
    assert book.summary() == [(rules.TEMPERATURE_HIGH, rules.WARNING, False)]
    book = run_live([on_time, late], FRIDGE)
    assert book.summary() == []
    assert [a["resolved"] for a in book.alerts.values()] == ["withdrawn"]


# --- properties ------------------------------------------------------------------------------

QUICK = FRIDGE.__class__(**{**FRIDGE.__dict__, "alarm_delay_s": 300, "clear_hysteresis_s": 300})
temperatures = st.lists(
    st.one_of(st.floats(2.5, 7.5), st.floats(8.5, 9.5), st.floats(10.5, 12.0)),
    min_size=1,
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(2.0, 8.0), min_size=1, max_size=200))
def test_property_in_range_data_never_alerts(values):
    assert evaluate(series(values), FRIDGE) == []


@settings(max_examples=200, deadline=None)
@given(
    before=st.integers(1, 20),
    length=st.integers(1, 40),
    value=st.floats(8.01, 9.99),
    after=st.integers(0, 20),
)
def test_property_an_excursion_longer_than_the_delay_raises_exactly_one_incident(
    before, length, value, after
):
    values = [5.0] * before + [value] * length + [5.0] * after
    incidents = evaluate(series(values), FRIDGE)
    lasted = (length - 1) * 60.0
    if lasted >= FRIDGE.alarm_delay_s:
        assert kinds(incidents) == [(rules.TEMPERATURE_HIGH, rules.WARNING)]
    else:
        assert incidents == []


@settings(max_examples=200, deadline=None)
@given(temperatures)
def test_property_alerts_clear_only_after_the_hysteresis_time(values):
    readings = series(values)
    for incident in evaluate(readings, QUICK):
        if incident.resolved_at is None:
            continue
        assert incident.resolved_at - incident.ended_at >= QUICK.clear_hysteresis_s
        calm = [r for r in readings if incident.ended_at <= r.ts <= incident.resolved_at]
        assert all(2.0 <= r.temperature_c <= 8.0 for r in calm)


@settings(max_examples=300, deadline=None)
@given(temperatures, st.randoms(use_true_random=False), st.integers(1, 6))
def test_property_out_of_order_arrival_gives_the_same_alerts_as_in_order(values, rnd, parts):
    readings = series(values)
    in_order = run_live([readings], QUICK).summary()
    shuffled = list(readings)
    rnd.shuffle(shuffled)
    cuts = sorted(set(rnd.sample(range(1, len(shuffled)), min(parts, len(shuffled) - 1))))
    batches = [shuffled[a:b] for a, b in zip([0, *cuts], [*cuts, len(shuffled)], strict=True)]
    assert run_live(batches, QUICK).summary() == in_order
