"""The position maths on known geometry, without noise."""

import math

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hospital.geometry import FloorGeometry, ZoneShape
from tracking.localization.solver import (
    Measurement,
    compiled,
    fit_in_boxes,
    gauss_newton,
    pack,
    solution,
    solve,
    weighted_centroid,
)
from tracking.localization.walls import WallGrid

SQUARE = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0), (10.0, 10.0)]
BOUNDS = (0.0, 0.0, 10.0, 10.0)


def exact(tag, scanners=SQUARE, p0=-59.0, exponent=2.0, dz=1.5, offset=0.0):
    """Noise-free log-distance RSSI for a tag at `tag`."""
    return [
        Measurement(
            x=sx,
            y=sy,
            dz=dz,
            p0=p0,
            exponent=exponent,
            rssi=p0
            + offset
            - 10 * exponent * math.log10(math.dist(tag, (sx, sy)) ** 2 + dz**2) / 2,
            variance=16.0,
        )
        for sx, sy in scanners
    ]


@pytest.mark.parametrize("tag", [(3.0, 4.0), (5.0, 5.0), (9.0, 1.0), (0.5, 7.5)])
def test_exact_ranges_give_the_exact_point(tag):
    measurements = exact(tag)
    fit = solve(measurements, weighted_centroid(measurements), BOUNDS, prior=None)
    assert fit.x == pytest.approx(tag[0], abs=0.05)
    assert fit.y == pytest.approx(tag[1], abs=0.05)
    assert fit.cost == pytest.approx(0.0, abs=1e-3)


def test_a_tag_louder_than_nominal_is_explained_by_its_own_offset_not_a_wrong_position():
    measurements = exact((3.0, 4.0), offset=4.0)
    fit = solve(
        measurements, (5.0, 5.0), BOUNDS, prior=None, max_iterations=30, tag_offset_sigma_db=1e3
    )
    assert (fit.x, fit.y) == pytest.approx((3.0, 4.0), abs=0.1)
    assert fit.tag_offset == pytest.approx(4.0, abs=0.2)


def test_symmetric_readings_put_the_tag_in_the_middle():
    measurements = exact((5.0, 5.0))
    assert weighted_centroid(measurements) == pytest.approx((5.0, 5.0))
    fit = solve(measurements, (2.0, 8.0), BOUNDS, prior=None, max_iterations=30, tolerance_m=1e-6)
    assert (fit.x, fit.y) == pytest.approx((5.0, 5.0), abs=0.05)
    var_x, cov_xy, var_y = fit.covariance
    assert var_x == pytest.approx(var_y, rel=1e-6)
    assert cov_xy == pytest.approx(0.0, abs=1e-9)


def test_the_answer_stays_inside_the_bounds():
    measurements = exact((9.5, 9.5))
    fit = solve(measurements, (5.0, 5.0), (0.0, 0.0, 6.0, 6.0), prior=None)
    assert 0.0 <= fit.x <= 6.0
    assert 0.0 <= fit.y <= 6.0


def test_one_scanner_stays_at_the_scanner_with_a_large_uncertainty():
    measurements = exact((3.0, 3.0), scanners=[(5.0, 5.0)])
    fit = solve(measurements, weighted_centroid(measurements), BOUNDS, prior=(5.0, 5.0, 6.0, 6.0))
    assert (fit.x, fit.y) == pytest.approx((5.0, 5.0), abs=0.01)
    assert math.sqrt(fit.covariance[0]) > 3.0


def test_fixed_wall_losses_are_part_of_the_model():
    tag = (3.0, 4.0)
    measurements = exact(tag)
    measurements[1].rssi -= 5.0  # a wall between the tag and the second scanner
    fit = solve(measurements, (5, 5), BOUNDS, wall_losses=[0, 5.0, 0, 0], prior=None)
    assert (fit.x, fit.y) == pytest.approx(tag, abs=0.05)


