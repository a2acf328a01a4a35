"""The cold-chain benchmark's alert accounting (bench.coldchain.account_alerts): which alerts the
stored readings call for, when each became due, and why one did not reach the console."""

from hypothesis import given, settings
from hypothesis import strategies as st

from bench import coldchain
from bench.coldchain import account_alerts, completions, incidents
from environment import rules

LIMITS = {
    "max_c": 8.0,
    "delay_s": 20.0,
    "hysteresis_s": 20.0,
    "interval_s": 10.0,
    "excursion_readings": 4,
}
ENGINE = rules.Limits(
    2.0, 8.0, 0.0, 10.0, alarm_delay_s=20, clear_hysteresis_s=20, expected_interval_s=10
)
T0 = 1_795_000_000.0
WINDOW = (T0, T0 + 1000)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([5.5, 9.0, 9.3]), st.integers(1, 3)), max_size=60))
def test_the_independent_rules_give_the_engines_incidents(steps):
    """The benchmark's own reading of the documented rules agrees with the product's engine on
    the benchmark's kind of data (in range or a little above, irregular gaps)."""
    points, ts = [], T0
    for temperature, gap in steps:
        ts += 10.0 * gap
        points.append((ts, temperature))
    ours = incidents(points, 8.0, 20.0, 20.0)
    engine = rules.evaluate([rules.Reading(ts=t, temperature_c=v) for t, v in points], ENGINE)
    assert [(i["start"], i["alarm"], i["end"]) for i in ours] == [
        (i.started_at, i.alarmed_at, i.ended_at) for i in engine
    ]


def row(pk, step, temperature, received=None):
    ts = T0 + 10.0 * step
    return (pk, ts, temperature, received if received is not None else ts + 0.1)


def test_the_reading_that_completes_is_the_last_needed_to_arrive():
    in_order = [row(1, 0, 5.5), row(2, 1, 9.0), row(3, 2, 9.0), row(4, 3, 9.0)]
    found = incidents([(r[1], r[2]) for r in in_order], 8.0, 20.0, 20.0)
    completions(in_order, found, 8.0, 20.0, 20.0)
    assert found[0]["completed_by"] == in_order[3]
    # The first bad reading arrives last (its request was slow): it completes the condition.
    late = [row(1, 0, 5.5), row(3, 2, 9.0), row(4, 3, 9.0), row(5, 1, 9.0, received=T0 + 60)]
    found = incidents(sorted((r[1], r[2]) for r in late), 8.0, 20.0, 20.0)
    completions(late, found, 8.0, 20.0, 20.0)
    assert found[0]["completed_by"] == late[3]


def alert(pk, step, opened, *, ended=None, withdrawn=False, sensor="s1"):
    return {
        "id": pk,
        "sensor": sensor,
        "kind": "temperature-high",
        "started_at": T0 + 10.0 * step,
        "ended_at": None if ended is None else T0 + 10.0 * ended,
        "opened_at": opened,
        "withdrawn": withdrawn,
    }


def excursion(first_pk, first_step):
    """An in-range reading, four bad ones, three in range: one incident, due at the third bad."""
    temps = [5.5, 9.0, 9.0, 9.0, 9.0, 5.5, 5.5, 5.5]
    return [row(first_pk + i, first_step + i, t) for i, t in enumerate(temps)]


def console(events, connected=((T0, None),)):
    return {
        "events": [{"event": e, "id": pk, "received": at} for e, pk, at in events],
        "stats": {"connected": [list(c) for c in connected]},
    }


def due(step):
    """When the reading at `step` was received (row's default)."""
    return T0 + 10.0 * step + 0.1


def test_each_missing_alert_gets_its_reason():
    stored = {
        "delivered": excursion(1, 0),
        "never": excursion(20, 0),
        "away": excursion(40, 0),
        "lost": excursion(60, 10),
        "late": excursion(80, 90),
    }
    alerts = [
        alert(1, 1, due(3), ended=5, sensor="delivered"),
        alert(2, 1, due(3), ended=5, sensor="away"),  # while the console reconnected
        alert(3, 11, due(13), ended=15, sensor="lost"),  # only its update reached the console
        alert(4, 91, T0 + 2000, ended=95, sensor="late"),  # raised long after
        alert(5, 50, T0 + 600, sensor="lost"),  # nothing stored calls for this one
    ]
    events = [("opened", 1, due(3) + 0.25), ("updated", 3, due(13) + 0.3)]
    result = account_alerts(
        window=WINDOW,
        console_end=T0 + 1015,
        stored=stored,
        alerts=alerts,
        console=console(events, connected=[(T0, T0 + 25), (T0 + 40, None)]),
        attempts={},
        limits=LIMITS,
    )
    assert (result["alerts_expected"], result["alerts_delivered"]) == (5, 1)
    assert result["alerts_missing_by_reason"] == {
        coldchain.NEVER_RAISED: 1,
        coldchain.AFTER_WINDOW: 1,
        coldchain.WHILE_AWAY: 1,
        coldchain.NOT_DELIVERED: 1,
    }
    assert result["latency_receipt_to_ws_s"]["count"] == 1
    assert abs(result["latency_receipt_to_ws_s"]["p50"] - 0.25) < 0.002
    assert result["alerts_raised_late"]["count"] == 1
    assert result["alerts_unexpected"] == 1


