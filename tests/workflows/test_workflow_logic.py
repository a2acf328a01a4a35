"""The workflows' plain-Python decisions: zone rules, par states, geofence crossings, quiet
hours, maintenance calendars and alert levels, recall serial ranges, battery forecasts,
utilisation maths."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from workflows import forecast, geofence, rules, schedules, usage

SOILED = rules.ZoneRuleSpec(
    1, "soiled", rules.ENTER, "needs-cleaning", ("available", "in-use"), zone_kind="soiled-utility"
)
CLEAN = rules.ZoneRuleSpec(
    2, "clean", rules.ENTER, "available", ("needs-cleaning",), zone_kind="clean-utility"
)
ROOM = rules.ZoneRuleSpec(
    3, "room", rules.DWELL, "in-use", ("available",), zone_kind="room", dwell_s=1800
)


def facts(status, kind, zone=10, dwell=0.0, fired=(), type_id=1):
    return rules.AssetFacts(status, type_id, zone, kind, dwell, frozenset(fired))


def test_entering_a_soiled_room_needs_cleaning_unless_already_or_protected():
    assert rules.decide([SOILED, CLEAN], facts("in-use", "soiled-utility"), rules.ENTER) is SOILED
    assert rules.decide([SOILED], facts("needs-cleaning", "soiled-utility"), rules.ENTER) is None
    assert rules.decide([SOILED], facts("maintenance", "soiled-utility"), rules.ENTER) is None


def test_clean_utility_makes_available_only_after_cleaning():
    assert rules.decide([CLEAN], facts("needs-cleaning", "clean-utility"), rules.ENTER) is CLEAN
    assert rules.decide([CLEAN], facts("in-use", "clean-utility"), rules.ENTER) is None


def test_a_rule_without_from_statuses_never_touches_maintenance_or_retired():
    anything = rules.ZoneRuleSpec(4, "any", rules.ENTER, "available", zone_kind="storage")
    assert rules.decide([anything], facts("in-use", "storage"), rules.ENTER) is anything
    for status in rules.PROTECTED_STATUSES:
        assert rules.decide([anything], facts(status, "storage"), rules.ENTER) is None


def test_dwell_rules_wait_for_the_minutes_and_fire_once_per_stay():
    assert rules.decide([ROOM], facts("available", "room", dwell=1799), rules.DWELL) is None
    assert rules.decide([ROOM], facts("available", "room", dwell=1800), rules.DWELL) is ROOM
    assert rules.decide([ROOM], facts("available", "room", dwell=1800), rules.ENTER) is None
    fired = facts("available", "room", dwell=4000, fired=[3])
    assert rules.decide([ROOM], fired, rules.DWELL) is None


def test_a_zone_rule_beats_a_kind_rule_then_priority_then_age():
    zone_rule = rules.ZoneRuleSpec(9, "this room", rules.ENTER, "in-use", zone_id=10, priority=500)
    kind_rule = rules.ZoneRuleSpec(5, "kind", rules.ENTER, "needs-cleaning", zone_kind="room")
    assert rules.decide([kind_rule, zone_rule], facts("available", "room"), rules.ENTER) is (
        zone_rule
    )
    urgent = rules.ZoneRuleSpec(7, "urgent", rules.ENTER, "in-use", zone_kind="room", priority=1)
    assert rules.decide([kind_rule, urgent], facts("available", "room"), rules.ENTER) is urgent


def test_rules_limited_to_a_type_or_another_zone_do_not_match():
    typed = rules.ZoneRuleSpec(6, "beds", rules.ENTER, "in-use", zone_kind="room", asset_type_id=2)
    assert rules.decide([typed], facts("available", "room", type_id=1), rules.ENTER) is None
    other = rules.ZoneRuleSpec(8, "other", rules.ENTER, "in-use", zone_id=11)
    assert rules.decide([other], facts("available", "room", zone=10), rules.ENTER) is None
    assert rules.decide([SOILED], facts("available", None, zone=None), rules.ENTER) is None


@pytest.mark.parametrize(
    ("available", "state", "severity", "shortfall"),
    [
        (5, "ok", None, 0),
        (3, "below-target", None, 2),
        (1, "critical", "warning", 4),
        (0, "critical", "critical", 5),
    ],
)
def test_par_states(available, state, severity, shortfall):
    result = rules.par_state(available, target=5, critical_min=2)
    assert (result.state, result.alert_severity, result.shortfall) == (state, severity, shortfall)


ROOM_1 = geofence.Place(1, "room", floor_id=1, building_id=1)
EXIT_1 = geofence.Place(2, "exit", floor_id=1, building_id=1)
ROOM_2 = geofence.Place(3, "room", floor_id=2, building_id=1)
OTHER_BUILDING = geofence.Place(4, "room", floor_id=3, building_id=2)


def test_leaving_the_home_floor_is_a_breach_and_coming_back_restores():
    fence = geofence.FenceSpec(1, geofence.EXIT, geofence.SCOPE_FLOOR, 1)
    assert geofence.crossing(fence, ROOM_1, ROOM_2) == geofence.BREACHED
    assert geofence.crossing(fence, ROOM_2, ROOM_1) == geofence.RESTORED
    assert geofence.crossing(fence, ROOM_1, EXIT_1) is None


def test_losing_sight_of_an_asset_is_not_leaving():
    fence = geofence.FenceSpec(1, geofence.EXIT, geofence.SCOPE_BUILDING, 1)
    assert geofence.crossing(fence, ROOM_1, None) is None
    assert geofence.crossing(fence, ROOM_1, OTHER_BUILDING) == geofence.BREACHED


def test_entering_an_exit_zone_is_a_breach():
    fence = geofence.FenceSpec(2, geofence.ENTER, geofence.SCOPE_ZONE_KIND, "exit")
    assert geofence.crossing(fence, ROOM_1, EXIT_1) == geofence.BREACHED
    assert geofence.crossing(fence, None, EXIT_1) == geofence.BREACHED
    assert geofence.crossing(fence, EXIT_1, ROOM_1) == geofence.RESTORED
    zone_fence = geofence.FenceSpec(3, geofence.ENTER, geofence.SCOPE_ZONE, 2)
    assert geofence.crossing(zone_fence, ROOM_1, EXIT_1) == geofence.BREACHED


def test_quiet_hours_including_across_midnight():
    assert geofence.in_quiet_hours(time(23), time(22), time(6))
    assert geofence.in_quiet_hours(time(5, 59), time(22), time(6))
    assert not geofence.in_quiet_hours(time(6), time(22), time(6))
    assert geofence.in_quiet_hours(time(13), time(12), time(14))
    assert not geofence.in_quiet_hours(time(15), time(12), time(14))
    assert not geofence.in_quiet_hours(time(3), None, None)
    assert not geofence.in_quiet_hours(time(3), time(8), time(8))


def test_interval_schedules_count_from_the_last_service():
    start = date(2026, 1, 10)
    assert schedules.next_due(starts_on=start, last_done=None, interval_days=180) == start
    assert schedules.next_due(
        starts_on=start, last_done=date(2026, 3, 1), interval_days=180
    ) == date(2026, 8, 28)


def test_calendar_schedules_fall_on_the_next_listed_month_clipped_to_its_length():
    due = schedules.next_due(
        starts_on=date(2026, 1, 1), last_done=date(2026, 3, 31), months=(3, 9), day_of_month=31
    )
    assert due == date(2026, 9, 30)
    first = schedules.next_due(
        starts_on=date(2026, 3, 31), last_done=None, months=(3,), day_of_month=31
    )
    assert first == date(2026, 3, 31)
    february = schedules.next_due(
        starts_on=date(2026, 1, 1), last_done=date(2026, 1, 31), months=(2,), day_of_month=30
    )
    assert february == date(2026, 2, 28)
    assert schedules.next_due(
        starts_on=date(2026, 1, 1), last_done=date(2026, 9, 1), months=(3, 9), day_of_month=1
    ) == date(2027, 3, 1)
    with pytest.raises(ValueError, match="interval"):
        schedules.next_due(starts_on=date(2026, 1, 1), last_done=None)


def test_due_states():
    today = date(2026, 5, 10)
    assert schedules.due_state(date(2026, 5, 9), today, 14) == schedules.OVERDUE
    assert schedules.due_state(date(2026, 5, 24), today, 14) == schedules.DUE_SOON
    assert schedules.due_state(date(2026, 5, 25), today, 14) == schedules.OK


@pytest.mark.parametrize(
    ("today", "state", "severity", "days_overdue"),
    [
        (date(2026, 5, 2), None, None, None),
        (date(2026, 5, 3), "due", "info", -7),
        (date(2026, 5, 10), "due", "info", 0),
        (date(2026, 5, 11), "overdue", "warning", 1),
        (date(2026, 6, 8), "overdue", "warning", 29),
        (date(2026, 6, 9), "overdue", "critical", 30),
    ],
)
def test_a_maintenance_alert_is_due_then_overdue_then_critical(
    today, state, severity, days_overdue
):
    level = schedules.maintenance_alert(
        date(2026, 5, 10), today, days_before=7, critical_after_days=30
    )
    if state is None:
        assert level is None
    else:
        assert (level.state, level.severity, level.days_overdue) == (
            state,
            severity,
            days_overdue,
        )


def test_maintenance_alert_defaults_open_on_the_due_date_and_may_never_turn_critical():
    due = date(2026, 5, 10)
    assert schedules.maintenance_alert(due, date(2026, 5, 9)) is None
    assert schedules.maintenance_alert(due, due).state == schedules.ALERT_DUE
    years_late = schedules.maintenance_alert(due, date(2029, 1, 1), critical_after_days=None)
    assert years_late.severity == "warning"
    at_once = schedules.maintenance_alert(due, date(2026, 5, 11), critical_after_days=0)
    assert at_once.severity == "critical"


def test_serial_ranges_compare_digit_runs_as_numbers():
    assert schedules.serial_in_range("SN-100", "SN-99", "SN-120")
    assert not schedules.serial_in_range("SN-121", "SN-99", "SN-120")
    assert schedules.serial_in_range("sn-0120", "SN-99", "SN-120")
    assert schedules.serial_in_range("anything", "", "")
    assert not schedules.serial_in_range("", "", "")
    assert not schedules.serial_in_range("SN-5", "SN-10", "")


def days(n, start=date(2026, 1, 1)):
    return start + timedelta(days=n)


def test_forecast_is_the_day_the_fitted_line_reaches_the_threshold():
    samples = [(days(i), 90.0 - 0.5 * i) for i in range(30)]
    result = forecast.replacement_date(samples, threshold_pct=10.0)
    assert result.slope_pct_per_day == pytest.approx(-0.5)
    assert result.replace_on == days(160)


def test_forecast_restarts_after_a_battery_swap_and_ignores_old_samples():
    old = [(days(i), 60.0 - 2.0 * i) for i in range(20)]
    fresh = [(days(20 + i), 100.0 - 1.0 * i) for i in range(10)]
    result = forecast.replacement_date(old + fresh, threshold_pct=10.0)
    assert result.slope_pct_per_day == pytest.approx(-1.0)
    assert result.replace_on == days(110)


def test_forecast_is_honest_when_it_cannot_say():
    assert forecast.replacement_date([(days(0), 80.0)]).replace_on is None
    flat = [(days(i), 80.0) for i in range(10)]
    assert forecast.replacement_date(flat).reason == "battery level is not falling"
    same_day = [(days(0), 80.0)] * 3
    assert forecast.replacement_date(same_day).replace_on is None
    assert forecast.linear_fit([(0, 1), (1, 3), (2, 5)]) == pytest.approx((2.0, 1.0))


T0 = datetime(2026, 3, 1, tzinfo=UTC)


def at(hours):
    return T0 + timedelta(hours=hours)


def test_status_intervals_and_hours():
    intervals = usage.status_intervals(
        "available",
        [(at(2), "in-use"), (at(5), "needs-cleaning"), (at(30), "available")],
        at(0),
        at(10),
    )
    assert [s for _, _, s in intervals] == ["available", "in-use", "needs-cleaning"]
    assert usage.hours_by_status(intervals) == {
        "available": 2.0,
        "in-use": 3.0,
        "needs-cleaning": 5.0,
    }


def test_peak_concurrent_use_and_verdicts():
    a = usage.status_intervals("in-use", [(at(4), "available")], at(0), at(10))
    b = usage.status_intervals("available", [(at(3), "in-use")], at(0), at(10))
    c = usage.status_intervals("available", [], at(0), at(10))
    assert usage.peak_concurrent([a, b, c], "in-use") == 2
    assert usage.verdict(3, 3, 50.0) == usage.TOO_FEW
    assert usage.verdict(10, 8, 85.0) == usage.TOO_FEW
    assert usage.verdict(10, 2, 10.0) == usage.TOO_MANY
    assert usage.verdict(10, 6, 50.0) == usage.ABOUT_RIGHT
    assert usage.verdict(0, 0, None) == usage.NO_DATA
