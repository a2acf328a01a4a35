"""Sensor-health thresholds (offline after k intervals, battery low/critical, plausible range)
are per-profile settings with the former code defaults, and the rule engine uses them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from alerts.models import Alert
from environment import monitoring, rules
from environment.models import SensorState, ThresholdProfile
from tests.coldchain import minutes_ago, reading

pytestmark = pytest.mark.django_db


def upload(post, sensor, readings):
    response = post(sensor.token, {"readings": readings})
    assert response.status_code == 202, response.content


def test_presets_keep_the_former_defaults_and_limits_carry_them(fridge):
    defaults = rules.Limits()
    for profile in ThresholdProfile.objects.all():
        assert profile.offline_after_intervals == defaults.offline_after_intervals
        assert profile.low_battery_pct == defaults.low_battery_pct
        assert profile.critical_battery_pct == defaults.critical_battery_pct
        assert profile.plausible_min_c == defaults.plausible_min_c
        assert profile.plausible_max_c == defaults.plausible_max_c
    profile = fridge.profile
    profile.offline_after_intervals, profile.low_battery_pct = 5, 30.0
    profile.critical_battery_pct, profile.plausible_min_c, profile.plausible_max_c = 15.0, -40, 50
    limits = monitoring.limits_for(fridge)
    assert (limits.offline_after_intervals, limits.low_battery_pct) == (5, 30.0)
    assert (limits.critical_battery_pct, limits.plausible_min_c, limits.plausible_max_c) == (
        15.0,
        -40,
        50,
    )


def test_a_profile_s_battery_levels_decide_the_low_battery_alert(fridge, post):
    profile = fridge.profile
    profile.low_battery_pct, profile.critical_battery_pct = 40.0, 30.0
    profile.save()
    upload(post, fridge, [reading(fridge, minutes_ago(3), battery_pct=50)])
    assert not Alert.objects.exists()
    upload(post, fridge, [reading(fridge, minutes_ago(2), battery_pct=35)])
    alert = Alert.objects.get(kind=rules.LOW_BATTERY)
    assert alert.severity == "warning"
    upload(post, fridge, [reading(fridge, minutes_ago(1), battery_pct=28)])
    alert.refresh_from_db()
    assert alert.severity == "critical"


def test_a_profile_s_plausible_range_decides_what_is_a_probe_fault(fridge, post):
    profile = fridge.profile
    profile.plausible_max_c = 40.0
    profile.save()
    upload(post, fridge, [reading(fridge, minutes_ago(2), 45.0)])
    assert Alert.objects.get().kind == rules.SENSOR_FAULT


def test_a_profile_s_offline_intervals_decide_when_a_sensor_is_offline(fridge, post):
    profile = fridge.profile
    profile.offline_after_intervals = 10
    profile.save()
    upload(post, fridge, [reading(fridge, minutes_ago(1))])
    heard = SensorState.objects.get(sensor=fridge).last_received_at
    interval = timedelta(seconds=fridge.expected_interval_s)
    assert monitoring.check_sensors(now=heard + 9 * interval)["offline"] == 0
    assert monitoring.check_sensors(now=heard + 10 * interval)["offline"] == 1


def test_inconsistent_health_thresholds_are_refused(db):
    profile = ThresholdProfile.objects.get(slug="vaccine-refrigerator")
    profile.critical_battery_pct = 50.0
    with pytest.raises(ValidationError, match="critical_battery_pct"):
        profile.full_clean()
    profile.critical_battery_pct, profile.plausible_min_c = 10.0, 80.0
    with pytest.raises(ValidationError, match="plausible_max_c"):
        profile.full_clean()
