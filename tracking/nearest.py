"""Find the nearest available asset of a type by walking distance (hospital.wayfinding), from
the database: the site's walking graph is built once per process and rebuilt when a floor or
zone changes (the per-floor versions of hospital.spatial).

Honest location (tracking.confidence): an asset whose room is not confirmed is never ranked as
if it were. Assets come in tiers, confirmed first, then uncertain, then stale (not heard for a
while), each tier by walking distance to where the engine places the asset now; every result
carries its quality and last confirmed room so the page can say how sure it is."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from hospital import spatial
from hospital.models import Floor, Zone
from hospital.wayfinding import Candidate, FloorSpec, WalkGraph, ZoneSpec
from tracking import quality
from tracking.confidence import Assessment, Quality
from tracking.models import AssetLocation, AssetStatus, Presence

#: Ranking tiers: a confirmed asset further away beats an unconfirmed one nearby, whose room may
#: be wrong (a wasted walk costs more than a longer sure one).
TIER = {Quality.CONFIRMED: 0, Quality.UNCERTAIN: 1, Quality.STALE: 2}

_graph: tuple[tuple, WalkGraph] | None = None


def site_graph() -> WalkGraph:
    global _graph
    conf = settings.WARDWISE
    costs = (conf["DOOR_WIDTH_M"], conf["LEVEL_CHANGE_M"], conf["FLOOR_CHANGE_COST_M"])
    floors = list(Floor.objects.values_list("pk", "building_id", "level"))
    key = (costs, *((row, spatial._version(row[0])) for row in floors))
    if _graph is not None and _graph[0] == key:
        return _graph[1]
    zones = [
        ZoneSpec(pk, floor_id, kind, tuple((float(x), float(y)) for x, y in polygon), name)
        for pk, floor_id, kind, polygon, name in Zone.objects.values_list(
            "pk", "floor_id", "kind", "polygon", "name"
        )
    ]
    graph = WalkGraph(
        [FloorSpec(*row) for row in floors],
        zones,
        door_width_m=costs[0],
        level_change_m=costs[1],
        floor_change_cost_m=costs[2],
    )
    _graph = (key, graph)
    return graph


@dataclass(frozen=True)
class Nearest:
    location: AssetLocation
    zone: Zone
    walking_m: float
    floor_changes: int
    straight_m: float | None
    route: list[Zone]
    assessment: Assessment


def find_nearest(type_slug: str, from_zone: Zone, limit: int = 5) -> list[Nearest]:
    """Available, present assets of the type: confirmed rooms first, then uncertain, then
    stale ones, each nearest on foot first."""
    locations = {
        location.asset_id: location
        for location in AssetLocation.objects.filter(
            asset__asset_type__slug=type_slug,
            asset__status=AssetStatus.AVAILABLE,
            presence=Presence.PRESENT,
            floor__isnull=False,
        ).select_related("asset__asset_type", "asset__tag", "floor", "confirmed_zone")
    }
    judge = quality.judge()
    assessments = {asset_id: judge(location) for asset_id, location in locations.items()}
    candidates = [
        Candidate(asset_id, loc.floor_id, loc.x, loc.y, loc.zone_id)
        for asset_id, loc in locations.items()
    ]
    graph = site_graph()
    ranked = graph.rank(from_zone.pk, candidates)
    ranked.sort(key=lambda r: TIER[assessments[r.id].quality])  # stable: distance within a tier
    ranked = ranked[:limit]
    routes = {r.zone_id: graph.route(from_zone.pk, r.zone_id) for r in ranked}
    zones = Zone.objects.select_related("floor").in_bulk(
        {zone_id for route in routes.values() for zone_id in route} | set(routes)
    )
    return [
        Nearest(
            locations[r.id],
            zones[r.zone_id],
            r.distance_m,
            r.floor_changes,
            r.straight_m,
            [zones[zone_id] for zone_id in routes[r.zone_id]],
            assessments[r.id],
        )
        for r in ranked
    ]
