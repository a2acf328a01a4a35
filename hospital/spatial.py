"""Per-floor spatial indexes, cached per process and invalidated across processes.

Each process keeps the built FloorGeometry; a version number per floor lives in the shared
Django cache (Redis in production), bumped whenever a zone or the floor changes, so every worker
rebuilds its index after an edit in the admin or a site-file load.
"""

from __future__ import annotations

import uuid

from django.core.cache import cache
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from hospital.geometry import FloorGeometry, ZoneShape
from hospital.models import Floor, Zone

_VERSION_KEY = "floor-geometry-version:{}"
_built: dict[int, tuple[str, FloorGeometry]] = {}


def _version(floor_id: int) -> str:
    return cache.get_or_set(_VERSION_KEY.format(floor_id), lambda: uuid.uuid4().hex, timeout=None)


def invalidate_floor(floor_id: int) -> None:
    """A fresh random version (not a counter: a flushed cache must never repeat an old one)."""
    cache.set(_VERSION_KEY.format(floor_id), uuid.uuid4().hex, timeout=None)
    _built.pop(floor_id, None)


def build_floor_geometry(floor: Floor) -> FloorGeometry:
    zones = [
        ZoneShape(zone.name, zone.kind, tuple((float(x), float(y)) for x, y in zone.polygon))
        for zone in floor.zones.order_by("pk")
    ]
    return FloorGeometry(floor.width_m, floor.height_m, zones)


def floor_geometry(floor_id: int) -> FloorGeometry:
    version = _version(floor_id)
    cached = _built.get(floor_id)
    if cached and cached[0] == version:
        return cached[1]
    geometry = build_floor_geometry(Floor.objects.get(pk=floor_id))
    _built[floor_id] = (version, geometry)
    return geometry


def zone_at(floor_id: int, x: float, y: float) -> Zone | None:
    shape = floor_geometry(floor_id).zone_at(x, y)
    if shape is None:
        return None
    return Zone.objects.filter(floor_id=floor_id, name=shape.name).first()


@receiver([post_save, post_delete], sender=Zone)
def _zone_changed(sender, instance: Zone, **kwargs) -> None:
    invalidate_floor(instance.floor_id)


@receiver([post_save, post_delete], sender=Floor)
def _floor_changed(sender, instance: Floor, **kwargs) -> None:
    invalidate_floor(instance.pk)
