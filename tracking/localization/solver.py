"""Position from smoothed RSSI: weighted robust non-linear least squares in the dB domain.

Under log-normal shadowing the maximum-likelihood fit compares RSSI values, not ranges in metres,
so the residual of scanner i is ``rssi_i - model_i(x, y, b)`` with the log-distance model

    model_i = p0_i + b - 10 n_i log10(d_i) - wall_loss * walls_i(x, y)

where d_i includes the scanner's mounting height above the tag, p0_i is the scanner's calibrated
1 m power and b is the tag's own transmit-power offset (a nuisance parameter with a Gaussian prior,
because tags of one model still differ by a few dB). Gauss-Newton with Huber re-weighting and a
projection onto a rectangle (the floor, or one zone) after every step. The loop is compiled with
numba: for ten scanners numpy's per-call overhead would cost more than the arithmetic, and
interpreted it was a quarter of a worker's CPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

LN10_OVER_10 = math.log(10.0) / 10.0
TEN_OVER_LN10 = 10.0 / math.log(10.0)


@dataclass
class Measurement:
    """One scanner's evidence about one tag, ready for the solver."""

    x: float
    y: float
    dz: float
    p0: float
    exponent: float
    rssi: float
    variance: float
    source_index: int = -1


@dataclass
class Solution:
    x: float
    y: float
    tag_offset: float
    cost: float
    covariance: tuple[float, float, float]  # var_x, cov_xy, var_y
    iterations: int


def weighted_centroid(measurements: Sequence[Measurement]) -> tuple[float, float]:
    """Scanner positions weighted by received power in milliwatts relative to the strongest,
    sharpened (power 0.5 of linear power ~ 1/d for n=2) so one loud scanner dominates gracefully."""
    return centroid_of([(m.x, m.y, m.rssi - m.p0) for m in measurements])


def centroid_of(points: Sequence[tuple[float, float, float]]) -> tuple[float, float]:
    """`weighted_centroid` of (x, y, rssi - p0) triples."""
    strongest = max(excess for _x, _y, excess in points)
    total = wx = wy = 0.0
    for x, y, excess in points:
        weight = 10.0 ** ((excess - strongest) / 20.0)
        total += weight
        wx += weight * x
        wy += weight * y
    return wx / total, wy / total


def compiled(function):
    """numba.njit, cached on disk where numba finds a writable place (next to this file, the
    user's cache, or NUMBA_CACHE_DIR); else compiled afresh in each process (a second or so at
    the first solve) rather than failing to import on a read-only installation."""
    try:
        return numba.njit(cache=True, nogil=True)(function)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(nogil=True)(function)


def solve_packed(
    rows: np.ndarray,
    start: tuple[float, float],
    bounds: tuple[float, float, float, float],
    *,
    wall_losses: Sequence[float] | None = None,
    huber_k: float = 1.5,
    tag_offset_sigma_db: float = 3.0,
    prior: tuple[float, float, float, float] | None = None,
    max_iterations: int = 8,
    tolerance_m: float = 0.05,
) -> Solution:
    """`solve` on rows made once by `pack` (several zone fits share them)."""
    if prior is not None:
        prior_x, prior_y, prior_sx, prior_sy = prior
        inv_px = 1.0 / (prior_sx * prior_sx)
        inv_py = 1.0 / (prior_sy * prior_sy)
    else:
        prior_x = prior_y = inv_px = inv_py = 0.0
    losses = (
        np.zeros(len(rows)) if wall_losses is None else np.asarray(wall_losses, dtype=np.float64)
    )
    if len(losses) != len(rows):
        raise ValueError(f"{len(losses)} wall losses for {len(rows)} measurements")
    x, y, b, cost, var_x, cov_xy, var_y, iterations = gauss_newton(
        rows,
        losses,
        float(start[0]),
        float(start[1]),
        *(float(v) for v in bounds),
        huber_k,
        1.0 / (tag_offset_sigma_db * tag_offset_sigma_db),
        prior is not None,
        prior_x,
        prior_y,
        inv_px,
        inv_py,
        max_iterations,
        tolerance_m,
    )
    return Solution(x, y, b, cost, (var_x, cov_xy, var_y), iterations)


