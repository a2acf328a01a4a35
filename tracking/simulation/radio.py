"""Tag motion and BLE radio propagation, producing contract section-2 traces with ground truth.

Radio model per advertisement and scanner (all in dB):

    rssi = p0 + c_s + t_g - 10 n_s log10(d) - L_wall * walls - L_floor * floors + S_s(x, y) + F

- p0 the nominal 1 m power; c_s the scanner's calibration error (installations get it wrong by
  several dB); t_g the tag's own transmit-power offset; n_s the scanner's true path-loss exponent
  (scattered around the nominal one); d the 3-D distance including mounting height and storeys.
- walls counted on the floor's zone outlines; floors between tag and scanner attenuate heavily.
- S_s a spatially correlated shadowing field per scanner (Gaussian process with an exponential-ish
  kernel via random Fourier features, correlation length ~3 m): a parked tag keeps its bias.
- F fast fading: Rician (K-factor configurable) in dB, with its heavy lower tail.
- Packets are lost at random and below the receiver sensitivity; scanners report integer dBm.

Motion: tags dwell in rooms (parked assets for minutes, roaming ones briefly), then walk through
the room's door, along the corridor, optionally take the lift to another floor, into another room.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from tracking.localization.model import Reading, SiteSpec
from tracking.localization.walls import wall_segments
from tracking.tagids import canonical_tag_id

MOBILITY_BY_TYPE = {"wheelchair": "roaming", "bed": "roaming", "stretcher": "roaming"}
SHADOWING_FEATURES = 48


def mobility_of_type(asset_type: str) -> str:
    return MOBILITY_BY_TYPE.get(asset_type, "parked")


@dataclass
class RadioConfig:
    shadowing_sigma_db: float = 4.0
    shadowing_correlation_m: float = 3.0
    rician_k: float = 4.0
    packet_loss: float = 0.2
    sensitivity_dbm: float = -95.0
    calibration_sigma_db: float = 3.0
    exponent_mean: float = 2.2
    exponent_sigma: float = 0.15
    wall_loss_db: float = 4.5
    floor_loss_db: float = 20.0
    floor_height_m: float = 4.0
    tag_offset_sigma_db: float = 2.0
    tag_height_m: float = 1.0
    advert_interval_s: float = 1.0
    walking_speed_mps: float = 1.1
    dwell_mean_s: dict[str, float] = field(
        default_factory=lambda: {"parked": 900.0, "roaming": 90.0}
    )
    other_floor_probability: float = 0.25
    lift_wait_s: float = 20.0


@dataclass
class TruthRow:
    ts: float
    tag: str
    floor: str
    x: float
    y: float
    zone: str


class _Tag:
    def __init__(self, tag, asset_type, mobility, floor, x, y, next_move):
        self.tag = tag
        self.asset_type = asset_type
        self.mobility = mobility
        self.floor = floor
        self.x = x
        self.y = y
        self.next_move = next_move
        self.route: list[tuple[int, float, float]] = []
        self.wait_until = 0.0
        self.phase = 0.0


class RadioSimulator:
    """Moves the site's tagged assets and yields what the scanners hear, in event time."""

    def __init__(
        self,
        document: dict[str, Any],
        config: RadioConfig | None = None,
        seed: int = 0,
        start_ts: float | None = None,
    ):
        self.config = config or RadioConfig()
        self.site = SiteSpec.from_document(document)
        self.rng = np.random.default_rng(seed)
        self.start_ts = (
            start_ts if start_ts is not None else datetime(2026, 11, 24, 8, tzinfo=UTC).timestamp()
        )
        self.now = self.start_ts
        rng = self.rng
        cfg = self.config
        self.floor_index = {floor.name: i for i, floor in enumerate(self.site.floors)}
        scanners = self.site.scanners
        self.scanner_xyz = np.array(
            [
                [
                    s.x,
                    s.y,
                    s.z + cfg.floor_height_m * self.site.floors[self.floor_index[s.floor]].level,
                ]
                for s in scanners
            ]
        )
        self.scanner_floor = np.array([self.floor_index[s.floor] for s in scanners])
        self.scanner_serials = [s.serial for s in scanners]
        count = len(scanners)
        self.scanner_p0 = np.array([s.rssi_at_1m for s in scanners]) + rng.normal(
            0.0, cfg.calibration_sigma_db, count
        )
        self.scanner_exponent = np.clip(
            rng.normal(cfg.exponent_mean, cfg.exponent_sigma, count), 1.6, 3.5
        )
        self.shadow_frequencies = rng.normal(
            0.0, 1.0 / cfg.shadowing_correlation_m, (count, SHADOWING_FEATURES, 2)
        )
        self.shadow_phases = rng.uniform(0, 2 * math.pi, (count, SHADOWING_FEATURES))
        self._wall_resolution = 0.25
        self._wall_grids = [self._floor_wall_grid(i) for i in range(len(self.site.floors))]
        self.rooms = [
            [
                i
                for i, zone in enumerate(floor.geometry.zones)
                if zone.kind != "corridor" and self._door(floor_i, i) is not None
            ]
            for floor_i, floor in enumerate(self.site.floors)
        ]
        self.tags: list[_Tag] = []
        for asset in document.get("assets", []):
            self._add_tag(asset)
        self._mobility = {state.tag: state.mobility for state in self.tags}
        self._tag_offsets: np.ndarray | None = None  # drawn at the first step

    # ------------------------------------------------------------------ geometry helpers
    def _floor_wall_grid(self, floor_i: int) -> np.ndarray:
        """Walls from every scanner of the simulation to every cell of floor `floor_i`
        (scanners of other floors get zeros: floors, not walls, dominate there)."""
        from tracking.localization.walls import count_crossings

        floor = self.site.floors[floor_i]
        res = self._wall_resolution
        columns = math.ceil(floor.geometry.width_m / res)
        rows = math.ceil(floor.geometry.height_m / res)
        xs = (np.arange(columns) + 0.5) * res
        ys = (np.arange(rows) + 0.5) * res
        gx, gy = np.meshgrid(xs, ys)
        centres = np.column_stack([gx.ravel(), gy.ravel()])
        segments = wall_segments(floor.geometry)
        grid = np.zeros((len(self.scanner_serials), rows * columns), dtype=np.int16)
        for s in np.flatnonzero(self.scanner_floor == floor_i):
            grid[s] = count_crossings(segments, tuple(self.scanner_xyz[s, :2]), centres)
        return grid

    def _walls(self, floor_i: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        floor = self.site.floors[floor_i]
        res = self._wall_resolution
        columns = math.ceil(floor.geometry.width_m / res)
        rows = math.ceil(floor.geometry.height_m / res)
        column = np.clip((x / res).astype(int), 0, columns - 1)
        row = np.clip((y / res).astype(int), 0, rows - 1)
        return self._wall_grids[floor_i][:, row * columns + column]

    def _corridor(self, floor_i: int) -> int | None:
        zones = self.site.floors[floor_i].geometry.zones
        return next((i for i, z in enumerate(zones) if z.kind == "corridor"), None)

    def _door(self, floor_i: int, zone_i: int) -> tuple[float, float, float, float] | None:
        """(door x, door y, corridor-side x, corridor-side y) for a room touching the corridor."""
        corridor = self._corridor(floor_i)
        if corridor is None:
            return None
        geometry = self.site.floors[floor_i].geometry
        shared = geometry.polygons[zone_i].intersection(geometry.polygons[corridor])
        if shared.is_empty or shared.length < 0.8:
            return None
        mid = shared.interpolate(0.5, normalized=True)
        cx0, cy0, cx1, cy1 = geometry.polygons[corridor].bounds
        if (cx1 - cx0) >= (cy1 - cy0):  # walk along the corridor's long axis
            return (mid.x, mid.y, mid.x, (cy0 + cy1) / 2)
        return (mid.x, mid.y, (cx0 + cx1) / 2, mid.y)

    def _random_point_in(self, floor_i: int, zone_i: int, inset: float = 0.6):
        xmin, ymin, xmax, ymax = self.site.floors[floor_i].geometry.polygons[zone_i].bounds
        inset_x = min(inset, (xmax - xmin) / 3)
        inset_y = min(inset, (ymax - ymin) / 3)
        return (
            float(self.rng.uniform(xmin + inset_x, xmax - inset_x)),
            float(self.rng.uniform(ymin + inset_y, ymax - inset_y)),
        )

    def _add_tag(self, asset: dict[str, Any]) -> None:
        tag = canonical_tag_id(asset["tag"])
        mobility = mobility_of_type(asset.get("type", ""))
        floors_with_rooms = [i for i, rooms in enumerate(self.rooms) if rooms]
        if not floors_with_rooms:
            raise ValueError("the site has no room connected to a corridor to place tags in")
        floor_i = floors_with_rooms[len(self.tags) % len(floors_with_rooms)]
        room = int(self.rng.choice(self.rooms[floor_i]))
        x, y = self._random_point_in(floor_i, room)
        dwell = self.config.dwell_mean_s[mobility]
        state = _Tag(tag, asset.get("type", ""), mobility, floor_i, x, y, 0.0)
        state.next_move = self.start_ts + float(self.rng.exponential(dwell))
        state.phase = float(self.rng.uniform(0.0, self.config.advert_interval_s * 0.9))
        self.tags.append(state)

    def mobility_for_tag(self, tag: str) -> str | None:
        """Mobility class by tag id, as the asset registry would tell the engine."""
        return self._mobility.get(tag)

    # ------------------------------------------------------------------ motion
    def _plan_route(self, state: _Tag) -> None:
        cfg = self.config
        here_floor = state.floor
        here_zone = self.site.floors[here_floor].geometry.zone_index_at(state.x, state.y)
        target_floor = here_floor
        candidates = [i for i, rooms in enumerate(self.rooms) if rooms and i != here_floor]
        if candidates and self.rng.uniform() < cfg.other_floor_probability:
            target_floor = int(self.rng.choice(candidates))
        rooms = [
            r for r in self.rooms[target_floor] if r != here_zone or target_floor != here_floor
        ]
        target_room = int(self.rng.choice(rooms))
        route = []
        if here_zone is not None and here_zone in self.rooms[here_floor]:
            door = self._door(here_floor, here_zone)
            route += [(here_floor, door[0], door[1]), (here_floor, door[2], door[3])]
        if target_floor != here_floor:
            lift_x, lift_y = self._lift_point(here_floor)
            route.append((here_floor, lift_x, lift_y))
            route.append((-1 - target_floor, lift_x, lift_y))  # take the lift
        door = self._door(target_floor, target_room)
        route += [(target_floor, door[2], door[3]), (target_floor, door[0], door[1])]
        route.append((target_floor, *self._random_point_in(target_floor, target_room)))
        state.route = route

    def _lift_point(self, floor_i: int) -> tuple[float, float]:
        corridor = self._corridor(floor_i)
        xmin, ymin, _xmax, ymax = self.site.floors[floor_i].geometry.polygons[corridor].bounds
        return (xmin + 0.8, (ymin + ymax) / 2)

    def _move(self, state: _Tag, now: float, dt: float) -> None:
        cfg = self.config
        if not state.route:
            if now >= state.next_move:
                self._plan_route(state)
            return
        if now < state.wait_until:
            return
        budget = cfg.walking_speed_mps * dt
        while state.route and budget > 0:
            floor_i, x, y = state.route[0]
            if floor_i < 0:
                state.floor = -1 - floor_i
                state.route.pop(0)
                state.wait_until = now + cfg.lift_wait_s
                return
            distance = math.hypot(x - state.x, y - state.y)
            if distance <= budget:
                state.x, state.y = x, y
                budget -= distance
                state.route.pop(0)
            else:
                state.x += (x - state.x) * budget / distance
                state.y += (y - state.y) * budget / distance
                budget = 0
        if not state.route:
            state.next_move = now + float(self.rng.exponential(cfg.dwell_mean_s[state.mobility]))

    # ------------------------------------------------------------------ radio
    def _shadowing(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Correlated shadowing (scanners x tags), unit-variance field scaled by sigma."""
        phase = (
            self.shadow_frequencies[:, :, 0, None] * x[None, None, :]
            + self.shadow_frequencies[:, :, 1, None] * y[None, None, :]
            + self.shadow_phases[:, :, None]
        )
        field_values = np.cos(phase).sum(axis=1) * math.sqrt(2.0 / SHADOWING_FEATURES)
        return self.config.shadowing_sigma_db * field_values

    def _fading(self, shape) -> np.ndarray:
        k = self.config.rician_k
        line_of_sight = math.sqrt(k / (k + 1))
        scatter = math.sqrt(1 / (2 * (k + 1)))
        h = line_of_sight + scatter * (
            self.rng.standard_normal(shape) + 1j * self.rng.standard_normal(shape)
        )
        return 20.0 * np.log10(np.abs(h) + 1e-6)

    def step(self) -> tuple[list[TruthRow], list[Reading]]:
        """Advance one advertising interval: every tag advertises once (at its own phase)."""
        cfg = self.config
        interval = cfg.advert_interval_s
        t0 = self.now
        for state in self.tags:
            self._move(state, t0, interval)
        self.now = t0 + interval
        if not self.tags:
            return [], []
        xs = np.array([s.x for s in self.tags])
        ys = np.array([s.y for s in self.tags])
        floors = np.array([s.floor for s in self.tags])
        levels = np.array([self.site.floors[f].level for f in floors], dtype=float)
        tag_z = levels * cfg.floor_height_m + cfg.tag_height_m
        dx = self.scanner_xyz[:, 0:1] - xs[None, :]
        dy = self.scanner_xyz[:, 1:2] - ys[None, :]
        dz = self.scanner_xyz[:, 2:3] - tag_z[None, :]
        distance = np.sqrt(dx * dx + dy * dy + dz * dz)
        walls = np.zeros_like(distance)
        for floor_i in np.unique(floors):
            members = np.flatnonzero(floors == floor_i)
            walls[:, members] = self._walls(int(floor_i), xs[members], ys[members])
        floor_levels = np.array([self.site.floors[f].level for f in self.scanner_floor], float)
        storeys = np.abs(floor_levels[:, None] - levels[None, :])
        if self._tag_offsets is None:
            self._tag_offsets = self.rng.normal(0.0, cfg.tag_offset_sigma_db, len(self.tags))
        tag_offsets = self._tag_offsets
        rssi = (
            self.scanner_p0[:, None]
            + tag_offsets[None, :]
            - 10.0 * self.scanner_exponent[:, None] * np.log10(np.maximum(distance, 0.1))
            - cfg.wall_loss_db * walls
            - cfg.floor_loss_db * storeys
            + self._shadowing(xs, ys)
            + self._fading(distance.shape)
        )
        heard = (rssi >= cfg.sensitivity_dbm) & (
            self.rng.uniform(size=rssi.shape) >= cfg.packet_loss
        )
        jitter = self.rng.uniform(0.0, 0.05, size=rssi.shape)
        readings = []
        truth = []
        for j, state in enumerate(self.tags):
            advert_ts = round(t0 + state.phase, 3)
            floor = self.site.floors[state.floor]
            zone = floor.geometry.zone_at(state.x, state.y)
            truth.append(
                TruthRow(
                    advert_ts, state.tag, floor.name, state.x, state.y, zone.name if zone else ""
                )
            )
            for s in np.flatnonzero(heard[:, j]):
                readings.append(
                    Reading(
                        round(advert_ts + float(jitter[s, j]), 3),
                        self.scanner_serials[s],
                        state.tag,
                        float(round(rssi[s, j])),
                    )
                )
        readings.sort(key=lambda r: (r.ts, r.scanner, r.tag))
        return truth, readings

    def readings(self, duration_s: float | None = None) -> Iterator[Reading]:
        """Readings in event-time order; endless when `duration_s` is None (live demo)."""
        end = None if duration_s is None else self.start_ts + duration_s
        while end is None or self.now < end - 1e-9:
            _truth, readings = self.step()
            yield from readings

    def run(self, duration_s: float) -> tuple[list[Reading], list[TruthRow]]:
        all_readings: list[Reading] = []
        all_truth: list[TruthRow] = []
        end = self.start_ts + duration_s
        while self.now < end - 1e-9:
            truth, readings = self.step()
            all_truth += truth
            all_readings += readings
        return all_readings, all_truth


def format_ts(ts: float) -> str:
    """ISO 8601 UTC with milliseconds and 'Z', as in contract section 2."""
    millis = round(ts * 1000)
    moment = datetime.fromtimestamp(millis // 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis % 1000:03d}Z"


def write_trace(path, readings) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ts", "scanner", "tag", "rssi"])
        for r in readings:
            writer.writerow([format_ts(r.ts), r.scanner, r.tag, int(r.rssi)])


def write_truth(path, truth) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ts", "tag", "floor", "x", "y", "zone"])
        for row in truth:
            writer.writerow(
                [format_ts(row.ts), row.tag, row.floor, f"{row.x:.2f}", f"{row.y:.2f}", row.zone]
            )
