"""Three baselines the localization engine must beat, computed on the same trace.

All share the same per-(tag, scanner) exponential smoothing (time constant 2 s, stale after 6 s)
and the same one-update-per-second schedule as the engine, so the comparison isolates the
position method:

- strongest: room presence as ESPresense / room-assistant do it: the tag is in the room of the
  scanner that hears it loudest; the position is that scanner's position.
- centroid: weighted centroid of the scanners that hear it (weights 10^(rssi/20), i.e. ~1/d).
- trilateration: ranges from the nominal path-loss model, least squares in metres with equal
  weights (scipy), no tracking filter.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import least_squares

from tracking.localization.model import Estimate, SiteSpec

BASELINES = ("strongest", "centroid", "trilateration")
TAU_S = 2.0
STALE_S = 6.0
UPDATE_S = 1.0


class Baseline:
    def __init__(self, site: SiteSpec, method: str):
        if method not in BASELINES:
            raise ValueError(method)
        self.method = method
        self.floors = {floor.name: floor for floor in site.floors}
        self.scanners = {s.serial: s for s in site.scanners}
        self.state: dict[str, tuple[dict[str, list[float]], list[float]]] = {}

    def process(self, ts: float, scanner: str, tag: str, rssi: float) -> Estimate | None:
        entries, clock = self.state.setdefault(tag, ({}, [ts]))
        entry = entries.get(scanner)
        if entry is None:
            entries[scanner] = [rssi, 1.0, ts]
        else:
            weight = entry[1] * math.exp(-(ts - entry[2]) / TAU_S)
            entry[0] += (rssi - entry[0]) / (weight + 1.0)
            entry[1] = weight + 1.0
            entry[2] = ts
        if ts - clock[0] < UPDATE_S:
            return None
        clock[0] = ts
        return self._estimate(tag, ts, entries)

    def _estimate(self, tag: str, ts: float, entries) -> Estimate | None:
        fresh = [(s, e[0]) for s, e in entries.items() if ts - e[2] <= STALE_S]
        if not fresh:
            return None
        fresh.sort(key=lambda item: (-item[1], item[0]))
        best = self.scanners[fresh[0][0]]
        floor = self.floors[best.floor]
        on_floor = [(self.scanners[s], r) for s, r in fresh if self.scanners[s].floor == best.floor]
        if self.method == "strongest":
            zone = floor.geometry.zone_at(best.x, best.y)
            return Estimate(ts, tag, floor.name, best.x, best.y, zone.name if zone else "", 0.0)
        xs = np.array([s.x for s, _ in on_floor])
        ys = np.array([s.y for s, _ in on_floor])
        rssi = np.array([r for _, r in on_floor])
        weights = 10.0 ** ((rssi - rssi.max()) / 20.0)
        x = float(weights @ xs / weights.sum())
        y = float(weights @ ys / weights.sum())
        if self.method == "trilateration" and len(on_floor) >= 3:
            p0 = np.array([s.rssi_at_1m for s, _ in on_floor])
            n = np.array([s.path_loss_exponent for s, _ in on_floor])
            dz = np.array([max(s.z - 1.0, 0.1) for s, _ in on_floor])
            ranges = 10.0 ** ((p0 - rssi) / (10.0 * n))
            horizontal = np.sqrt(np.maximum(ranges**2 - dz**2, 0.0))

            def residuals(p):
                return np.hypot(p[0] - xs, p[1] - ys) - horizontal

            x, y = least_squares(residuals, [x, y], method="lm").x
        x, y = floor.geometry.clamp(float(x), float(y))
        zone = floor.geometry.zone_at(x, y)
        return Estimate(ts, tag, floor.name, x, y, zone.name if zone else "", 0.0)
