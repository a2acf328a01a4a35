"""LocalizationEngine behaviour: answers, hysteresis, determinism, state, bounded memory."""

import dataclasses
import itertools
import json
import math

import pytest
from conftest import model_rssi, readings_for

from tracking.localization import EngineConfig, LocalizationEngine, Reading
from tracking.localization.engine import PACKED_STATE_VERSION, PackedState
from tracking.localization.model import ScannerSpec

TAG = "mac:AA:BB:CC:DD:EE:01"


def run(engine, readings):
    estimates = []
    for reading in readings:
        estimates += engine.process(reading)
    return estimates + engine.flush(readings[-1].ts if readings else None)


def test_a_tag_beside_one_scanner_is_placed_in_its_room(two_rooms):
    engine = LocalizationEngine(two_rooms)
    estimates = run(engine, readings_for(two_rooms, TAG, 2.0, 2.5, "L1", 10))
    last = estimates[-1]
    assert (last.floor, last.zone) == ("L1", "A")
    assert math.dist((last.x, last.y), (2.0, 2.5)) < 1.5
    assert 0 < last.accuracy_m < 5


def test_one_scanner_gives_a_position_near_it_with_a_large_uncertainty(two_rooms):
    engine = LocalizationEngine(two_rooms)
    scanner = two_rooms.scanners[0]
    readings = [Reading(1000.0 + k, "sa", TAG, round(model_rssi(scanner, 1, 1))) for k in range(5)]
    last = run(engine, readings)[-1]
    assert last.zone == "A"
    assert math.dist((last.x, last.y), (2.5, 2.5)) < 1.0
    assert last.accuracy_m >= 3.0
    assert last.scanners_used == 1


def test_two_scanners_put_the_tag_between_them_nearer_the_louder(two_rooms):
    engine = LocalizationEngine(two_rooms)
    last = run(engine, readings_for(two_rooms, TAG, 3.5, 2.5, "L1", 10))[-1]
    assert 2.0 <= last.x <= 5.0
    assert last.zone == "A"
    assert last.scanners_used == 2


def test_a_tag_on_the_doorway_does_not_flicker_between_rooms(two_rooms):
    """On the shared wall both rooms hear it alike; noise alone must not flip the room."""
    engine = LocalizationEngine(two_rooms)

    def noise(k, i):
        return 3.0 * math.sin(1.7 * k + 2.1 * i) + 2.0 * math.cos(0.9 * k * (i + 1))

    estimates = run(engine, readings_for(two_rooms, TAG, 5.0, 2.5, "L1", 120, noise=noise))
    zones = [e.zone for e in estimates]
    changes = sum(1 for a, b in itertools.pairwise(zones) if a != b)
    assert changes <= 1
    assert all(4.0 <= e.x <= 6.0 for e in estimates[5:])


def test_a_tag_that_really_moves_changes_room(two_rooms):
    engine = LocalizationEngine(two_rooms)
    readings = readings_for(two_rooms, TAG, 1.5, 2.5, "L1", 20)
    readings += readings_for(two_rooms, TAG, 8.5, 2.5, "L1", 20, start=1020.0)
    estimates = run(engine, readings)
    assert estimates[0].zone == "A"
    assert estimates[-1].zone == "B"


def test_floor_choice_resists_a_single_loud_reading_from_another_floor(two_floors):
    engine = LocalizationEngine(two_floors)
    readings = readings_for(two_floors, TAG, 10, 5, "L1", 10)
    spike = Reading(readings[-1].ts + 0.01, "s20", TAG, -40.0)
    estimates = run(engine, [*readings, spike])
    assert {e.floor for e in estimates} == {"L1"}


def test_floor_changes_when_the_tag_really_moves_floor(two_floors):
    engine = LocalizationEngine(two_floors)
    readings = readings_for(two_floors, TAG, 10, 5, "L1", 10)
    readings += readings_for(two_floors, TAG, 10, 5, "L2", 20, start=1010.0)
    estimates = run(engine, readings)
    assert estimates[0].floor == "L1"
    assert estimates[-1].floor == "L2"


