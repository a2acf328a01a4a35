"""The workflow configuration the hot paths need (active zone rules, geofences, the asset types
with par levels), cached briefly per process and dropped whenever an admin changes it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings

CACHE_S = 5.0

DEFAULTS = {
    "BATTERY_LOW_PCT": 15.0,
    "BATTERY_REPLACE_PCT": 10.0,
    "BATTERY_WINDOW_DAYS": 90,
    "MAINTENANCE_SOON_DAYS": 14,
}


def setting(name: str):
    return {**DEFAULTS, **getattr(settings, "WARDWISE_WORKFLOWS", {})}[name]


@dataclass(frozen=True)
class Configuration:
    rules: tuple
    fences: tuple
    par_type_ids: frozenset[int]

    @property
    def empty(self) -> bool:
        return not (self.rules or self.fences or self.par_type_ids)


_cached: tuple[float, Configuration | None] = (0.0, None)


def configuration() -> Configuration:
    global _cached
    now = time.monotonic()
    if _cached[1] is None or _cached[0] <= now:
        from workflows.models import Geofence, ParLevel, ZoneRule

        current = Configuration(
            rules=tuple(rule.spec() for rule in ZoneRule.objects.filter(is_active=True)),
            fences=tuple(Geofence.objects.filter(is_active=True).select_related("policy")),
            par_type_ids=frozenset(
                ParLevel.objects.filter(is_active=True).values_list("asset_type_id", flat=True)
            ),
        )
        _cached = (now + CACHE_S, current)
    return _cached[1]


def forget(**kwargs) -> None:
    global _cached
    _cached = (0.0, None)


def zone_work_configured() -> bool:
    """Whether zone changes need the workflows listener at all (cheap: cached)."""
    return not configuration().empty
