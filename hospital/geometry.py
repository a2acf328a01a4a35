"""Floor geometry without Django: zone polygons, point lookup and wall crossings.

Kept free of Django imports so the localization engine, the replay command, Celery workers and
unit tests share one implementation. Every position update asks `zone_at`, so lookups go through
a shapely STRtree built once per floor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import shapely
from shapely.geometry import LineString, Point, Polygon, box
from shapely.strtree import STRtree

Coordinate = tuple[float, float]


@dataclass(frozen=True)
class ZoneShape:
    name: str
    kind: str
    polygon: tuple[Coordinate, ...]


class GeometryError(ValueError):
    """A polygon or point that breaks a site rule; the message says which rule."""


def polygon_problem(coords: Sequence[Sequence[float]]) -> str | None:
    """Why these coordinates do not make a usable zone polygon, or None when they do."""
    if len(coords) < 3:
        return "needs at least 3 points"
    try:
        polygon = Polygon([(float(x), float(y)) for x, y in coords])
    except (TypeError, ValueError):
        return "points must be [x, y] pairs of numbers"
    if polygon.convex_hull.area <= 0:
        return "has no area"
    if not polygon.exterior.is_simple:
        return "self-intersecting"
    if polygon.area <= 0:
        return "has no area"
    if not polygon.is_valid:
        return f"invalid polygon ({shapely.is_valid_reason(polygon)})"
    return None


class FloorGeometry:
    """The zones of one floor, indexed for fast point lookup and wall counting."""

    def __init__(self, width_m: float, height_m: float, zones: Sequence[ZoneShape]):
        self.width_m = float(width_m)
        self.height_m = float(height_m)
        self.outline = box(0.0, 0.0, self.width_m, self.height_m)
        self.zones = list(zones)
        self.polygons = [Polygon(zone.polygon) for zone in self.zones]
        self._tree = STRtree(self.polygons)
        self._boundaries = [polygon.exterior for polygon in self.polygons]
        self._boundary_tree = STRtree(self._boundaries)

    def contains(self, x: float, y: float) -> bool:
        return 0.0 <= x <= self.width_m and 0.0 <= y <= self.height_m

    def clamp(self, x: float, y: float) -> Coordinate:
        return (min(max(x, 0.0), self.width_m), min(max(y, 0.0), self.height_m))

    def zone_index_at(self, x: float, y: float) -> int | None:
        point = Point(x, y)
        candidates = self._tree.query(point, predicate="intersects")
        if len(candidates) == 0:
            return None
        return int(min(candidates))

    def zone_at(self, x: float, y: float) -> ZoneShape | None:
        """The zone holding the point; a point on a shared edge goes to the first-listed zone."""
        index = self.zone_index_at(x, y)
        return None if index is None else self.zones[index]

    def walls_between(self, a: Coordinate, b: Coordinate) -> int:
        """How many distinct zone outlines the straight path a->b crosses (a wall shared by two
        zones counts once)."""
        if a == b:
            return 0
        segment = LineString([a, b])
        crossings: set[tuple[float, float]] = set()
        for index in self._boundary_tree.query(segment, predicate="intersects"):
            hit = segment.intersection(self._boundaries[int(index)])
            for part in getattr(hit, "geoms", [hit]):
                if part.is_empty:
                    continue
                point = part.representative_point()
                crossings.add((round(point.x, 2), round(point.y, 2)))
        return len(crossings)

    def overlaps(self) -> list[tuple[int, int]]:
        """Pairs of zone indexes whose interiors overlap (touching edges are fine)."""
        pairs = []
        for i, polygon in enumerate(self.polygons):
            for j in self._tree.query(polygon, predicate="intersects"):
                j = int(j)
                if j <= i:
                    continue
                if polygon.intersection(self.polygons[j]).area > 1e-9:
                    pairs.append((i, j))
        return pairs

    def outside_floor(self, polygon: Polygon, tolerance: float = 1e-6) -> bool:
        return not self.outline.buffer(tolerance).contains(polygon)