def test_same_readings_give_identical_estimates(two_rooms):
    def noise(k, i):
        return 4.0 * math.sin(3.3 * k + i)

    readings = readings_for(two_rooms, TAG, 3.0, 2.0, "L1", 30, noise=noise)
    first = run(LocalizationEngine(two_rooms), readings)
    second = run(LocalizationEngine(two_rooms), readings)
    assert first == second


def test_state_round_trips_through_json(two_rooms):
    readings = readings_for(two_rooms, TAG, 3.0, 2.0, "L1", 20)
    reference = LocalizationEngine(two_rooms)
    expected = run(reference, readings)
    engine = LocalizationEngine(two_rooms)
    moved = []
    for i, reading in enumerate(readings):
        moved += engine.process(reading)
        if i % 7 == 0:  # as a Celery worker would: state to Redis and back, in a fresh engine
            state = json.loads(json.dumps(engine.export_state(TAG)))
            calibration = engine.export_calibration()
            engine = LocalizationEngine(two_rooms)
            engine.import_calibration(calibration)
            engine.import_state(TAG, state)
    moved += engine.flush(readings[-1].ts)
    assert moved == expected


def test_packed_state_round_trips_through_json_with_the_same_estimates(two_rooms):
    readings = readings_for(two_rooms, TAG, 3.0, 2.0, "L1", 20, noise=_jitter)
    expected = run(LocalizationEngine(two_rooms), readings)
    engine = LocalizationEngine(two_rooms)
    moved = []
    for i, reading in enumerate(readings):
        moved += engine.process(reading)
        if i % 7 == 0:
            packed = json.loads(json.dumps(engine.export_packed(TAG)))
            by_name = LocalizationEngine(two_rooms)
            by_name.import_state(TAG, json.loads(json.dumps(engine.export_state(TAG))))
            engine = LocalizationEngine(two_rooms)
            engine.import_packed(TAG, packed)
            assert engine.export_state(TAG) == by_name.export_state(TAG)
    moved += engine.flush(readings[-1].ts)
    assert moved == expected


def test_a_packed_state_is_the_named_one_by_the_packing_engines_layout(two_floors):
    engine = LocalizationEngine(two_floors, EngineConfig(quiet_solve_max_s=6.0))
    run(engine, readings_for(two_floors, TAG, 4.0, 3.0, "L2", 20, noise=_jitter))
    packed = json.loads(json.dumps(engine.export_packed(TAG)))
    named = json.loads(json.dumps(engine.export_state(TAG)))
    assert named["floor"] == "L2"
    assert named["solved_rssi"]
    assert LocalizationEngine.unpack_named(packed, engine.layout) == named


def test_a_state_packed_before_the_site_changed_is_read_through_the_old_layout(two_rooms):
    """A scanner added in front shifts every index; the old layout maps them back by name."""
    engine = LocalizationEngine(two_rooms)
    run(engine, readings_for(two_rooms, TAG, 7.0, 2.5, "L1", 10))
    packed = json.loads(json.dumps(engine.export_packed(TAG)))
    grown = dataclasses.replace(
        two_rooms,
        scanners=(ScannerSpec("new", "L1", 5.0, 4.5), *two_rooms.scanners),
    )
    edited = LocalizationEngine(grown)
    assert edited.layout_key != engine.layout_key
    with pytest.raises(ValueError, match="unknown layout"):
        edited.import_packed(TAG, packed)
    edited.import_packed(TAG, packed, layout=json.loads(json.dumps(engine.layout)))
    by_name = LocalizationEngine(grown)
    by_name.import_state(TAG, json.loads(json.dumps(engine.export_state(TAG))))
    assert edited.export_state(TAG) == by_name.export_state(TAG)
    assert set(edited.export_state(TAG)["rssi"]) == {"sa", "sb"}


def test_a_packed_state_lists_its_fields_in_packed_states_order(two_floors):
    engine = LocalizationEngine(two_floors, EngineConfig(quiet_solve_max_s=6.0))
    run(engine, readings_for(two_floors, TAG, 4.0, 3.0, "L2", 20, noise=_jitter))
    state = engine.tags[TAG]
    fields = PackedState(*engine.export_packed(TAG))
    assert (fields.version, fields.layout_key) == (PACKED_STATE_VERSION, engine.layout_key)
    for name in PackedState._fields[2:]:
        if name in ("zone_posterior", "rssi", "solved_rssi"):
            continue
        assert getattr(fields, name) == getattr(state, name), name
    assert dict(fields.zone_posterior) == state.zone_posterior
    assert {index: values for index, *values in fields.rssi} == state.rssi
    assert dict(fields.solved_rssi) == state.solved_rssi


