"""Warming up loads every compiled function the live engine calls, so a worker's first drain
compiles nothing."""

import json
import subprocess
import sys
from pathlib import Path

from tracking.localization.model import EngineConfig
from tracking.localization.warmup import warm_up

ROOT = Path(__file__).resolve().parents[3]

#: Run in a fresh interpreter: in this one, earlier tests have compiled the code already.
PROBE = """
import json, sys
import numba
from tracking.localization import engine, hypotheses, kalman, solver
from tracking.localization.model import EngineConfig
from tracking.localization.warmup import warm_up
from tracking.simulation.layout import generate_hospital
from tracking.simulation.radio import RadioSimulator
from tracking.localization import LocalizationEngine, SiteSpec

def compiled():
    found = {}
    for module in (engine, hypotheses, kalman, solver):
        for name, value in vars(module).items():
            if isinstance(value, numba.core.dispatcher.Dispatcher):
                found[f"{value.__module__}.{name}"] = sorted(map(str, value.signatures))
    return found

config = EngineConfig(self_calibration=sys.argv[1] == "calibrating")
before = compiled()
warm_up(config)
warmed = compiled()
document = generate_hospital(floors=2, rooms_per_side=6, assets_per_floor=10, seed=5)
simulator = RadioSimulator(document, seed=5)
readings, _ = simulator.run(120.0)
mobility = {state.tag: state.mobility for state in simulator.tags}
live = LocalizationEngine(SiteSpec.from_document(document), config, mobility.get)
estimates = sum(len(live.process(reading)) for reading in readings)
print(json.dumps({"before": before, "warmed": warmed, "after": compiled(), "estimates": estimates}))
"""


def probe(mode: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(result.stdout.splitlines()[-1])


def test_a_fresh_process_has_nothing_compiled_until_it_warms_up():
    report = probe("pipeline")
    assert report["before"], "no compiled functions found: the probe looks in the wrong modules"
    assert not any(report["before"].values())
    assert report["warmed"]["tracking.localization.kalman.step"]
    assert report["warmed"]["tracking.localization.hypotheses.zone_step"]


def test_after_warming_up_a_busier_site_compiles_nothing_more():
    for mode in ("pipeline", "calibrating"):
        report = probe(mode)
        assert report["estimates"] > 1000
        assert report["after"] == report["warmed"], mode


def test_warm_up_runs_its_small_ward_as_far_as_positions():
    assert warm_up(EngineConfig(self_calibration=False)) >= 4