def test_a_wall_loss_per_measurement_is_required():
    with pytest.raises(ValueError, match="2 wall losses for 4 measurements"):
        solve(exact((3.0, 4.0)), (5, 5), BOUNDS, wall_losses=[0, 5.0], prior=None)


scanner = st.tuples(st.floats(0.0, 40.0), st.floats(0.0, 20.0))


@settings(max_examples=200, deadline=None)
@given(
    scanners=st.lists(scanner, min_size=1, max_size=12),
    rssi=st.lists(st.floats(-100.0, -40.0), min_size=12, max_size=12),
    walls=st.lists(st.sampled_from([0.0, 4.0, 8.0]), min_size=12, max_size=12),
    start=scanner,
    prior=st.none() | st.tuples(st.floats(0, 40), st.floats(0, 20), st.floats(0.3, 8)),
)
def test_the_compiled_fit_is_the_interpreted_fit(scanners, rssi, walls, start, prior):
    measurements = [
        Measurement(x=x, y=y, dz=1.5, p0=-59.0, exponent=2.2, rssi=value, variance=9.0 + i)
        for i, ((x, y), value) in enumerate(zip(scanners, rssi, strict=False))
    ]
    rows = pack(measurements)
    losses = np.array(walls[: len(rows)])
    arguments = (rows, losses, *start, 0.0, 0.0, 40.0, 20.0, 1.5, 1 / 9.0, prior is not None)
    arguments += (prior[0], prior[1], 1 / prior[2] ** 2, 1 / prior[2] ** 2) if prior else (0,) * 4
    arguments += (8, 0.05)
    fast = gauss_newton(*arguments)
    interpreted = gauss_newton.py_func(*arguments)
    assert fast[7] == interpreted[7]
    assert fast[:7] == pytest.approx(interpreted[:7], rel=1e-9, abs=1e-9)


def test_fits_in_boxes_take_each_start_cells_wall_losses():
    geometry = FloorGeometry(
        10.0,
        5.0,
        [
            ZoneShape("A", "room", ((0, 0), (5, 0), (5, 5), (0, 5))),
            ZoneShape("B", "room", ((5, 0), (10, 0), (10, 5), (5, 5))),
        ],
    )
    scanners = [(2.5, 2.5), (7.5, 2.5), (9.0, 4.0)]
    walls = WallGrid(geometry, scanners)
    measurements = [
        Measurement(x=x, y=y, dz=1.5, p0=-59.0, exponent=2.0, rssi=rssi, variance=16.0)
        for (x, y), rssi in zip(scanners, (-62.0, -71.0, -75.0), strict=True)
    ]
    starts = [(1.0, 1.0), (6.0, 4.9), (9.99, 0.01)]
    boxes = [(0.0, 0.0, 5.0, 5.0), (5.0, 0.0, 10.0, 5.0), (0.0, 0.0, 10.0, 5.0)]
    priors = [(2.5, 2.5, 1.5, 1.5), (7.5, 2.5, 1.5, 1.5), (5.0, 2.5, 4.0, 4.0)]
    fits = fit_in_boxes(
        pack(measurements), np.arange(3), walls.count_grid, 6.0, walls.resolution,
        walls.columns, walls.rows, np.array(starts), np.array(boxes), np.array(priors),
        1.5, 1 / 9.0, 8, 0.05,
    )  # fmt: skip
    for fit, start, box, prior in zip(fits, starts, boxes, priors, strict=True):
        losses = [6.0 * walls.walls(i, *start) for i in range(3)]
        alone = solve(measurements, start, box, wall_losses=losses, prior=prior)
        assert solution(fit.tolist()) == alone
    assert walls.walls(1, *starts[0]) == 1  # the starts do see different walls


def test_without_a_writable_cache_the_solver_compiles_per_process(monkeypatch):
    monkeypatch.setattr(numba.core.caching.CacheImpl, "_locator_classes", [])

    def add(a, b):
        return a + b

    with pytest.raises(RuntimeError, match="no locator available"):
        numba.njit(cache=True)(add)
    assert compiled(add)(2.0, 3.0) == 5.0
