"""Honest location, from the database: the rules of tracking.confidence applied to stored
locations, with the settings, the scanners that cover each zone and which of them are offline.

The coverage map (zone -> scanners) is built once per process and rebuilt when a floor, zone or
scanner changes (a version in the shared cache, like hospital.spatial's). Judging a page of
locations costs one query (the offline scanners), none when every scanner is online.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from shapely.geometry import Point, Polygon

from hospital import prepared
from hospital.models import Floor, Zone
from tracking.confidence import Assessment, Evidence, Thresholds, assess
from tracking.models import AssetLocation, Presence, Scanner, ScannerHealth

COVERAGE_VERSION_KEY = "ww:coverage-version"
_coverage: tuple[str, dict[int, frozenset[int]]] | None = None


def thresholds() -> Thresholds:
    conf = settings.WARDWISE
    return Thresholds(
        min_zone_probability=conf["LOCATION_CONFIRM_PROBABILITY"],
        min_scanners=conf["LOCATION_CONFIRM_MIN_SCANNERS"],
        max_accuracy_m=conf["LOCATION_CONFIRM_MAX_ACCURACY_M"],
        stale_after_s=conf["LOCATION_STALE_AFTER_S"],
    )


def _bump_coverage_version(**kwargs) -> None:
    cache.set(COVERAGE_VERSION_KEY, uuid.uuid4().hex, timeout=None)


for _model in (Floor, Zone, Scanner):
    post_save.connect(_bump_coverage_version, sender=_model, dispatch_uid=f"coverage-{_model}")
    post_delete.connect(_bump_coverage_version, sender=_model, dispatch_uid=f"coverage-d-{_model}")


def build_coverage(zones, scanners) -> dict[int, frozenset[int]]:
    """zone id -> ids of the scanners that cover it: those mounted in it (its outline
    included) or, for a zone without a scanner of its own (a corridor), those mounted in the
    zones that touch it, as the engine's direct evidence treats them.

    `zones`: (id, floor_id, polygon) rows; `scanners`: (id, floor_id, x, y) rows."""
    shapes: dict[int, list[tuple[int, Polygon]]] = defaultdict(list)
    for zone_id, floor_id, polygon in zones:
        shapes[floor_id].append((zone_id, Polygon([(float(x), float(y)) for x, y in polygon])))
    own: dict[int, set[int]] = defaultdict(set)
    for scanner_id, floor_id, x, y in scanners:
        point = Point(float(x), float(y))
        for zone_id, shape in shapes.get(floor_id, ()):
            if shape.covers(point):
                own[zone_id].add(scanner_id)
    coverage: dict[int, frozenset[int]] = {}
    for floor_zones in shapes.values():
        for zone_id, shape in floor_zones:
            if own[zone_id]:
                coverage[zone_id] = frozenset(own[zone_id])
                continue
            near: set[int] = set()
            for other_id, other in floor_zones:
                if other_id != zone_id and own[other_id] and shape.distance(other) < 1e-6:
                    near |= own[other_id]
            coverage[zone_id] = frozenset(near)
    return coverage


def zone_coverage() -> dict[int, frozenset[int]]:
    global _coverage
    version = cache.get_or_set(COVERAGE_VERSION_KEY, lambda: uuid.uuid4().hex, timeout=None)
    if _coverage is None or _coverage[0] != version:
        zones = Zone.objects.values_list("pk", "floor_id", "polygon")
        scanners = Scanner.objects.filter(is_active=True).values_list("pk", "floor_id", "x", "y")
        _coverage = (version, build_coverage(zones, scanners))
    return _coverage[1]


def offline_zone_ids() -> frozenset[int]:
    """Zones whose covering scanners are all offline (a scanner without a health row has never
    reported and is not judged: it contributed nothing to any estimate either)."""
    if connection.vendor == "postgresql":  # read per pipeline chunk: a prepared statement
        sql = f"SELECT scanner_id FROM {prepared.table(ScannerHealth)} WHERE NOT online"  # noqa: S608  # nosec B608
        offline = {scanner for (scanner,) in prepared.rows(sql, [])}
    else:
        offline = set(
            ScannerHealth.objects.filter(online=False).values_list("scanner_id", flat=True)
        )
    if not offline:
        return frozenset()
    return frozenset(
        zone_id for zone_id, scanners in zone_coverage().items() if scanners and scanners <= offline
    )


def evidence_of(location: AssetLocation, offline_zones: frozenset[int]) -> Evidence:
    return Evidence(
        zone=location.zone_id,
        zone_probability=location.zone_probability,
        scanners_used=location.scanners_used,
        accuracy_m=location.accuracy_m,
        estimated_at=location.estimated_at,
        last_seen_at=location.last_seen_at,
        zone_scanners_offline=location.zone_id in offline_zones,
        present=location.presence == Presence.PRESENT,
    )


@dataclass(frozen=True)
class Judge:
    """Judges stored locations at one moment, against one reading of the offline scanners."""

    now: datetime
    offline_zones: frozenset[int]
    limits: Thresholds

    def __call__(self, location: AssetLocation) -> Assessment:
        return assess(evidence_of(location, self.offline_zones), self.now, self.limits)


def judge(now: datetime | None = None) -> Judge:
    return Judge(now or timezone.now(), offline_zone_ids(), thresholds())