def test_an_alert_that_covers_two_incidents_is_not_counted_for_both():
    stored = {"s1": excursion(1, 0) + excursion(20, 8)}
    alerts = [alert(1, 1, due(3))]
    events = [("opened", 1, due(3) + 0.1)]
    result = account_alerts(
        window=WINDOW,
        console_end=T0 + 1015,
        stored=stored,
        alerts=alerts,
        console=console(events),
        attempts={},
        limits=LIMITS,
    )
    assert result["alerts_expected"] == 2
    assert result["alerts_missing_by_reason"] == {coldchain.MERGED: 1}


def test_an_alert_the_rules_call_for_that_was_withdrawn_is_missing():
    stored = {"s1": excursion(1, 0)}
    events = [("opened", 1, due(3) + 0.1), ("withdrawn", 1, due(6))]
    result = account_alerts(
        window=WINDOW,
        console_end=T0 + 1015,
        stored=stored,
        alerts=[alert(1, 1, due(3), ended=5, withdrawn=True)],
        console=console(events),
        attempts={},
        limits=LIMITS,
    )
    assert result["alerts_missing_by_reason"] == {coldchain.WITHDRAWN: 1}
    assert result["alerts_unexpected"] == 0


def attempts_of(serial, steps_stored, first_step, onset_step):
    """The probe's attempts around one planned excursion starting at `onset_step`, and the
    stored readings: only the steps in `steps_stored` reached the server."""
    attempts, rows = [], []
    for step in range(first_step, onset_step + 8):
        ts = T0 + 10.0 * step
        excursion_step = step - onset_step if 0 <= step - onset_step < 4 else None
        temperature = 9.0 if excursion_step is not None else 5.5
        stored = step in steps_stored
        outcome = "202" if stored else "error_TimeoutError"
        attempts.append([ts, ts + 0.01, ts + 0.05 if stored else None, outcome, excursion_step])
        if stored:
            rows.append(row(100 + step, step, temperature))
    return {serial: attempts}, {serial: rows}


def test_planned_excursions_without_an_alarm_at_their_reading_are_explained():
    cases = {
        "on-plan": (set(range(20)), coldchain.AT_PLANNED),
        "first-bad-lost": (set(range(20)) - {10}, coldchain.LATE_START),
        "completing-lost": (set(range(20)) - {12}, coldchain.LATE_ALARM),
        "too-short": (set(range(20)) - {10, 11}, coldchain.TOO_SHORT),
        "continued": (set(range(20)) - {6, 7, 8, 9}, coldchain.CONTINUED),
    }
    attempts, stored = {}, {}
    for serial, (steps, _) in cases.items():
        a, s = attempts_of(serial, steps, 0, 10)
        attempts.update(a)
        stored.update(s)
    # Before "continued"'s planned excursion, one at steps 2-5 whose in-range readings were lost.
    stored["continued"] = [
        (pk, ts, 9.0 if T0 + 20 <= ts <= T0 + 50 else t, received)
        for pk, ts, t, received in stored["continued"]
    ]
    result = account_alerts(
        window=WINDOW,
        console_end=T0 + 1015,
        stored=stored,
        alerts=[],
        console=console([]),
        attempts=attempts,
        limits=LIMITS,
    )
    plans = result["planned_excursions"]
    assert plans["answered 202"] == {
        coldchain.AT_PLANNED: 1,
        coldchain.LATE_START: 1,
        coldchain.TOO_SHORT: 1,
        coldchain.CONTINUED: 1,
    }
    assert plans["not answered 2xx"] == {coldchain.LATE_ALARM: 1}
    assert result["alerts_missing_by_reason"] == {coldchain.NEVER_RAISED: 4}
