"""One step of the tags' constant-velocity Kalman filter, compiled.

State (x, vx, y, vy); the measurement is a position fit (x, y) with its 2 x 2 covariance. The
step is filterpy's `KalmanFilter.predict` then `update` with H = [[1, 0, 0, 0], [0, 0, 1, 0]],
the same formulas in the same order (predict: x = F x, P = F P F' + Q; update: the Joseph form
P = (I - K H) P (I - K H)' + K R K'), and the tests hold it to filterpy's results. A worker takes
a step per solve, thousands a second: through filterpy's general matrices that was a fifth of a
worker's CPU (docs/performance.md, ninth session); compiled, the same arithmetic costs a fraction.

Between predict and update the step computes the normalised innovation squared (NIS) and skips
the update when it exceeds the gate, so the engine can count gate failures; the predicted state
is then what the filter carries.
"""

from __future__ import annotations

import numpy as np

from tracking.localization.solver import compiled


@compiled
def motion(dt: float, q: float) -> tuple[np.ndarray, np.ndarray]:
    """Transition F and process noise Q (white-noise acceleration of intensity q per axis)."""
    f = np.eye(4)
    f[0, 1] = dt
    f[2, 3] = dt
    process = np.zeros((4, 4))
    for start in (0, 2):
        process[start, start] = dt**3 / 3 * q
        process[start, start + 1] = dt**2 / 2 * q
        process[start + 1, start] = dt**2 / 2 * q
        process[start + 1, start + 1] = dt * q
    return f, process


@compiled
def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    rows, inner, columns = a.shape[0], a.shape[1], b.shape[1]
    result = np.zeros((rows, columns))
    for i in range(rows):
        for j in range(columns):
            total = 0.0
            for k in range(inner):
                total += a[i, k] * b[k, j]
            result[i, j] = total
    return result


@compiled
def step(
    x: np.ndarray,
    p: np.ndarray,
    dt: float,
    q: float,
    zx: float,
    zy: float,
    var_x: float,
    cov_xy: float,
    var_y: float,
    gate: float,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Predict over `dt`, then update with the fit unless its NIS exceeds `gate`.

    `x` has 4 elements and `p` 16 (row-major 4 x 4); returns the new (x, p) in the same shapes
    and the NIS of the fit against the prediction."""
    f, process = motion(dt, q)
    state = np.empty((4, 1))
    for i in range(4):
        state[i, 0] = x[i]
    covariance = p.reshape((4, 4))
    state = _product(f, state)
    covariance = _product(_product(f, covariance), f.T) + process

    ix = zx - state[0, 0]
    iy = zy - state[2, 0]
    s11 = covariance[0, 0] + var_x
    s12 = covariance[0, 2] + cov_xy
    s22 = covariance[2, 2] + var_y
    nis = (s22 * ix * ix - 2 * s12 * ix * iy + s11 * iy * iy) / max(s11 * s22 - s12 * s12, 1e-12)
    if nis <= gate:
        h = np.zeros((2, 4))
        h[0, 0] = 1.0
        h[1, 2] = 1.0
        r = np.empty((2, 2))
        r[0, 0], r[0, 1], r[1, 0], r[1, 1] = var_x, cov_xy, cov_xy, var_y
        pht = _product(covariance, h.T)
        s = _product(h, pht) + r
        det = s[0, 0] * s[1, 1] - s[0, 1] * s[1, 0]
        s_inverse = np.empty((2, 2))
        s_inverse[0, 0] = s[1, 1] / det
        s_inverse[0, 1] = -s[0, 1] / det
        s_inverse[1, 0] = -s[1, 0] / det
        s_inverse[1, 1] = s[0, 0] / det
        gain = _product(pht, s_inverse)
        innovation = np.empty((2, 1))
        innovation[0, 0] = ix
        innovation[1, 0] = iy
        state = state + _product(gain, innovation)
        i_kh = np.eye(4) - _product(gain, h)
        covariance = _product(_product(i_kh, covariance), i_kh.T) + _product(
            _product(gain, r), gain.T
        )
    return state.ravel(), covariance.ravel(), nis
