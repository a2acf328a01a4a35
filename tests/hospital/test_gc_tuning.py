"""Worker garbage collection: the start-up heap is frozen and the thresholds raised, or, turned
off, CPython's collector is left exactly as it was. Each case runs in a fresh interpreter, so the
test process's own collector is not touched."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def collector_after(thresholds) -> dict:
    probe = (
        "import gc, json, sys; from hospital import gc_tuning;"
        f"frozen = gc_tuning.tune({thresholds!r});"
        "print(json.dumps({'returned': frozen, 'frozen': gc.get_freeze_count(),"
        "'thresholds': gc.get_threshold()}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_the_start_up_heap_is_frozen_and_the_thresholds_set():
    collector = collector_after((10_000, 10, 10))
    assert collector["thresholds"] == [10_000, 10, 10]
    assert collector["frozen"] > 1000
    assert collector["returned"] == collector["frozen"]


def test_turned_off_the_collector_keeps_cpythons_settings_and_freezes_nothing():
    collector = collector_after(None)
    assert collector["thresholds"] == [700, 10, 10]
    assert collector["frozen"] == collector["returned"] == 0
