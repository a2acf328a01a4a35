"""Demo-only timing for the demo hospital's sensors, so a failing fridge shows its alert within a
couple of minutes instead of after the production alarm delay (docs/cold-chain.md, "The demo").

The published presets are left untouched: each sensor is pointed at a copy of its profile (slug
`<preset>-demo`, same limits) with a short alarm delay and hysteresis, and reports every
`interval_s`, which is what the simulated probes then do."""

from __future__ import annotations

from django.db import transaction

from environment.models import Sensor, ThresholdProfile

DEMO_SUFFIX = "-demo"
INTERVAL_S = 10
ALARM_DELAY_S = 30
CLEAR_HYSTERESIS_S = 60
DOOR_OPEN_MAX_S = 120


@transaction.atomic
def use_demo_timing(
    *,
    interval_s: int = INTERVAL_S,
    alarm_delay_s: int = ALARM_DELAY_S,
    clear_hysteresis_s: int = CLEAR_HYSTERESIS_S,
    door_open_max_s: int = DOOR_OPEN_MAX_S,
) -> int:
    """Give every active sensor a demo copy of its profile and the demo interval; returns how
    many sensors were changed."""
    changed = 0
    for sensor in Sensor.objects.filter(is_active=True).select_related("profile"):
        profile = sensor.profile
        if not profile.slug.endswith(DEMO_SUFFIX):
            profile = _demo_copy(profile)
        profile.alarm_delay_s = alarm_delay_s
        profile.clear_hysteresis_s = clear_hysteresis_s
        profile.door_open_max_s = door_open_max_s
        profile.save()
        if sensor.profile_id != profile.pk or sensor.expected_interval_s != interval_s:
            sensor.profile = profile
            sensor.expected_interval_s = interval_s
            sensor.save(update_fields=["profile", "expected_interval_s"])
            changed += 1
    return changed


def _demo_copy(preset: ThresholdProfile) -> ThresholdProfile:
    fields = {
        f.name: getattr(preset, f.name)
        for f in ThresholdProfile._meta.concrete_fields
        if f.name not in {"id", "slug", "name", "source"}
    }
    copy, _ = ThresholdProfile.objects.update_or_create(
        slug=preset.slug + DEMO_SUFFIX,
        defaults={
            **fields,
            "name": f"{preset.name}, demo timing",
            "source": f"demo copy of '{preset.slug}' with a short alarm delay",
        },
    )
    return copy