@compiled
def gauss_newton(
    rows,
    losses,
    x,
    y,
    xmin,
    ymin,
    xmax,
    ymax,
    huber_k,
    inv_b,
    has_prior,
    prior_x,
    prior_y,
    inv_px,
    inv_py,
    max_iterations,
    tolerance_m,
):
    """The fit's inner loop, compiled (numba): interpreted, it was a quarter of a worker's CPU.

    Returns (x, y, tag offset, cost, var_x, cov_xy, var_y, iterations). `gauss_newton.py_func`
    is the same code interpreted, which the tests compare it with.
    """
    x = min(max(x, xmin), xmax)
    y = min(max(y, ymin), ymax)
    b = 0.0
    damping = 1e-3
    h11 = h12 = h22 = h13 = h23 = h33 = 0.0
    cost = 0.0
    iteration = 0
    for iteration in range(1, max_iterations + 1):  # noqa: B007
        h11 = h12 = h22 = h13 = h23 = 0.0
        h33 = inv_b
        g1 = g2 = 0.0
        g3 = -inv_b * b
        cost = inv_b * b * b
        for i in range(rows.shape[0]):
            dx = x - rows[i, 0]
            dy = y - rows[i, 1]
            d2 = dx * dx + dy * dy + rows[i, 2]
            residual = rows[i, 3] + losses[i] - b + rows[i, 4] * math.log(d2)
            scaled = abs(residual) / rows[i, 7]
            weight = rows[i, 6]
            if scaled > huber_k:
                weight *= huber_k / scaled
                cost += 2.0 * huber_k * scaled - huber_k * huber_k
            else:
                cost += scaled * scaled
            slope = rows[i, 5] / d2
            jx = slope * dx
            jy = slope * dy
            # residual = rssi - predicted; d(predicted)/d(x,y,b) = (jx, jy, 1)
            h11 += weight * jx * jx
            h12 += weight * jx * jy
            h22 += weight * jy * jy
            h13 += weight * jx
            h23 += weight * jy
            h33 += weight
            g1 += weight * jx * residual
            g2 += weight * jy * residual
            g3 += weight * residual
        if has_prior:
            h11 += inv_px
            h22 += inv_py
            g1 -= inv_px * (x - prior_x)
            g2 -= inv_py * (y - prior_y)
            cost += inv_px * (x - prior_x) ** 2 + inv_py * (y - prior_y) ** 2
        a11 = h11 * (1 + damping) + 1e-9
        a22 = h22 * (1 + damping) + 1e-9
        a33 = h33 * (1 + damping)
        # the symmetric 3x3 system A s = g by Cramer's rule; stop when singular
        c11 = a22 * a33 - h23 * h23
        c12 = h13 * h23 - h12 * a33
        c13 = h12 * h23 - h13 * a22
        det = a11 * c11 + h12 * c12 + h13 * c13
        if abs(det) < 1e-18:
            break
        c22 = a11 * a33 - h13 * h13
        c23 = h12 * h13 - a11 * h23
        c33 = a11 * a22 - h12 * h12
        sx = (c11 * g1 + c12 * g2 + c13 * g3) / det
        sy = (c12 * g1 + c22 * g2 + c23 * g3) / det
        sb = (c13 * g1 + c23 * g2 + c33 * g3) / det
        length = math.hypot(sx, sy)
        if length > 5.0:  # trust region: the model is very non-linear close to a scanner
            sx, sy, sb = sx * 5.0 / length, sy * 5.0 / length, sb * 5.0 / length
        new_x = min(max(x + sx, xmin), xmax)
        new_y = min(max(y + sy, ymin), ymax)
        moved = math.hypot(new_x - x, new_y - y)
        x, y, b = new_x, new_y, b + sb
        if moved < tolerance_m and abs(sb) < 0.2:
            break
    # position block of the inverse information matrix, tag offset marginalised out (Schur
    # complement H_pp - H_pb H_bb^-1 H_bp)
    s11 = h11 - h13 * h13 / h33
    s12 = h12 - h13 * h23 / h33
    s22 = h22 - h23 * h23 / h33
    det = s11 * s22 - s12 * s12
    if det <= 1e-12:
        return x, y, b, cost, 1e4, 0.0, 1e4, iteration
    return x, y, b, cost, s22 / det, -s12 / det, s11 / det, iteration


