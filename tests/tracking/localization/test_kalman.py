"""The compiled Kalman step (localization.kalman) against filterpy's KalmanFilter."""

import numpy as np
import pytest
from filterpy.kalman import KalmanFilter
from hypothesis import given, settings
from hypothesis import strategies as st

from tracking.localization import kalman

H = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])


def filterpy_step(x, p, dt, q, z, r, *, update=True):
    """The reference: filterpy's predict (and update) with the engine's motion model."""
    f = np.array([[1, dt, 0, 0], [0, 1, 0, 0], [0, 0, 1, dt], [0, 0, 0, 1]], dtype=float)
    block = np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]]) * q
    process = np.zeros((4, 4))
    process[0:2, 0:2] = block
    process[2:4, 2:4] = block
    kf = KalmanFilter(dim_x=4, dim_z=2)
    kf.H = H
    kf.x = np.array(x, dtype=float)
    kf.P = np.array(p, dtype=float).reshape(4, 4)
    kf.predict(F=f, Q=process)
    if update:
        kf.update(np.array(z), R=np.array(r))
    return kf.x, kf.P.ravel()


def covariance(draw, size, scale):
    """A random symmetric positive-definite matrix."""
    values = draw(st.lists(st.floats(-scale, scale), min_size=size * size, max_size=size * size))
    root = np.array(values).reshape(size, size)
    return root @ root.T + np.eye(size) * (0.01 * scale)


@st.composite
def steps(draw):
    x = draw(st.lists(st.floats(-50, 50), min_size=4, max_size=4))
    p = covariance(draw, 4, 3.0)
    r = covariance(draw, 2, 4.0)
    dt = round(draw(st.floats(0.001, 30.0)), 2) or 0.01
    q = draw(st.floats(1e-4, 2.0))
    z = draw(st.lists(st.floats(-50, 50), min_size=2, max_size=2))
    return x, p, dt, q, z, r


@settings(max_examples=300, deadline=None)
@given(steps())
def test_a_step_within_the_gate_is_filterpys_predict_and_update(case):
    x, p, dt, q, z, r = case
    new_x, new_p, _nis = kalman.step(
        np.array(x), p.ravel(), dt, q, z[0], z[1], r[0, 0], r[0, 1], r[1, 1], np.inf
    )
    expected_x, expected_p = filterpy_step(x, p, dt, q, z, r)
    np.testing.assert_allclose(new_x, expected_x, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(new_p, expected_p, rtol=1e-9, atol=1e-9)


@settings(max_examples=100, deadline=None)
@given(steps())
def test_the_nis_is_the_fits_mahalanobis_distance_from_the_prediction(case):
    x, p, dt, q, z, r = case
    *_, nis = kalman.step(
        np.array(x), p.ravel(), dt, q, z[0], z[1], r[0, 0], r[0, 1], r[1, 1], np.inf
    )
    predicted_x, predicted_p = filterpy_step(x, p, dt, q, z, r, update=False)
    innovation = np.array(z) - H @ predicted_x
    s = H @ predicted_p.reshape(4, 4) @ H.T + r
    assert nis == pytest.approx(innovation @ np.linalg.solve(s, innovation), rel=1e-8, abs=1e-9)


def test_a_fit_outside_the_gate_leaves_the_prediction():
    """Far from where the filter expects the tag: no update, the predicted state is carried."""
    x, p = [1.0, 0.5, 2.0, 0.0], np.eye(4) * 0.5
    r = np.array([[1.0, 0.2], [0.2, 1.5]])
    z = [40.0, -30.0]
    new_x, new_p, nis = kalman.step(np.array(x), p.ravel(), 2.0, 0.05, *z, 1.0, 0.2, 1.5, 9.0)
    assert nis > 9.0
    predicted_x, predicted_p = filterpy_step(x, p, 2.0, 0.05, z, r, update=False)
    np.testing.assert_allclose(new_x, predicted_x, rtol=1e-12)
    np.testing.assert_allclose(new_p, predicted_p, rtol=1e-12)
    assert new_x[0] == pytest.approx(2.0)  # moved on by its velocity: 1 + 0.5 * 2


def test_a_fit_inside_the_gate_pulls_the_state_towards_it():
    x, p = [0.0, 0.0, 0.0, 0.0], np.eye(4)
    new_x, new_p, nis = kalman.step(np.array(x), p.ravel(), 1.0, 0.1, 1.0, -1.0, 1.0, 0.0, 1.0, 9.0)
    assert nis < 9.0
    assert 0.0 < new_x[0] < 1.0
    assert -1.0 < new_x[2] < 0.0
    # predicted variance 2.03 (1 + dt^2 * 1 + q dt^3 / 3), the fit's 1.0: the blend is below both
    assert new_p[0] < 1.0


def test_the_compiled_step_is_the_interpreted_one():
    arguments = (np.array([1.0, 0.2, 3.0, -0.1]), np.eye(4).ravel() * 2.0, 1.5, 0.2)
    fit = (2.0, 2.5, 1.2, 0.3, 0.9, 9.0)
    for got, expected in zip(
        kalman.step(*arguments, *fit), kalman.step.py_func(*arguments, *fit), strict=True
    ):
        np.testing.assert_allclose(got, expected, rtol=1e-13)