def test_a_packed_state_of_another_version_is_refused():
    with pytest.raises(ValueError, match="version 2"):
        LocalizationEngine.packed_layout_key([2, "0123456789abcdef"])


def test_tags_never_heard_have_no_state_and_no_estimates(two_rooms):
    engine = LocalizationEngine(two_rooms)
    assert engine.flush() == []
    assert engine.export_state(TAG) is None
    assert engine.export_packed(TAG) is None
    assert engine.process(Reading(1.0, "no-such-scanner", TAG, -60)) == []
    assert engine.unknown_scanner_readings == 1
    assert engine.tags == {}


def test_a_tag_heard_once_gets_an_estimate_at_flush(two_rooms):
    engine = LocalizationEngine(two_rooms)
    assert engine.process(Reading(5.0, "sb", TAG, -62)) == []
    [estimate] = engine.flush()
    assert (estimate.ts, estimate.tag, estimate.zone) == (5.0, TAG, "B")


def test_stale_scanners_are_forgotten(two_rooms):
    engine = LocalizationEngine(two_rooms, EngineConfig(stale_after_s=5.0))
    engine.process(Reading(0.0, "sa", TAG, -60))
    engine.process(Reading(100.0, "sb", TAG, -60))
    engine.process(Reading(101.5, "sb", TAG, -60))
    assert set(engine.export_state(TAG)["rssi"]) == {"sb"}


def test_mobility_class_comes_from_the_callback(two_rooms):
    engine = LocalizationEngine(two_rooms, mobility_for_tag=lambda tag: "roaming")
    engine.process(Reading(0.0, "sa", TAG, -60))
    assert engine.export_state(TAG)["mobility"] == "roaming"
    engine = LocalizationEngine(two_rooms, mobility_for_tag=lambda tag: "no-such-class")
    engine.process(Reading(0.0, "sa", TAG, -60))
    assert engine.export_state(TAG)["mobility"] == EngineConfig().default_mobility


def test_self_calibration_learns_a_scanner_that_reads_low(two_floors):
    engine = LocalizationEngine(two_floors, EngineConfig(stale_after_s=3.0))
    readings = []
    for n, (x, y) in enumerate([(6, 4), (12, 6), (9, 3), (14, 5), (5, 6), (10, 5)]):
        tag = f"mac:AA:BB:CC:DD:EE:{n:02X}"
        for reading in readings_for(two_floors, tag, x, y, "L1", 60):
            low = reading.scanner == "s10"
            readings.append(reading._replace(rssi=reading.rssi - 6) if low else reading)
    readings.sort(key=lambda r: (r.ts, r.tag))
    run(engine, readings)
    offsets = engine.calibration_offsets()
    assert offsets["s10"] < -1.0
    assert all(offsets[s] > -0.5 for s in ("s11", "s12", "s13"))


def test_without_self_calibration_offsets_stay_nominal(two_floors):
    engine = LocalizationEngine(two_floors, EngineConfig(self_calibration=False))
    run(engine, readings_for(two_floors, TAG, 6, 4, "L1", 20))
    assert set(engine.calibration_offsets().values()) == {0.0}
    assert engine.export_calibration()["scanners"] == {}


def test_floor_follows_a_lift_ride_within_a_few_seconds(two_floors):
    """Overwhelming evidence (the old floor's scanners now 18 dB down) switches within a few
    solves, without waiting for the old floor's lingering smoothed values to expire."""
    engine = LocalizationEngine(two_floors)
    readings = readings_for(two_floors, TAG, 10, 5, "L1", 30)
    readings += readings_for(two_floors, TAG, 10, 5, "L2", 20, start=1030.0)
    estimates = run(engine, readings)
    on_l2 = [e.ts for e in estimates if e.floor == "L2"]
    assert on_l2
    assert min(on_l2) <= 1030.0 + 6.0
    assert all(e.floor == "L2" for e in estimates if e.ts >= min(on_l2))


