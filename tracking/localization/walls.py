"""Precomputed wall counts from each scanner to every cell of its floor.

`FloorGeometry.walls_between` is exact but costs tens of microseconds (shapely); the solver asks
for wall counts thousands of times per second. So each scanner gets a byte grid of counts at a
fixed resolution, computed once with vectorised segment intersection over the floor's distinct
wall segments. Shared walls are split at every vertex and deduplicated, so a wall between two zones
counts once, as in `walls_between`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from hospital.geometry import FloorGeometry


def wall_segments(geometry: FloorGeometry) -> np.ndarray:
    """Distinct wall pieces (N x 4: x0, y0, x1, y1) of all zone outlines of a floor."""
    vertices = {
        (round(float(x), 6), round(float(y), 6)) for zone in geometry.zones for x, y in zone.polygon
    }
    points = np.array(sorted(vertices)) if vertices else np.zeros((0, 2))
    pieces: set[tuple[float, float, float, float]] = set()
    for zone in geometry.zones:
        ring = [*list(zone.polygon), zone.polygon[0]]
        for (ax, ay), (bx, by) in itertools.pairwise(ring):
            a, b = np.array([ax, ay], float), np.array([bx, by], float)
            direction = b - a
            length2 = float(direction @ direction)
            if length2 == 0:
                continue
            relative = points - a
            along = relative @ direction / length2
            across = np.abs(relative[:, 0] * direction[1] - relative[:, 1] * direction[0])
            on_edge = (across < 1e-6 * np.sqrt(length2)) & (along > 1e-9) & (along < 1 - 1e-9)
            cuts = np.concatenate(([0.0], np.sort(along[on_edge]), [1.0]))
            for t0, t1 in itertools.pairwise(cuts):
                p, q = a + t0 * direction, a + t1 * direction
                key = tuple(np.round(np.concatenate([p, q]), 6))
                reverse = (key[2], key[3], key[0], key[1])
                pieces.add(min(key, reverse))
    return np.array(sorted(pieces), dtype=float).reshape(-1, 4)


def count_crossings(
    segments: np.ndarray, source: tuple[float, float], targets: np.ndarray
) -> np.ndarray:
    """Walls crossed by the straight paths from `source` to each target point (M x 2)."""
    if len(segments) == 0:
        return np.zeros(len(targets), dtype=np.int16)
    px, py = source
    dx = targets[:, 0:1] - px
    dy = targets[:, 1:2] - py
    ax, ay = segments[:, 0], segments[:, 1]
    ex, ey = segments[:, 2] - ax, segments[:, 3] - ay
    denominator = dx * ey - dy * ex
    apx, apy = ax - px, ay - py
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (apx * ey - apy * ex) / denominator
        u = (apx * dy - apy * dx) / denominator
    hit = (np.abs(denominator) > 1e-12) & (t > 1e-9) & (t < 1 - 1e-9) & (u >= 0) & (u < 1)
    return hit.sum(axis=1).astype(np.int16)


class WallGrid:
    """Wall counts from a set of source points (scanners) of one floor, on a regular grid."""

    def __init__(
        self,
        geometry: FloorGeometry,
        sources: Sequence[tuple[float, float]],
        resolution_m: float = 0.5,
    ):
        self.resolution = float(resolution_m)
        self.columns = max(1, int(np.ceil(geometry.width_m / self.resolution)))
        self.rows = max(1, int(np.ceil(geometry.height_m / self.resolution)))
        xs = (np.arange(self.columns) + 0.5) * self.resolution
        ys = (np.arange(self.rows) + 0.5) * self.resolution
        grid_x, grid_y = np.meshgrid(xs, ys)
        centres = np.column_stack([grid_x.ravel(), grid_y.ravel()])
        segments = wall_segments(geometry)
        # bytes: fast to index from pure Python, one byte per cell
        self.counts = [
            bytes(np.minimum(count_crossings(segments, source, centres), 255).astype(np.uint8))
            for source in sources
        ]
        # the same, as one array (source x cell) for the compiled solver
        self.count_grid = np.frombuffer(b"".join(self.counts), dtype=np.uint8).reshape(
            len(self.counts), self.rows * self.columns
        )

    def cell(self, x: float, y: float) -> int:
        column = int(x / self.resolution)
        row = int(y / self.resolution)
        column = 0 if column < 0 else (self.columns - 1 if column >= self.columns else column)
        row = 0 if row < 0 else (self.rows - 1 if row >= self.rows else row)
        return row * self.columns + column

    def walls(self, source_index: int, x: float, y: float) -> int:
        return self.counts[source_index][self.cell(x, y)]
