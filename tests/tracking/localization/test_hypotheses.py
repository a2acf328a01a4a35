"""The compiled zone update (hypotheses.zone_step) against the same code interpreted."""

import numpy as np
import pytest

from tracking.localization import EngineConfig, LocalizationEngine, SiteSpec
from tracking.localization import engine as engine_module
from tracking.localization.hypotheses import zone_step
from tracking.simulation.layout import generate_hospital
from tracking.simulation.radio import RadioConfig, RadioSimulator


def test_every_zone_update_of_a_simulated_trace_is_the_interpreted_one(monkeypatch):
    """Each call the engine makes is run compiled and interpreted: same candidates in the same
    order, the same posterior and fits (to rounding), and at least one call had a posterior to
    carry and more than one candidate, so the transition prior and the normalising were used."""
    calls = {"count": 0, "with_history": 0, "contested": 0}

    def both(*arguments):
        fast = zone_step(*arguments)
        interpreted = zone_step.py_func(*arguments)
        np.testing.assert_array_equal(fast[0], interpreted[0])
        for got, expected in zip(fast[1:], interpreted[1:], strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
        calls["count"] += 1
        calls["with_history"] += len(arguments[23]) > 0
        calls["contested"] += len(fast[0]) > 1
        return fast

    monkeypatch.setattr(engine_module, "zone_step", both)
    document = generate_hospital(floors=1, rooms_per_side=4, assets_per_floor=6, seed=4)
    simulator = RadioSimulator(document, RadioConfig(), seed=4)
    readings, _truth = simulator.run(40.0)
    engine = LocalizationEngine(SiteSpec.from_document(document), EngineConfig())
    estimates = [e for reading in readings for e in engine.process(reading)]
    assert estimates
    assert calls["count"] == len(estimates)
    assert calls["with_history"] > 0
    assert calls["contested"] > 0


def test_no_candidate_zone_returns_the_free_fit():
    """A floor whose grid knows no zone and a tag with no zone and no history: nothing to weigh,
    and the fit over the whole floor is the answer."""
    rows = np.array([[2.0, 2.0, 2.56, -10.0, 4.78, -9.55, 1 / 16, 4.0]])
    arguments = (
        rows, np.array([0]), np.zeros((1, 4), dtype=np.uint8), 4.5, 5.0, 2, 2,
        2.0, 2.0, 2.0, 2.0, 6.0, np.array([0.0, 0.0, 10.0, 10.0]),
        np.full(4, -1), np.zeros((1, 4)), np.zeros((1, 4)), np.zeros(1),
        np.zeros((1, 1), dtype=np.bool_), np.zeros(1, dtype=np.int64), np.full(1, -1),
        np.ones((1, 1)), np.full(1, -1), -1, np.empty(0, dtype=np.int64), np.empty(0),
        0.1, 4, 1e-4, 1.0, 1.0, 1.0, 3.0, 1.5, 1 / 9, 5, 0.05,
    )  # fmt: skip
    candidates, posterior, fits, free = zone_step(*arguments)
    assert len(candidates) == len(posterior) == len(fits) == 0
    assert 0.0 <= free[0] <= 10.0
    assert 0.0 <= free[1] <= 10.0
    assert free.tolist() == pytest.approx(zone_step.py_func(*arguments)[3].tolist())
