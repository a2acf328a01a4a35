"""Load (or compile) the engine's numba code before a worker takes its first reading.

numba compiles a function on its first call, or loads it from the on-disk cache: about 9 s of
CPU cold (a fresh install, or a release that changed solver.py, hypotheses.py or kalman.py),
about 0.4 s from the cache. Paid inside a shard's first drain, that stalls the shard, and a
drain is bounded in time (tracking.pipeline.DRAIN_SLICE_S). Celery workers call `warm_up` when
they start (tracking.tasks), before the prefork pool forks, so the children inherit the code.
"""

from __future__ import annotations

from tracking.localization.engine import LocalizationEngine
from tracking.localization.model import EngineConfig, SiteSpec
from tracking.simulation.layout import generate_hospital
from tracking.simulation.radio import RadioSimulator

#: Long enough for every tag to be placed and tracked (solve, zone update, Kalman step).
WARM_UP_TRACE_S = 20.0


def warm_up(config: EngineConfig) -> int:
    """Run a small simulated ward through an engine built with `config`; returns its estimates.

    A real trace rather than hand-picked calls: the compiled functions then see exactly the
    argument types that the live engine passes, so no signature is left to compile later.
    """
    document = generate_hospital(floors=1, rooms_per_side=3, assets_per_floor=4, seed=0)
    simulator = RadioSimulator(document, seed=0)
    readings, _truth = simulator.run(WARM_UP_TRACE_S)
    mobility = {state.tag: state.mobility for state in simulator.tags}
    engine = LocalizationEngine(SiteSpec.from_document(document), config, mobility.get)
    estimates = 0
    for reading in readings:
        estimates += len(engine.process(reading))
    return estimates
