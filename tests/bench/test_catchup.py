"""The catch-up benchmark's spool: one batch per second of the outage, each sensor once per
interval, nothing taken after the outage ended."""

import math
from datetime import datetime
from itertools import pairwise

from bench.catchup import fill_spool
from scanners.spool import Spool


def test_an_outage_is_spooled_as_one_batch_per_second_of_each_sensors_readings(tmp_path):
    spool = Spool(tmp_path / "spool.sqlite3")
    end = 1_800_000_000.0
    sensors = [f"fridge-{n}" for n in range(25)]
    spooled = fill_spool(spool, sensors, outage_s=60, interval_s=10.0, end=end)

    batches = spool.peek(1000)
    readings = [reading for batch in batches for reading in batch.readings]
    assert spooled == len(readings) == 25 * 6
    assert len(batches) == 60
    for serial in sensors:
        times = [
            datetime.fromisoformat(r["ts"]).timestamp() for r in readings if r["sensor"] == serial
        ]
        assert [later - earlier for earlier, later in pairwise(times)] == [10.0] * 5
        assert min(times) >= end - 60
        assert max(times) < end
    for batch in batches:
        seconds = {
            math.floor(datetime.fromisoformat(r["ts"]).timestamp() - end) for r in batch.readings
        }
        assert len(seconds) == 1
