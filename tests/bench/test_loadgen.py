"""The benchmark's gateways post batches the ingestion API accepts, stamped as configured."""

import numpy as np
import pytest

from bench.loadgen import batch_body
from tracking.ingestion import validate_rssi_batch

NOW = 1_795_000_000.25
TAGS = np.array([f"ibeacon:f7826da6-4fa2-4e98-8024-bc5b71e0893e:1:{n}" for n in range(50)])


def posted(spread):
    rssi = np.full(len(TAGS), -70.0)
    body = batch_body("gw-1-7", TAGS, rssi, NOW, spread, np.random.default_rng(3))
    batch = validate_rssi_batch(body.encode(), now=NOW)
    assert batch.rejected == []
    assert batch.batch_id == "gw-1-7"
    return batch.readings


def test_readings_posted_as_heard_carry_the_send_time():
    assert [reading.ts for reading in posted(0.0)] == [pytest.approx(NOW, abs=0.001)] * len(TAGS)


def test_a_batching_gateways_readings_were_heard_during_the_interval_before_sending():
    stamps = [reading.ts for reading in posted(1.0)]
    assert all(NOW - 1.0 - 0.001 <= ts <= NOW + 0.001 for ts in stamps)
    assert max(stamps) - min(stamps) > 0.5  # spread over the second, not one moment
