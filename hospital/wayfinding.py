"""Walking distances through the building, for "find the nearest pump".

Straight-line distance lies in a hospital: the pump behind the wall of the next patient room is
a corridor walk away, and the one straight above you is a staircase away. This module builds a
walking graph from the zone polygons alone (the site model has no doors) and runs Dijkstra on it.
No Django imports: the web process builds it from the database, tests build it from literals.

The graph:
- a node at each zone's centroid and one at the midpoint of every *portal*: a wall segment that
  two zones share over at least a door width. Rooms are assumed to open onto circulation space
  (corridors, lobbies, stairs, lifts, exits) wherever they meet it; two rooms that merely share
  a wall are not connected unless `room_to_room` is set, because patient rooms seldom have a
  door between them.
- edges from a zone's centroid to each of its portals, weighted by the straight distance
  (centroid to shared-edge midpoint), and between two portals of the same zone when the
  straight segment stays inside the zone (so a long corridor is walked along, not via its
  middle).
- floors: stairs and lift zones of consecutive levels of a building are joined (the ones that
  overlap in plan, the same shaft, or all of them when none overlap) at `level_change_m` per
  level. A floor with no stairs or lift is joined to its neighbour levels through a virtual
  landing that costs `floor_change_cost_m` to cross; every zone reaches it for free, since
  nobody drew where the stairs are.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import defaultdict
from dataclasses import dataclass

from shapely.geometry import LineString, Point, Polygon
from shapely.ops import unary_union

CIRCULATION_KINDS = frozenset({"corridor", "lobby", "stairs", "elevator", "exit"})
VERTICAL_KINDS = frozenset({"stairs", "elevator"})
DOOR_WIDTH_M = 0.9
LEVEL_CHANGE_M = 15.0
FLOOR_CHANGE_COST_M = 40.0


@dataclass(frozen=True)
class FloorSpec:
    id: int
    building_id: int
    level: int


@dataclass(frozen=True)
class ZoneSpec:
    id: int
    floor_id: int
    kind: str
    polygon: tuple[tuple[float, float], ...]
    name: str = ""


@dataclass(frozen=True)
class Candidate:
    """Something to walk to: an asset at a point of a floor (its zone when known)."""

    id: int
    floor_id: int
    x: float
    y: float
    zone_id: int | None = None


@dataclass(frozen=True)
class Ranked:
    id: int
    zone_id: int
    distance_m: float
    floor_changes: int
    straight_m: float | None = None  # same floor only: what a map ruler would say


@dataclass
class _Reach:
    """Single-source shortest paths: distance and floor changes of the chosen path per node."""

    distance: dict[str, float]
    floor_changes: dict[str, int]
    previous: dict[str, str]


def _centroid_node(zone_id: int) -> str:
    return f"z{zone_id}"


class WalkGraph:
    """The walking graph of a site. Build once per site version; queries are pure."""

    def __init__(
        self,
        floors: list[FloorSpec],
        zones: list[ZoneSpec],
        *,
        door_width_m: float = DOOR_WIDTH_M,
        level_change_m: float = LEVEL_CHANGE_M,
        floor_change_cost_m: float = FLOOR_CHANGE_COST_M,
        room_to_room: bool = False,
    ) -> None:
        self.floors = {f.id: f for f in floors}
        self.zones = {z.id: z for z in zones}
        self.door_width_m = door_width_m
        self.level_change_m = level_change_m
        self.floor_change_cost_m = floor_change_cost_m
        self.room_to_room = room_to_room
        self.shapes = {z.id: Polygon(z.polygon) for z in zones}
        self.position: dict[str, tuple[int | None, float, float]] = {}
        self.edges: dict[str, list[tuple[str, float, int]]] = defaultdict(list)
        self.portals_of: dict[int, list[str]] = defaultdict(list)
        self.through: dict[frozenset, int] = {}
        for zone in zones:
            c = self.shapes[zone.id].centroid
            self.position[_centroid_node(zone.id)] = (zone.floor_id, c.x, c.y)
        self._connect_portals()
        self._connect_floors()

    def _edge(self, a: str, b: str, weight: float, floor_changes: int = 0) -> None:
        self.edges[a].append((b, weight, floor_changes))
        self.edges[b].append((a, weight, floor_changes))

    def _directed(self, a: str, b: str, weight: float, floor_changes: int = 0) -> None:
        self.edges[a].append((b, weight, floor_changes))

    def _opens_onto(self, a: ZoneSpec, b: ZoneSpec) -> bool:
        return self.room_to_room or a.kind in CIRCULATION_KINDS or b.kind in CIRCULATION_KINDS

    def shared_wall(self, a: int, b: int):
        """The longest straight piece of wall two zones share, or None (touching at a corner,
        or no contact). Returns a shapely LineString."""
        contact = self.shapes[a].boundary.intersection(self.shapes[b].boundary)
        if contact.is_empty:
            return None
        pieces = [g for g in getattr(contact, "geoms", [contact]) if g.length > 0]
        if not pieces:
            return None
        merged = unary_union(pieces)
        lines = list(getattr(merged, "geoms", [merged]))
        return max(lines, key=lambda line: line.length)

    def _connect_portals(self) -> None:
        by_floor: dict[int, list[ZoneSpec]] = defaultdict(list)
        for zone in self.zones.values():
            by_floor[zone.floor_id].append(zone)
        for floor_id, zones in by_floor.items():
            for i, a in enumerate(zones):
                for b in zones[i + 1 :]:
                    if not self._opens_onto(a, b):
                        continue
                    if not self.shapes[a.id].buffer(1e-6).intersects(self.shapes[b.id]):
                        continue
                    wall = self.shared_wall(a.id, b.id)
                    if wall is None or wall.length + 1e-9 < self.door_width_m:
                        continue
                    mid = wall.interpolate(0.5, normalized=True)
                    node = f"p{min(a.id, b.id)}-{max(a.id, b.id)}"
                    self.position[node] = (floor_id, mid.x, mid.y)
                    for zone in (a, b):
                        self._edge(_centroid_node(zone.id), node, self._distance(zone.id, node))
                        self.portals_of[zone.id].append(node)
        for zone_id, portals in self.portals_of.items():
            shape = self.shapes[zone_id].buffer(1e-6)
            for i, p in enumerate(portals):
                for q in portals[i + 1 :]:
                    segment = LineString([self.position[p][1:], self.position[q][1:]])
                    if shape.covers(segment):
                        self._edge(p, q, segment.length)
                        self.through[frozenset((p, q))] = zone_id

    def _distance(self, zone_id: int, node: str) -> float:
        _, x, y = self.position[node]
        _, cx, cy = self.position[_centroid_node(zone_id)]
        return math.hypot(x - cx, y - cy)

    def _connect_floors(self) -> None:
        by_building: dict[int, list[FloorSpec]] = defaultdict(list)
        for floor in self.floors.values():
            by_building[floor.building_id].append(floor)
        vertical: dict[int, list[ZoneSpec]] = defaultdict(list)
        members: dict[int, list[ZoneSpec]] = defaultdict(list)
        for zone in self.zones.values():
            members[zone.floor_id].append(zone)
            if zone.kind in VERTICAL_KINDS:
                vertical[zone.floor_id].append(zone)
        for floor in self.floors.values():
            if vertical[floor.id]:
                continue
            out_node, in_node = f"out{floor.id}", f"in{floor.id}"
            self.position[out_node] = self.position[in_node] = (floor.id, math.nan, math.nan)
            for zone in members[floor.id]:
                self._directed(_centroid_node(zone.id), out_node, 0.0)
                self._directed(in_node, _centroid_node(zone.id), 0.0)
        for floors in by_building.values():
            floors.sort(key=lambda f: f.level)
            for lower, upper in itertools.pairwise(floors):
                steps = abs(upper.level - lower.level)
                if vertical[lower.id] and vertical[upper.id]:
                    self._join_shafts(vertical[lower.id], vertical[upper.id], steps)
                else:
                    cost = self.floor_change_cost_m * steps
                    for a, b in ((lower, upper), (upper, lower)):
                        self._directed(self._exit(a, vertical), self._entry(b, vertical), cost, 1)

    def _exit(self, floor: FloorSpec, vertical) -> str:
        """Where a floor is left from: its virtual landing, or (when it has stairs but its
        neighbour has none) its first stairs zone."""
        return _centroid_node(vertical[floor.id][0].id) if vertical[floor.id] else f"out{floor.id}"

    def _entry(self, floor: FloorSpec, vertical) -> str:
        return _centroid_node(vertical[floor.id][0].id) if vertical[floor.id] else f"in{floor.id}"

    def _join_shafts(self, lower: list[ZoneSpec], upper: list[ZoneSpec], steps: int) -> None:
        cost = self.level_change_m * steps
        joined = False
        for a in lower:
            for b in upper:
                if self.shapes[a.id].intersection(self.shapes[b.id]).area > 1e-9:
                    self._edge(_centroid_node(a.id), _centroid_node(b.id), cost, 1)
                    joined = True
        if not joined:
            for a in lower:
                for b in upper:
                    self._edge(_centroid_node(a.id), _centroid_node(b.id), cost, 1)

    def reach(self, from_zone: int) -> _Reach:
        """Dijkstra from the centroid of `from_zone`. Ties in distance prefer fewer floor
        changes."""
        start = _centroid_node(from_zone)
        if start not in self.position:
            raise KeyError(f"unknown zone {from_zone}")
        distance = {start: 0.0}
        changes = {start: 0}
        previous: dict[str, str] = {}
        queue = [(0.0, 0, start)]
        done: set[str] = set()
        while queue:
            dist, flips, node = heapq.heappop(queue)
            if node in done:
                continue
            done.add(node)
            for neighbour, weight, extra in self.edges.get(node, ()):
                candidate = (dist + weight, flips + extra)
                known = (distance.get(neighbour, math.inf), changes.get(neighbour, 0))
                if candidate < known:
                    distance[neighbour], changes[neighbour] = candidate
                    previous[neighbour] = node
                    heapq.heappush(queue, (*candidate, neighbour))
        return _Reach(distance, changes, previous)

    def zone_at(self, floor_id: int, x: float, y: float) -> int | None:
        """The zone containing the point, else the nearest zone of the floor (positions have
        error; one just outside every polygon still belongs somewhere)."""
        point = Point(x, y)
        best, best_d = None, math.inf
        for zone in self.zones.values():
            if zone.floor_id != floor_id:
                continue
            d = self.shapes[zone.id].distance(point)
            if d == 0:
                return zone.id
            if d < best_d:
                best, best_d = zone.id, d
        return best

    def walk_to(self, reach: _Reach, zone_id: int, x: float, y: float) -> tuple[float, int]:
        """Walking distance and floor changes to a point in `zone_id`: the cheapest way in
        (through the centroid or a portal of that zone), then straight to the point."""
        best = (math.inf, 0)
        for node in [_centroid_node(zone_id), *self.portals_of.get(zone_id, [])]:
            if node not in reach.distance:
                continue
            _, nx, ny = self.position[node]
            option = (reach.distance[node] + math.hypot(x - nx, y - ny), reach.floor_changes[node])
            best = min(best, option)
        return best

    def rank(self, from_zone: int, candidates: list[Candidate], limit: int | None = None):
        """Candidates by walking distance from the centroid of `from_zone`; unreachable ones
        are left out."""
        reach = self.reach(from_zone)
        origin_floor, ox, oy = self.position[_centroid_node(from_zone)]
        ranked = []
        for c in candidates:
            zone_id = c.zone_id if c.zone_id in self.zones else self.zone_at(c.floor_id, c.x, c.y)
            if zone_id is None:
                continue
            if zone_id == from_zone:
                distance, flips = math.hypot(c.x - ox, c.y - oy), 0
            else:
                distance, flips = self.walk_to(reach, zone_id, c.x, c.y)
            if math.isinf(distance):
                continue
            straight = math.hypot(c.x - ox, c.y - oy) if c.floor_id == origin_floor else None
            ranked.append(Ranked(c.id, zone_id, round(distance, 2), flips, straight))
        ranked.sort(key=lambda r: (r.distance_m, r.floor_changes, r.id))
        return ranked[:limit] if limit is not None else ranked

    def route(self, from_zone: int, to_zone: int) -> list[int]:
        """The zones walked through, in order (portals and landings left out)."""
        reach = self.reach(from_zone)
        target = _centroid_node(to_zone)
        if target not in reach.distance:
            return []
        nodes = [target]
        while nodes[-1] in reach.previous:
            nodes.append(reach.previous[nodes[-1]])
        nodes.reverse()
        zones: list[int] = []
        for i, node in enumerate(nodes):
            if node.startswith("z"):
                zone = int(node[1:])
            elif i and frozenset((nodes[i - 1], node)) in self.through:
                zone = self.through[frozenset((nodes[i - 1], node))]
            else:
                continue
            if not zones or zones[-1] != zone:
                zones.append(zone)
        return zones