@compiled
def fit_in_boxes(
    rows,
    sources,
    wall_counts,
    wall_loss,
    resolution,
    columns,
    grid_rows,
    starts,
    boxes,
    priors,
    huber_k,
    inv_b,
    max_iterations,
    tolerance_m,
):
    """One fit per (start, box, prior) row, e.g. one per candidate zone, in one compiled call.

    The wall losses of each fit are those from the scanners (`sources`, rows of `wall_counts`,
    a `WallGrid`'s counts) to the grid cell of its start, as `WallGrid.cell` finds it. Returns
    one row per fit: (x, y, tag offset, cost, var_x, cov_xy, var_y, iterations).
    """
    fits = np.empty((starts.shape[0], 8))
    losses = np.empty(rows.shape[0])
    for j in range(starts.shape[0]):
        x = starts[j, 0]
        y = starts[j, 1]
        column = min(max(int(x / resolution), 0), columns - 1)
        row = min(max(int(y / resolution), 0), grid_rows - 1)
        cell = row * columns + column
        for i in range(rows.shape[0]):
            losses[i] = wall_loss * wall_counts[sources[i], cell]
        x, y, tag_offset, cost, var_x, cov_xy, var_y, iterations = gauss_newton(
            rows,
            losses,
            x,
            y,
            boxes[j, 0],
            boxes[j, 1],
            boxes[j, 2],
            boxes[j, 3],
            huber_k,
            inv_b,
            True,
            priors[j, 0],
            priors[j, 1],
            1.0 / (priors[j, 2] * priors[j, 2]),
            1.0 / (priors[j, 3] * priors[j, 3]),
            max_iterations,
            tolerance_m,
        )
        fits[j, 0] = x
        fits[j, 1] = y
        fits[j, 2] = tag_offset
        fits[j, 3] = cost
        fits[j, 4] = var_x
        fits[j, 5] = cov_xy
        fits[j, 6] = var_y
        fits[j, 7] = iterations
    return fits


def solution(fit: Sequence[float]) -> Solution:
    """A row of `fit_in_boxes` (as a list: numpy scalars would leak into the results) as a
    Solution."""
    x, y, tag_offset, cost, var_x, cov_xy, var_y, iterations = fit
    return Solution(x, y, tag_offset, cost, (var_x, cov_xy, var_y), int(iterations))


def slopes(exponent: float) -> tuple[float, float]:
    """The two path-loss columns of a solver row for path-loss exponent n: 5 n / ln 10 (the
    model's term per natural log of the squared distance) and -10 n / ln 10 (its slope)."""
    return 5.0 * exponent / math.log(10.0), -TEN_OVER_LN10 * exponent


def pack(measurements: Sequence[Measurement]) -> np.ndarray:
    """The rows of the inner loop, one per measurement:
    (x, y, dz^2, rssi - p0, 5 n / ln 10, -10 n / ln 10, 1 / variance, sigma)."""
    return np.array(
        [
            (
                m.x,
                m.y,
                m.dz * m.dz,
                m.rssi - m.p0,
                *slopes(m.exponent),
                1.0 / m.variance,
                math.sqrt(m.variance),
            )
            for m in measurements
        ],
        dtype=np.float64,
    ).reshape(-1, 8)


def solve(
    measurements: Sequence[Measurement],
    start: tuple[float, float],
    bounds: tuple[float, float, float, float],
    **options,
) -> Solution:
    """Minimise the robust weighted dB misfit over (x, y, tag offset) inside `bounds`.

    Options are those of `solve_packed`: `wall_losses` (dB per measurement, held fixed during the
    fit: inside one zone they hardly change), `prior` (x, y, sigma_x, sigma_y): a Gaussian pull,
    weak around the strongest scanners to keep one- and two-scanner problems well posed (large
    covariance then), or the zone's own extent when fitting inside one zone (a uniform position
    in the room, moment-matched); None for a pure data fit. `huber_k`, `tag_offset_sigma_db`,
    `max_iterations`, `tolerance_m`.
    """
    return solve_packed(pack(measurements), start, bounds, **options)
