"""The late allowance a shard learns from how late its readings arrive (tracking.lateness)."""

import pytest

from tracking.lateness import HoldPolicy, LatenessWindow

POLICY = HoldPolicy(ceiling_s=0.5, floor_s=0.1, window_s=30.0)
T0 = 1_795_000_000.0


def watched(arrivals, policy=POLICY):
    """A window that saw `arrivals` [(wall time, lateness)]."""
    window = LatenessWindow()
    for now, lateness in arrivals:
        window.observe(now, lateness, policy)
    return window


def prompt_for(seconds, start=T0, lateness=0.01):
    return [(start + i * 0.5, lateness) for i in range(int(seconds * 2) + 1)]


def test_a_new_shard_holds_for_the_ceiling_until_it_has_watched_a_whole_window():
    window = watched(prompt_for(29))
    assert window.hold_s(T0 + 29, POLICY) == 0.5
    window.observe(T0 + 30, 0.01, POLICY)
    assert window.hold_s(T0 + 30, POLICY) == pytest.approx(0.1)


def test_prompt_scanners_get_the_floor():
    assert watched(prompt_for(40)).hold_s(T0 + 40, POLICY) == pytest.approx(0.1)


def test_the_hold_covers_the_latest_arrival_in_the_window_with_a_margin():
    window = watched([*prompt_for(40), (T0 + 40, 0.2)])
    assert window.hold_s(T0 + 40, POLICY) == pytest.approx(0.2 * 1.5 + 0.05)


def test_the_hold_never_exceeds_the_ceiling():
    window = watched([*prompt_for(40), (T0 + 40, 0.45)])
    assert window.hold_s(T0 + 40, POLICY) == 0.5


def test_a_late_arrival_is_forgotten_once_it_leaves_the_window():
    window = watched([*prompt_for(40), (T0 + 40, 0.3), *prompt_for(20, start=T0 + 40.5)])
    assert window.hold_s(T0 + 60.5, POLICY) == pytest.approx(0.3 * 1.5 + 0.05)
    for now, lateness in prompt_for(20, start=T0 + 61):
        window.observe(now, lateness, POLICY)
    assert window.hold_s(T0 + 81, POLICY) == pytest.approx(0.1)


def test_arrivals_later_than_the_ceiling_do_not_hold_everyone_else_back():
    """A scanner whose clock is behind, or a spool flushed after an outage: no hold allowed
    would order those readings, so they must not cost every prompt reading the ceiling."""
    window = watched([*prompt_for(40), (T0 + 40, 3.0), (T0 + 40, 600.0)])
    assert window.hold_s(T0 + 40, POLICY) == pytest.approx(0.1)


def test_readings_ahead_of_the_newest_count_as_prompt():
    window = watched([*prompt_for(40), (T0 + 40, -0.4)])
    assert window.hold_s(T0 + 40, POLICY) == pytest.approx(0.1)


def test_after_a_pause_longer_than_the_window_it_learns_again():
    window = watched(prompt_for(40))
    window.observe(T0 + 200, 0.01, POLICY)
    assert window.hold_s(T0 + 200, POLICY) == 0.5
    for now, lateness in prompt_for(30, start=T0 + 200):
        window.observe(now, lateness, POLICY)
    assert window.hold_s(T0 + 230, POLICY) == pytest.approx(0.1)


def test_a_floor_equal_to_the_ceiling_is_a_fixed_hold():
    fixed = HoldPolicy(ceiling_s=0.5, floor_s=0.5, window_s=30.0)
    window = watched(prompt_for(40), policy=fixed)
    assert window.hold_s(T0 + 40, fixed) == 0.5
    assert window.to_json() == [None, []]


def test_the_window_survives_its_stored_form():
    window = watched([*prompt_for(40), (T0 + 39, 0.2)])
    restored = LatenessWindow.from_json(window.to_json())
    assert restored == window
    assert restored.hold_s(T0 + 40, POLICY) == window.hold_s(T0 + 40, POLICY)


@pytest.mark.parametrize("stored", [None, "x", [1], [None, [["a", 1]]], {"since": 1}])
def test_an_unreadable_stored_window_starts_again_at_the_ceiling(stored):
    window = LatenessWindow.from_json(stored)
    assert window == LatenessWindow()
    assert window.hold_s(T0, POLICY) == 0.5
