"""Wardwise localization engine: BLE RSSI readings in, floor / x, y / zone / accuracy out.

Pure Python (numpy, numba for the hot loops, shapely via hospital.geometry); no Django, so
the live Celery pipeline, `manage.py replay`, the benchmark and unit tests share one code path.

Public API::

    site = SiteSpec.from_document(site_document)          # contract section-1 dict
    engine = LocalizationEngine(site, EngineConfig(), mobility_for_tag=lambda tag: "parked")
    for reading in readings:                              # Reading(ts, scanner, tag, rssi)
        for estimate in engine.process(reading):          # Estimate(ts, tag, floor, x, y,
            ...                                           #          zone, accuracy_m, ...)
    engine.flush(last_ts)                                 # pending updates at end of a trace
    state = engine.export_state(tag); engine.import_state(tag, state)   # JSON-able, per tag
    engine.export_calibration() / import_calibration(...)              # learned scanner offsets

`tracking.localization.replay.replay_file(site, trace, out)` replays a contract section-2 trace.
How it works and how well: docs/localization.md.
"""

from tracking.localization.engine import LocalizationEngine
from tracking.localization.model import (
    EngineConfig,
    Estimate,
    FloorSpec,
    Reading,
    ScannerSpec,
    SiteSpec,
)

__all__ = [
    "EngineConfig",
    "Estimate",
    "FloorSpec",
    "LocalizationEngine",
    "Reading",
    "ScannerSpec",
    "SiteSpec",
]
