"""The per-tag localization pipeline: smoothing, floor choice, zone hypotheses, Kalman tracking."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from tracking.localization import kalman
from tracking.localization.hypotheses import zone_step
from tracking.localization.model import EngineConfig, Estimate, Reading, SiteSpec
from tracking.localization.solver import (
    Solution,
    centroid_of,
    fit_in_boxes,
    slopes,
    solution,
)
from tracking.localization.walls import WallGrid

SIGMA_RADIUS_68 = math.sqrt(-2.0 * math.log(1.0 - 0.6827))  # 2-D: P(r < k sigma) = 68 %
MAX_SCANNERS_PER_TAG = 32
MAX_ZONE_HYPOTHESES = 4
PACKED_STATE_VERSION = 1
FLOOR_SWITCH_CONFIRMATIONS = 2
NOISE_LEVEL_RATE = 0.01
TOLERANCE_M = 0.05  # a fit stops when its step is shorter


class _Floor:
    """What the engine precomputes per floor: bounds, zone boxes, adjacency, wall grid."""

    def __init__(self, index, spec, scanner_indexes, scanners, prior_scale):
        self.index = index
        self.spec = spec
        self.geometry = spec.geometry
        self.bounds = (0.0, 0.0, self.geometry.width_m, self.geometry.height_m)
        self.scanner_indexes = scanner_indexes
        self.walls = WallGrid(
            self.geometry, [(scanners[i].x, scanners[i].y) for i in scanner_indexes]
        )
        self.zone_names = [zone.name for zone in self.geometry.zones]
        self.zone_index = {name: i for i, name in enumerate(self.zone_names)}
        self.zone_boxes = []
        for polygon in self.geometry.polygons:
            xmin, ymin, xmax, ymax = polygon.bounds
            inset = min(0.05, (xmax - xmin) / 4, (ymax - ymin) / 4)
            self.zone_boxes.append((xmin + inset, ymin + inset, xmax - inset, ymax - inset))
        priors, log_spreads = [], []
        for xmin, ymin, xmax, ymax in self.zone_boxes:
            sx = max((xmax - xmin) / math.sqrt(12.0), 0.3) * prior_scale
            sy = max((ymax - ymin) / math.sqrt(12.0), 0.3) * prior_scale
            priors.append(((xmin + xmax) / 2, (ymin + ymax) / 2, sx, sy))
            log_spreads.append(math.log(sx * sy))
        # arrays, for the compiled zone update (hypotheses.zone_step)
        self.zone_prior_array = np.array(priors, dtype=np.float64).reshape(-1, 4)
        self.zone_log_spread_array = np.array(log_spreads, dtype=np.float64)
        self.zone_box_array = np.array(self.zone_boxes, dtype=np.float64).reshape(-1, 4)
        self.bounds_array = np.array(self.bounds, dtype=np.float64)
        self.zone_grid = np.array(self._zone_grid(self.walls.resolution), dtype=np.int64)
        self.neighbours: list[set[int]] = [set() for _ in self.zone_names]
        for i, polygon in enumerate(self.geometry.polygons):
            for j in range(i + 1, len(self.geometry.polygons)):
                if polygon.distance(self.geometry.polygons[j]) < 1e-6:
                    self.neighbours[i].add(j)
                    self.neighbours[j].add(i)
        # The best-connected neighbour (the corridor, typically) is where a tag leaving a zone
        # goes first; it is always a hypothesis even when no scanner is mounted in it.
        self.hub = np.array(
            [
                max(sorted(n), key=lambda j: len(self.neighbours[j])) if n else -1
                for n in self.neighbours
            ],
            dtype=np.int64,
        )
        count = len(self.zone_names)
        self.neighbour_matrix = np.zeros((count, count), dtype=np.bool_)
        for i, near in enumerate(self.neighbours):
            self.neighbour_matrix[i, sorted(near)] = True
        self.neighbour_count = np.array([len(n) for n in self.neighbours], dtype=np.int64)

    def direct_affinity(self, scanner_zones: list[int], config: EngineConfig) -> None:
        """Relative P(a scanner is the loudest | tag in zone), per (local scanner, zone): the
        direct evidence of room presence. A scanner mounted in the zone (no wall between) is the
        likely loudest; one in a touching zone less so, unless the zone has no scanner of its
        own."""
        has_scanner = set(scanner_zones)
        table = []
        for home in scanner_zones:
            row = []
            for zone in range(len(self.zone_names)):
                if home == zone:
                    value = 1.0
                elif home >= 0 and home in self.neighbours[zone]:
                    value = (
                        config.zone_direct_neighbour
                        if zone in has_scanner
                        else config.zone_direct_neighbour_empty
                    )
                else:
                    value = config.zone_direct_far
                row.append(value)
            table.append(row)
        self.direct_table = np.array(table, dtype=np.float64).reshape(
            len(scanner_zones), len(self.zone_names)
        )
        self.scanner_zone_array = np.array(scanner_zones, dtype=np.int64)

    def _zone_grid(self, resolution: float) -> list[int]:
        """Zone index (or -1) at every wall-grid cell centre: an O(1) lookup that proposes
        candidate zones (a shapely query per update would cost more than the fits)."""
        grid = []
        for row in range(self.walls.rows):
            for column in range(self.walls.columns):
                index = self.geometry.zone_index_at(
                    (column + 0.5) * resolution, (row + 0.5) * resolution
                )
                grid.append(-1 if index is None else index)
        return grid

    def in_zone_box(self, zone: int, x: float, y: float) -> bool:
        xmin, ymin, xmax, ymax = self.zone_boxes[zone]
        return xmin <= x <= xmax and ymin <= y <= ymax


def _strongest_pair(rssi: dict) -> set[int]:
    """The two scanners with the strongest smoothed mean (value[0]) in a per-scanner dict."""
    return set(sorted(rssi, key=lambda i: -rssi[i][0])[:2])


class _TagState:
    __slots__ = (
        "floor",
        "floor_challenger",
        "floor_challenges",
        "gate_failures",
        "kf_p",
        "kf_ts",
        "kf_x",
        "last_solution",
        "last_solve_ts",
        "last_ts",
        "mobility",
        "moving",
        "pending",
        "rssi",
        "solved_rssi",
        "zone",
        "zone_challenger",
        "zone_challenges",
        "zone_posterior",
    )

    def __init__(self, ts: float, mobility: str):
        self.rssi: dict[int, list[float]] = {}
        self.last_solve_ts = ts
        self.last_ts = ts
        self.pending = False
        self.floor = -1
        self.floor_challenger = -1
        self.floor_challenges = 0
        self.kf_x: list[float] | None = None
        self.kf_p: list[float] | None = None
        self.kf_ts = ts
        self.gate_failures = 0
        self.zone = -1
        self.zone_challenger = -1
        self.zone_challenges = 0
        self.zone_posterior: dict[int, float] = {}
        self.moving = False
        self.mobility = mobility
        self.last_solution: tuple[float, float] | None = None
        self.solved_rssi: dict[int, list[float]] | None = None


class PackedState(NamedTuple):
    """The fields of a packed tag state (`LocalizationEngine.export_packed`), in their order
    in the stored list. Scanners, floors and zones are indexes into the packing engine's
    layout; `rssi` rows are [scanner, mean, weight, ts], `solved_rssi` rows [scanner, [mean,
    weight]], `zone_posterior` rows [zone, probability]."""

    version: int
    layout_key: str
    last_ts: float
    last_solve_ts: float
    pending: bool
    floor: int
    floor_challenger: int
    floor_challenges: int
    kf_x: list | None
    kf_p: list | None
    kf_ts: float
    gate_failures: int
    zone: int
    zone_posterior: list
    zone_challenger: int
    zone_challenges: int
    moving: bool
    mobility: str
    last_solution: list | tuple | None
    rssi: list
    solved_rssi: list | None


class LocalizationEngine:
    """Turns a time-ordered stream of readings into position estimates per tag.

    Deterministic: the output depends only on the readings and their order (event time from the
    readings' own timestamps, no wall clock, no randomness). Per-tag state is small and bounded
    (at most 32 scanners, 4 zone hypotheses) and round-trips through `export_state` /
    `import_state` as JSON-able dicts, or through `export_packed` / `import_packed` as lists of
    indexes into the engine's `layout`, so workers can keep it in Redis.
    """

    def __init__(
        self,
        site: SiteSpec,
        config: EngineConfig | None = None,
        mobility_for_tag: Callable[[str], str | None] | None = None,
    ):
        self.site = site
        self.config = config or EngineConfig()
        self.mobility_for_tag = mobility_for_tag
        self.scanners = list(site.scanners)
        self.scanner_index = {scanner.serial: i for i, scanner in enumerate(self.scanners)}
        self.scanner_serials = [scanner.serial for scanner in self.scanners]
        floor_of = {floor.name: i for i, floor in enumerate(site.floors)}
        self.scanner_floor = [floor_of[scanner.floor] for scanner in self.scanners]
        self.floors: list[_Floor] = []
        self.scanner_local: list[int] = [0] * len(self.scanners)
        for index, spec in enumerate(site.floors):
            members = [i for i, f in enumerate(self.scanner_floor) if f == index]
            for local, scanner_index in enumerate(members):
                self.scanner_local[scanner_index] = local
            self.floors.append(
                _Floor(index, spec, members, self.scanners, self.config.zone_prior_scale)
            )
        self.scanner_zone = [
            self.floors[self.scanner_floor[i]].geometry.zone_index_at(s.x, s.y)
            for i, s in enumerate(self.scanners)
        ]
        self.scanner_zone = [-1 if z is None else z for z in self.scanner_zone]
        for floor in self.floors:
            floor.direct_affinity(
                [self.scanner_zone[i] for i in floor.scanner_indexes], self.config
            )
        self.scanner_dz = [max(s.z - self.config.tag_height_m, 0.1) for s in self.scanners]
        # each scanner's constant part of a solver row (solver.pack): x, y, dz^2 and the slopes
        self.scanner_rows = [
            (s.x, s.y, dz * dz, *slopes(s.path_loss_exponent))
            for s, dz in zip(self.scanners, self.scanner_dz, strict=True)
        ]
        self.calibration_sum = [0.0] * len(self.scanners)
        self.calibration_count = [0.0] * len(self.scanners)
        self.tags: dict[str, _TagState] = {}
        self.unknown_scanner_readings = 0
        self.noise_level = 1.0
        # What the indexes of a packed state (export_packed) refer to, and a short name for it.
        self.layout = {
            "scanners": self.scanner_serials,
            "floors": [floor.spec.name for floor in self.floors],
            "zones": [floor.zone_names for floor in self.floors],
        }
        self.layout_key = hashlib.sha256(
            json.dumps(self.layout, sort_keys=True).encode()
        ).hexdigest()[:16]

    # ----------------------------------------------------------------- calibration
    def scanner_offset(self, scanner_index: int) -> float:
        """Self-calibrated correction (dB) added to the scanner's nominal 1 m power.

        Shrunk towards the configured offset by a prior worth `calibration_prior_count` residuals,
        so a scanner with little evidence keeps its nominal value.
        """
        nominal = self.scanners[scanner_index].rssi_offset_db
        if not self.config.self_calibration:
            return nominal
        count = self.calibration_count[scanner_index]
        learned = self.calibration_sum[scanner_index] / (
            count + self.config.calibration_prior_count
        )
        limit = self.config.calibration_max_offset_db
        return nominal + max(-limit, min(limit, learned))

    def export_calibration(self) -> dict[str, Any]:
        """Site-wide learned state (scanner offsets, noise level) as a JSON-able dict."""
        return {
            "noise_level": self.noise_level,
            "scanners": {
                scanner.serial: {"sum": self.calibration_sum[i], "count": self.calibration_count[i]}
                for i, scanner in enumerate(self.scanners)
                if self.calibration_count[i]
            },
        }

    def import_calibration(self, calibration: dict[str, Any]) -> None:
        self.noise_level = float(calibration.get("noise_level", 1.0))
        for serial, stats in calibration.get("scanners", {}).items():
            index = self.scanner_index.get(serial)
            if index is not None:
                self.calibration_sum[index] = float(stats["sum"])
                self.calibration_count[index] = float(stats["count"])

    def calibration_offsets(self) -> dict[str, float]:
        return {s.serial: round(self.scanner_offset(i), 2) for i, s in enumerate(self.scanners)}

    # ----------------------------------------------------------------- stream interface
    def process(self, reading: Reading) -> list[Estimate]:
        """Feed one reading; returns the position updates it triggers (zero or one)."""
        scanner_index = self.scanner_index.get(reading.scanner)
        if scanner_index is None:
            self.unknown_scanner_readings += 1
            return []
        ts = reading.ts
        state = self.tags.get(reading.tag)
        if state is None:
            state = _TagState(ts, self._mobility(reading.tag))
            self.tags[reading.tag] = state
        if ts > state.last_ts:
            state.last_ts = ts
        self._smooth(state, scanner_index, ts, reading.rssi)
        state.pending = True
        interval = (
            self.config.solve_interval_s
            if state.moving or state.floor_challenges  # a contested floor is confirmed sooner
            else self.config.solve_interval_still_s
        )
        if state.last_ts - state.last_solve_ts >= interval and not self._quiet(state):
            estimate = self._solve(reading.tag, state, state.last_ts)
            return [estimate] if estimate is not None else []
        return []

    def _quiet(self, state: _TagState) -> bool:
        """True when a still tag's evidence is what it was at its last solve, within noise.

        The scanners heard then and now are compared: each smoothed mean's change against the
        fading noise both means carry (variance sigma^2 / weight each), summed into a
        chi-square with one degree per scanner. Scanners that come and go below the two
        strongest do not count (a sparse tag is heard by a different few each second; the
        strongest pair decides the room). Only a settled tag is left alone: its room at least
        `zone_certain_probability` sure; a change of that pair, a moving tag, a contested floor,
        self-calibration still learning or `quiet_solve_max_s` since the last solve always solve.
        """
        config = self.config
        snapshot = state.solved_rssi
        ts = state.last_ts
        if (
            config.quiet_solve_max_s <= 0
            or not snapshot
            or max(state.zone_posterior.values(), default=1.0) < config.zone_certain_probability
            or state.moving
            or state.floor_challenges
            or ts - state.last_solve_ts >= config.quiet_solve_max_s
        ):
            return False
        fresh = {
            i: entry for i, entry in state.rssi.items() if ts - entry[2] <= config.stale_after_s
        }
        if _strongest_pair(fresh) != _strongest_pair(snapshot) or self._still_learning(snapshot):
            return False
        variance = config.fading_sigma_db**2
        chi2 = 0.0
        dof = 0
        for scanner_index, (mean, weight, _last) in fresh.items():
            before = snapshot.get(scanner_index)
            if before is not None:
                chi2 += (mean - before[0]) ** 2 / (variance * (1.0 / weight + 1.0 / before[1]))
                dof += 1
        return dof >= 2 and chi2 <= dof + config.quiet_evidence_z * math.sqrt(2.0 * dof)

    def _still_learning(self, scanners) -> bool:
        """Self-calibration learns from solves: until each of the tag's scanners has as many
        samples as its prior weighs, every interval solves."""
        if not self.config.self_calibration:
            return False
        needed = self.config.calibration_prior_count
        return any(self.calibration_count[i] < needed for i in scanners)

    def flush(self, ts: float | None = None) -> list[Estimate]:
        """Solve every tag that has readings not yet used (end of a trace).

        With `ts` (the trace's last event time) the estimates hold at that time, so they sort
        after everything already emitted.
        """
        estimates = []
        for tag in sorted(self.tags):
            state = self.tags[tag]
            if state.pending:
                at = state.last_ts if ts is None else max(ts, state.last_ts)
                estimate = self._solve(tag, state, at)
                if estimate is not None:
                    estimates.append(estimate)
        estimates.sort(key=lambda e: (e.ts, e.tag))
        return estimates

    def forget(self, tag: str) -> None:
        self.tags.pop(tag, None)

    def _mobility(self, tag: str) -> str:
        mobility = self.mobility_for_tag(tag) if self.mobility_for_tag else None
        if mobility not in self.config.mobility_process_noise:
            return self.config.default_mobility
        return mobility

    def _smooth(self, state: _TagState, scanner_index: int, ts: float, rssi: float) -> None:
        """Robust exponentially weighted mean of RSSI in dB per (tag, scanner).

        Each new value moves the mean by at most `outlier_clip_db / (weight + 1)`, so a deep fade
        or a reflection spike cannot drag it; the weight decays with event time so that old
        evidence fades with the tag's movement.
        """
        entry = state.rssi.get(scanner_index)
        if entry is None:
            if len(state.rssi) >= MAX_SCANNERS_PER_TAG:
                oldest = min(state.rssi, key=lambda k: state.rssi[k][2])
                del state.rssi[oldest]
            state.rssi[scanner_index] = [rssi, 1.0, ts]
            return
        tau = (
            self.config.smoothing_tau_moving_s
            if state.moving
            else self.config.smoothing_tau_still_s
        )
        dt = ts - entry[2]
        weight = entry[1] * math.exp(-dt / tau) if dt > 0 else entry[1]
        if weight < 0.2:
            entry[0], entry[1] = rssi, 1.0
        else:
            clip = self.config.outlier_clip_db
            delta = max(-clip, min(clip, rssi - entry[0]))
            entry[0] += delta / (weight + 1.0)
            entry[1] = weight + 1.0
        if ts > entry[2]:
            entry[2] = ts

    # ----------------------------------------------------------------- solving
    def _fresh_evidence(self, state: _TagState, ts: float) -> list[tuple[int, float, float]]:
        tau = (
            self.config.smoothing_tau_moving_s
            if state.moving
            else self.config.smoothing_tau_still_s
        )
        fresh = []
        for scanner_index in list(state.rssi):
            mean, weight, last = state.rssi[scanner_index]
            age = ts - last
            if age > self.config.stale_after_s:
                del state.rssi[scanner_index]
                continue
            fresh.append((scanner_index, mean, weight * math.exp(-max(age, 0.0) / tau)))
        return fresh

    def _choose_floor(self, state: _TagState, evidence, ts: float) -> int:
        """Floor whose best recently heard scanners hear the tag loudest (after calibration),
        with hysteresis: another floor must beat the current one by `floor_hysteresis_db` twice
        in a row, or by twice that once (overwhelming evidence, e.g. right after a lift ride).
        Only scanners heard in the last `floor_recent_s` vote while any are: smoothed values of
        the floor the tag just left linger for seconds and would hold it there."""
        floors = {self.scanner_floor[e[0]] for e in evidence}
        if len(floors) == 1 and state.floor in floors:
            state.floor_challenges = 0
            return state.floor
        recent_after = ts - self.config.floor_recent_s
        voters = [e for e in evidence if state.rssi[e[0]][2] >= recent_after] or evidence
        excess: dict[int, list[float]] = {}
        for scanner_index, mean, _weight in voters:
            scanner = self.scanners[scanner_index]
            value = mean - scanner.rssi_at_1m - self.scanner_offset(scanner_index)
            excess.setdefault(self.scanner_floor[scanner_index], []).append(value)
        scores = {}
        for floor, values in excess.items():
            values.sort()
            top = values[-2:]
            scores[floor] = sum(top) / len(top)
        best = max(sorted(scores), key=lambda f: scores[f])
        current = state.floor
        if current not in scores:
            state.floor_challenges = 0
            return best
        margin = scores[best] - scores[current]
        hysteresis = self.config.floor_hysteresis_db
        if best == current or margin < hysteresis:
            state.floor_challenges = 0
            return current
        if state.floor_challenger == best:
            state.floor_challenges += 1
        else:
            state.floor_challenger, state.floor_challenges = best, 1
        if state.floor_challenges >= FLOOR_SWITCH_CONFIRMATIONS or margin >= 2.0 * hysteresis:
            state.floor_challenges = 0
            return best
        return current

    def _measurements(self, floor: _Floor, evidence):
        """The floor's evidence as the solver's rows (`solver.pack`'s layout, built here from
        per-scanner constants: a solve is on every worker's hot path), the scanners' wall-grid
        rows, the weighted centroid and the (scanner, smoothed mean) pairs used."""
        config = self.config
        on_floor = [e for e in evidence if self.scanner_floor[e[0]] == floor.index]
        on_floor.sort(key=lambda e: (-e[1], e[0]))
        rows, sources, points, used = [], [], [], []
        base_variance = config.shadowing_sigma_db**2
        fading_variance = config.fading_sigma_db**2
        for scanner_index, mean, weight in on_floor[: config.max_scanners]:
            variance = base_variance + fading_variance / max(weight, 0.5)
            if mean < config.weak_signal_dbm:
                # weak packets are censored by receiver sensitivity: only lucky fades get
                # through, so their mean is biased high; trust them less
                variance += (config.weak_signal_dbm - mean) ** 2
            x, y, dz_squared, log_slope, range_slope = self.scanner_rows[scanner_index]
            excess = mean - (
                self.scanners[scanner_index].rssi_at_1m + self.scanner_offset(scanner_index)
            )
            rows.append(
                (
                    x,
                    y,
                    dz_squared,
                    excess,
                    log_slope,
                    range_slope,
                    1.0 / variance,
                    math.sqrt(variance),
                )
            )
            sources.append(self.scanner_local[scanner_index])
            points.append((x, y, excess))
            used.append((scanner_index, mean))
        packed = (
            np.array(rows, dtype=np.float64).reshape(-1, 8),
            np.array(sources, dtype=np.intp),
        )
        return packed, centroid_of(points), used

    def _fits(self, floor: _Floor, packed, starts, boxes, priors) -> np.ndarray:
        """One fit per (start, box, prior), in one compiled call (`solver.fit_in_boxes`)."""
        config = self.config
        rows, sources = packed
        walls = floor.walls
        return fit_in_boxes(
            rows,
            sources,
            walls.count_grid,
            config.wall_loss_db,
            walls.resolution,
            walls.columns,
            walls.rows,
            np.array(starts, dtype=np.float64).reshape(-1, 2),
            np.array(boxes, dtype=np.float64).reshape(-1, 4),
            np.array(priors, dtype=np.float64).reshape(-1, 4),
            config.huber_k,
            1.0 / (config.tag_offset_sigma_db * config.tag_offset_sigma_db),
            config.max_iterations,
            TOLERANCE_M,
        )

    def _fit(self, floor: _Floor, packed, start, bounds, prior) -> Solution:
        return solution(self._fits(floor, packed, [start], [bounds], [prior])[0].tolist())

    def _solve(self, tag: str, state: _TagState, ts: float) -> Estimate | None:
        config = self.config
        dt_since = max(ts - state.last_solve_ts, 0.0)
        state.last_solve_ts = ts
        state.pending = False
        evidence = self._fresh_evidence(state, ts)
        if config.quiet_solve_max_s > 0:  # only quiet solving reads it: a quarter of a state
            state.solved_rssi = {i: [v[0], v[1]] for i, v in state.rssi.items()}
        if not evidence:
            return None
        floor_index = self._choose_floor(state, evidence, ts)
        if floor_index != state.floor:
            state.floor = floor_index
            state.kf_x = state.kf_p = None
            state.zone_posterior = {}
            state.zone = -1
            state.last_solution = None
        floor = self.floors[floor_index]
        packed, centroid, used = self._measurements(floor, evidence)
        start = state.last_solution or centroid
        zone = -1
        zone_probability = 1.0
        spread = 0.0
        if floor.zone_names:
            zone, zone_probability, chosen, spread = self._zone_update(
                state, floor, packed, centroid, start, dt_since
            )
        else:
            sigma = config.position_prior_sigma_m
            prior = (centroid[0], centroid[1], sigma, sigma)
            chosen = self._fit(floor, packed, start, floor.bounds, prior)
            chosen = self._fit(floor, packed, (chosen.x, chosen.y), floor.bounds, prior)
        state.last_solution = (chosen.x, chosen.y)
        dof = max(len(used) - 1, 1)
        misfit = chosen.cost / dof
        if config.self_calibration and len(used) >= 4:
            # site-wide noise level: real shadowing differs from the configured sigma; the
            # running mean misfit of well-determined fits scales every covariance honestly.
            # Learned site-wide state, so only with self-calibration (see export_calibration).
            self.noise_level += NOISE_LEVEL_RATE * (misfit - self.noise_level)
        inflation = max(1.0, self.noise_level, misfit)
        var_x, cov_xy, var_y = (value * inflation for value in chosen.covariance)
        var_x, var_y = max(var_x, 0.05), max(var_y, 0.05)
        x, y, var_x, cov_xy, var_y = self._track(
            state, ts, chosen.x, chosen.y, var_x, cov_xy, var_y
        )
        if zone >= 0:
            xmin, ymin, xmax, ymax = floor.zone_boxes[zone]
            if not floor.in_zone_box(zone, x, y):
                x, y = min(max(x, xmin), xmax), min(max(y, ymin), ymax)
        x, y = floor.geometry.clamp(x, y)
        if config.self_calibration and len(used) >= 4 and zone_probability > 0.9:
            self._learn_calibration(floor, used, chosen)
        sigma = math.sqrt(max(var_x + var_y + spread, 1e-6) / 2.0)
        if len(used) < 3:  # one or two scanners cannot pin a position down
            sigma = max(sigma, config.few_scanners_min_sigma_m)
        if self.noise_level > config.noise_level_reference:
            # the site's radio is rougher than configured (learned misfit above what a right
            # noise model gives): the shadowing that does not average out scales with it too
            sigma *= math.sqrt(self.noise_level / config.noise_level_reference)
        accuracy = config.accuracy_scale * SIGMA_RADIUS_68 * sigma
        return Estimate(
            ts=ts,
            tag=tag,
            floor=floor.spec.name,
            x=round(x, 2),
            y=round(y, 2),
            zone=floor.zone_names[zone] if zone >= 0 else "",
            accuracy_m=round(accuracy, 2),
            scanners_used=len(used),
            zone_probability=round(zone_probability, 3),
        )

    def _zone_update(self, state, floor: _Floor, packed, centroid, start, dt: float):
        """Hidden Markov model over zones.

        Each candidate zone gets its own fit, constrained to the zone and pulled towards its
        middle by a prior as wide as the zone (a uniform position in the room, moment-matched),
        so its wall counts are consistent. The fit's misfit, tempered because successive
        smoothed RSSI vectors are strongly correlated, plus a Laplace (Occam) term is the zone's
        likelihood. The transition prior keeps a tag in its zone unless the evidence insists
        (door flicker), allows moves to touching zones and makes jumps across the floor rare.
        The arithmetic runs compiled, in `hypotheses.zone_step`; the hysteresis stays here.
        """
        config = self.config
        rows, sources = packed
        walls = floor.walls
        rate = (
            config.zone_switch_rate_moving_per_s if state.moving else config.zone_switch_rate_per_s
        )
        previous = state.zone_posterior
        candidates, posterior, fits, free = zone_step(
            rows,
            sources,
            walls.count_grid,
            config.wall_loss_db,
            walls.resolution,
            walls.columns,
            walls.rows,
            float(start[0]),
            float(start[1]),
            float(centroid[0]),
            float(centroid[1]),
            config.position_prior_sigma_m,
            floor.bounds_array,
            floor.zone_grid,
            floor.zone_box_array,
            floor.zone_prior_array,
            floor.zone_log_spread_array,
            floor.neighbour_matrix,
            floor.neighbour_count,
            floor.hub,
            floor.direct_table,
            floor.scanner_zone_array,
            state.zone,
            np.fromiter(previous.keys(), dtype=np.int64, count=len(previous)),
            np.fromiter(previous.values(), dtype=np.float64, count=len(previous)),
            1.0 - math.exp(-rate * max(dt, 0.0)),
            config.zone_hypotheses,
            config.zone_far_jump_probability,
            config.zone_likelihood_temper,
            config.zone_occam,
            config.zone_direct_weight,
            config.zone_direct_temperature_db,
            config.huber_k,
            1.0 / (config.tag_offset_sigma_db * config.tag_offset_sigma_db),
            config.max_iterations,
            TOLERANCE_M,
        )
        if not len(candidates):
            return -1, 1.0, solution(free.tolist()), 0.0
        fits = dict(zip(candidates.tolist(), fits.tolist(), strict=True))
        posterior = dict(zip(candidates.tolist(), posterior.tolist(), strict=True))
        kept = sorted(posterior, key=lambda z: (-posterior[z], z))[:MAX_ZONE_HYPOTHESES]
        state.zone_posterior = {zone: max(posterior[zone], 1e-6) for zone in kept}
        best = self._sticky_zone(state, kept[0], posterior)
        best_x, best_y = fits[best][0], fits[best][1]
        spread = 0.0  # mixture spread: how far the other zones' answers are, by probability
        for zone, probability in posterior.items():
            spread += probability * ((fits[zone][0] - best_x) ** 2 + (fits[zone][1] - best_y) ** 2)
        return best, posterior[best], solution(fits[best]), spread

    def _sticky_zone(self, state, leader: int, posterior: dict[int, float]) -> int:
        """Reported zone with hysteresis: a new zone must lead the posterior with at least
        `zone_switch_probability` on `zone_switch_confirmations` consecutive updates (or be
        near certain), so evidence that wobbles around 50/50 on a doorway never flips it."""
        config = self.config
        current = state.zone
        if current < 0 or current not in posterior or leader == current:
            state.zone_challenger, state.zone_challenges = -1, 0
            state.zone = leader
            return leader
        probability = posterior[leader]
        if state.moving:  # a moving tag is expected to change zones: less inertia
            threshold = config.zone_switch_probability_moving
        else:
            threshold = config.zone_switch_probability
        if probability >= config.zone_certain_probability:
            state.zone_challenger, state.zone_challenges = -1, 0
            state.zone = leader
            return leader
        if probability >= threshold:
            if state.zone_challenger == leader:
                state.zone_challenges += 1
            else:
                state.zone_challenger, state.zone_challenges = leader, 1
            if state.zone_challenges >= config.zone_switch_confirmations:
                state.zone_challenger, state.zone_challenges = -1, 0
                state.zone = leader
                return leader
        else:
            state.zone_challenger, state.zone_challenges = -1, 0
        return current

    def _learn_calibration(self, floor: _Floor, used, solution: Solution) -> None:
        """Per-scanner offset = running mean of (received - predicted with nominal 1 m power) at
        the fitted position, from confident fits only and close range only (far packets are
        censored by sensitivity and would bias the offset upward). The tag offset fitted with
        each solve absorbs the tag's own transmit power, so it does not leak into the scanners.
        `used`: the solve's (scanner, smoothed mean) pairs."""
        config = self.config
        for scanner_index, mean in used:
            scanner = self.scanners[scanner_index]
            x, y, dz_squared, _log_slope, _range_slope = self.scanner_rows[scanner_index]
            dx, dy = solution.x - x, solution.y - y
            if dx * dx + dy * dy > config.calibration_max_distance_m**2:
                continue
            walls = floor.walls.walls(self.scanner_local[scanner_index], solution.x, solution.y)
            predicted = (
                scanner.rssi_at_1m
                + scanner.rssi_offset_db
                + solution.tag_offset
                - 5.0 * scanner.path_loss_exponent * math.log10(dx * dx + dy * dy + dz_squared)
                - config.wall_loss_db * walls
            )
            residual = max(-12.0, min(12.0, mean - predicted))
            self.calibration_sum[scanner_index] += residual
            self.calibration_count[scanner_index] += 1.0
            if self.calibration_count[scanner_index] > 5000:
                self.calibration_sum[scanner_index] *= 0.5
                self.calibration_count[scanner_index] *= 0.5

    # ----------------------------------------------------------------- tracking
    def _track(self, state: _TagState, ts: float, zx, zy, var_x, cov_xy, var_y):
        """Constant-velocity Kalman filter (tracking.localization.kalman, filterpy's formulas)
        with mobility-dependent process noise and innovation gating; reports max(filter
        covariance, single-fit covariance) because the shadowing error of a parked tag does not
        average out over time."""
        config = self.config
        if state.kf_x is None:
            self._restart_filter(state, ts, zx, zy, var_x, cov_xy, var_y)
            return zx, zy, var_x, cov_xy, var_y
        dt = max(ts - state.kf_ts, 1e-3)
        state.kf_ts = ts
        q = config.mobility_process_noise[state.mobility]
        if state.gate_failures:
            q *= 20.0
        x, p, nis = kalman.step(
            np.array(state.kf_x, dtype=float),
            np.array(state.kf_p, dtype=float),
            round(dt, 2),
            q,
            zx,
            zy,
            var_x,
            cov_xy,
            var_y,
            config.gate_chi2,
        )
        if nis > config.gate_chi2:
            state.gate_failures += 1
            if state.gate_failures >= config.gate_resets_after:
                # persistent disagreement: the asset really moved; restart from the fit
                self._restart_filter(state, ts, zx, zy, var_x, cov_xy, var_y)
                state.moving = True
                return zx, zy, var_x, cov_xy, var_y
        else:
            state.gate_failures = 0
        state.kf_x = x.tolist()
        state.kf_p = p = p.tolist()
        state.moving = math.hypot(state.kf_x[1], state.kf_x[3]) > config.moving_speed_mps
        return state.kf_x[0], state.kf_x[2], max(p[0], var_x), p[2], max(p[10], var_y)

    @staticmethod
    def _restart_filter(state: _TagState, ts: float, zx, zy, var_x, cov_xy, var_y) -> None:
        """The filter starts at the fit, at rest, with the fit's covariance."""
        state.kf_x = [zx, 0.0, zy, 0.0]
        state.kf_p = [var_x, 0, cov_xy, 0, 0, 1.0, 0, 0, cov_xy, 0, var_y, 0, 0, 0, 0, 1.0]
        state.kf_ts = ts
        state.gate_failures = 0

    # ----------------------------------------------------------------- state transfer
    def export_state(self, tag: str) -> dict[str, Any] | None:
        """The tag's state as a JSON-able dict (scanner serials and zone names, not indexes),
        which any engine of the site can import, whatever was edited since. (Workers move
        states in the cheaper `export_packed` form.) Lists the engine only ever replaces (never
        mutates in place) are shared, not copied."""
        state = self.tags.get(tag)
        if state is None:
            return None
        serials = self.scanner_serials
        floor = self.floors[state.floor] if state.floor >= 0 else None
        zone_names = floor.zone_names if floor else None
        return {
            "rssi": {serials[i]: v[:] for i, v in state.rssi.items()},
            "last_solve_ts": state.last_solve_ts,
            "last_ts": state.last_ts,
            "pending": state.pending,
            "floor": floor.spec.name if floor else None,
            "floor_challenger": (
                self.floors[state.floor_challenger].spec.name
                if state.floor_challenger >= 0
                else None
            ),
            "floor_challenges": state.floor_challenges,
            "kf_x": state.kf_x,
            "kf_p": state.kf_p,
            "kf_ts": state.kf_ts,
            "gate_failures": state.gate_failures,
            "zone": zone_names[state.zone] if zone_names and state.zone >= 0 else None,
            "zone_posterior": (
                {zone_names[z]: p for z, p in state.zone_posterior.items()} if zone_names else {}
            ),
            "zone_challenger": (
                zone_names[state.zone_challenger]
                if zone_names and state.zone_challenger >= 0
                else None
            ),
            "zone_challenges": state.zone_challenges,
            "moving": state.moving,
            "mobility": state.mobility,
            "last_solution": list(state.last_solution) if state.last_solution else None,
            "solved_rssi": (
                {serials[i]: v for i, v in state.solved_rssi.items()}
                if state.solved_rssi is not None
                else None
            ),
        }

    def import_state(self, tag: str, data: dict[str, Any]) -> None:
        """Restore a state from `export_state`; scanners or zones no longer in the site are
        dropped rather than failing (the site may have been edited meanwhile)."""
        state = _TagState(float(data["last_ts"]), data.get("mobility") or self._mobility(tag))
        state.rssi = {
            self.scanner_index[serial]: [float(v) for v in values]
            for serial, values in data["rssi"].items()
            if serial in self.scanner_index
        }
        state.last_solve_ts = float(data["last_solve_ts"])
        state.pending = bool(data["pending"])
        names = {floor.spec.name: floor.index for floor in self.floors}
        state.floor = names.get(data.get("floor"), -1)
        state.floor_challenger = names.get(data.get("floor_challenger"), -1)
        state.floor_challenges = int(data.get("floor_challenges", 0))
        if state.floor >= 0:
            floor = self.floors[state.floor]
            state.kf_x = data.get("kf_x")
            state.kf_p = data.get("kf_p")
            state.kf_ts = float(data.get("kf_ts", state.last_ts))
            state.zone = floor.zone_index.get(data.get("zone"), -1)
            state.zone_challenger = floor.zone_index.get(data.get("zone_challenger"), -1)
            state.zone_challenges = int(data.get("zone_challenges", 0))
            state.zone_posterior = {
                floor.zone_index[name]: float(p)
                for name, p in data.get("zone_posterior", {}).items()
                if name in floor.zone_index
            }
            solution = data.get("last_solution")
            state.last_solution = tuple(solution) if solution else None
        state.gate_failures = int(data.get("gate_failures", 0))
        state.moving = bool(data.get("moving", False))
        solved = data.get("solved_rssi")
        if solved is not None:
            state.solved_rssi = {
                self.scanner_index[serial]: [float(mean), float(weight)]
                for serial, (mean, weight) in solved.items()
                if serial in self.scanner_index
            }
        self.tags[tag] = state

    def export_packed(self, tag: str) -> list | None:
        """The tag's state as a JSON-able list (`PackedState`'s fields in order) that refers to
        scanners, floors and zones by their indexes in this engine's `layout`: a third less CPU
        to write than `export_state` and two fifths less to read back (`python -m
        bench.engine`), which a worker pays for every tag of every drain."""
        state = self.tags.get(tag)
        if state is None:
            return None
        return [  # in PackedState's order; a NamedTuple built here cost a fifth of the export
            PACKED_STATE_VERSION,
            self.layout_key,
            state.last_ts,
            state.last_solve_ts,
            state.pending,
            state.floor,
            state.floor_challenger,
            state.floor_challenges,
            state.kf_x,
            state.kf_p,
            state.kf_ts,
            state.gate_failures,
            state.zone,
            list(state.zone_posterior.items()),
            state.zone_challenger,
            state.zone_challenges,
            state.moving,
            state.mobility,
            state.last_solution,
            [[index, *values] for index, values in state.rssi.items()],
            list(state.solved_rssi.items()) if state.solved_rssi is not None else None,
        ]

    @staticmethod
    def packed_layout_key(packed: list) -> str:
        """The `layout_key` of the engine that packed the state."""
        if packed[0] != PACKED_STATE_VERSION:
            raise ValueError(
                f"packed tag state of version {packed[0]!r}, expected {PACKED_STATE_VERSION}"
            )
        return packed[1]

    def import_packed(self, tag: str, packed: list, layout: dict | None = None) -> None:
        """Restore a state from `export_packed`. A state packed by an engine of another layout
        (the site changed since) needs that `layout`, and goes through `import_state`."""
        if self.packed_layout_key(packed) != self.layout_key:
            if layout is None:
                raise ValueError(f"tag state packed for unknown layout {packed[1]!r}")
            self.import_state(tag, self.unpack_named(packed, layout))
            return
        # By position, as in PackedState (built for every tag of a drain: a NamedTuple here
        # cost a sixth of the import).
        state = _TagState(packed[2], packed[17] or self._mobility(tag))
        (
            state.last_solve_ts,
            state.pending,
            state.floor,
            state.floor_challenger,
            state.floor_challenges,
        ) = packed[3:8]
        if state.floor >= 0:
            state.kf_x, state.kf_p, state.kf_ts = packed[8:11]
            state.zone = packed[12]
            state.zone_posterior = dict(packed[13])
            state.zone_challenger, state.zone_challenges = packed[14:16]
            state.last_solution = tuple(packed[18]) if packed[18] else None
        state.gate_failures = packed[11]
        state.moving = packed[16]
        state.rssi = {index: values for index, *values in packed[19]}
        if packed[20] is not None:
            state.solved_rssi = dict(packed[20])
        self.tags[tag] = state

    @staticmethod
    def unpack_named(packed: list, layout: dict) -> dict[str, Any]:
        """A packed state in `export_state`'s form, by the names in the packing engine's
        `layout`."""
        scanners, floors, zones = layout["scanners"], layout["floors"], layout["zones"]
        fields = PackedState(*packed)
        floor, zone, challenger = fields.floor, fields.zone, fields.zone_challenger
        zone_names = zones[floor] if floor >= 0 else None
        return {
            "rssi": {scanners[index]: values for index, *values in fields.rssi},
            "last_solve_ts": fields.last_solve_ts,
            "last_ts": fields.last_ts,
            "pending": fields.pending,
            "floor": floors[floor] if floor >= 0 else None,
            "floor_challenger": (
                floors[fields.floor_challenger] if fields.floor_challenger >= 0 else None
            ),
            "floor_challenges": fields.floor_challenges,
            "kf_x": fields.kf_x,
            "kf_p": fields.kf_p,
            "kf_ts": fields.kf_ts,
            "gate_failures": fields.gate_failures,
            "zone": zone_names[zone] if zone_names and zone >= 0 else None,
            "zone_posterior": (
                {zone_names[z]: p for z, p in fields.zone_posterior} if zone_names else {}
            ),
            "zone_challenger": zone_names[challenger] if zone_names and challenger >= 0 else None,
            "zone_challenges": fields.zone_challenges,
            "moving": fields.moving,
            "mobility": fields.mobility,
            "last_solution": list(fields.last_solution) if fields.last_solution else None,
            "solved_rssi": (
                {scanners[index]: values for index, values in fields.solved_rssi}
                if fields.solved_rssi is not None
                else None
            ),
        }