def test_direct_evidence_favours_the_room_whose_scanner_hears_loudest(two_rooms):
    """The scanner of a room heard loudest (no wall between) is evidence for that room."""
    engine = LocalizationEngine(two_rooms)
    floor = engine.floors[0]
    a, b = floor.zone_index["A"], floor.zone_index["B"]
    sa = 0  # local index of scanner "sa", mounted in A
    assert floor.direct_table[sa][a] > floor.direct_table[sa][b]
    estimates = run(engine, readings_for(two_rooms, TAG, 4.0, 2.5, "L1", 10))
    assert estimates[-1].zone == "A"


def _estimates_per_tag(engine, readings):
    return [e for e in run(engine, readings) if e.tag == TAG]


def _jitter(k, i):
    return 2.0 * math.sin(1.3 * k + 0.7 * i)


def test_a_parked_tag_whose_radio_does_not_change_is_solved_rarely_but_regularly(two_rooms):
    still = EngineConfig(self_calibration=False, quiet_solve_max_s=6.0)
    readings = readings_for(two_rooms, TAG, 2.0, 2.5, "L1", 60, noise=_jitter)
    every_interval = _estimates_per_tag(
        LocalizationEngine(two_rooms, dataclasses.replace(still, quiet_solve_max_s=0)), readings
    )
    quiet = _estimates_per_tag(LocalizationEngine(two_rooms, still), readings)
    assert len(quiet) * 2 <= len(every_interval)
    gaps = [b.ts - a.ts for a, b in itertools.pairwise(quiet)]
    assert max(gaps) <= still.quiet_solve_max_s + still.solve_interval_still_s
    assert {e.zone for e in quiet} == {"A"}
    assert math.dist((quiet[-1].x, quiet[-1].y), (every_interval[-1].x, every_interval[-1].y)) < 1


def test_a_tag_that_moves_is_solved_on_every_interval_again(two_rooms):
    config = EngineConfig(self_calibration=False, quiet_solve_max_s=6.0)
    engine = LocalizationEngine(two_rooms, config)
    parked = readings_for(two_rooms, TAG, 2.0, 2.5, "L1", 30, noise=_jitter)
    moved = readings_for(two_rooms, TAG, 8.0, 2.5, "L1", 10, start=1030.0, noise=_jitter)
    run(engine, parked)
    after_move = _estimates_per_tag(engine, moved)
    assert len(after_move) >= 10 / config.solve_interval_still_s - 1
    assert after_move[-1].zone == "B"


def test_quiet_solving_survives_the_state_round_trip(two_rooms):
    quiet = EngineConfig(self_calibration=False, quiet_solve_max_s=6.0)
    engine = LocalizationEngine(two_rooms, quiet)
    run(engine, readings_for(two_rooms, TAG, 2.0, 2.5, "L1", 10, noise=_jitter))
    exported = json.loads(json.dumps(engine.export_state(TAG)))
    assert exported["solved_rssi"]
    restored = LocalizationEngine(two_rooms, quiet)
    restored.import_state(TAG, exported)
    assert restored.export_state(TAG) == exported


def test_without_quiet_solving_a_state_carries_no_solve_snapshot(two_rooms):
    engine = LocalizationEngine(two_rooms, EngineConfig(self_calibration=False))
    assert engine.config.quiet_solve_max_s == 0  # off unless asked for
    readings = readings_for(two_rooms, TAG, 2.0, 2.5, "L1", 30, noise=_jitter)
    run(engine, readings[:10])
    exported = json.loads(json.dumps(engine.export_state(TAG)))
    assert exported["solved_rssi"] is None
    # a worker with quiet solving turned on takes such a state over: it solves once as usual,
    # then leaves the settled tag alone
    quiet = EngineConfig(self_calibration=False, quiet_solve_max_s=6.0)
    restored = LocalizationEngine(two_rooms, quiet)
    restored.import_state(TAG, exported)
    every_interval = LocalizationEngine(two_rooms, EngineConfig(self_calibration=False))
    every_interval.import_state(TAG, exported)
    assert len(run(restored, readings[10:])) < len(run(every_interval, readings[10:]))
