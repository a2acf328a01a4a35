"""Batching and per-tag-per-interval aggregation."""

import pytest

from scanners.edge import Aggregator, Batcher
from scanners.readings import RssiReading, iso_ms


class FakeClock:
    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_batcher_flushes_at_max_readings():
    batcher = Batcher(interval_s=10, max_readings=3, clock=FakeClock())
    assert batcher.add(1) is None
    assert batcher.add(2) is None
    assert batcher.add(3) == [1, 2, 3]
    assert len(batcher) == 0


def test_batcher_flushes_after_interval_from_first_reading():
    clock = FakeClock(100.0)
    batcher = Batcher(interval_s=1.0, max_readings=100, clock=clock)
    batcher.add("a")
    clock.now = 100.9
    batcher.add("b")
    assert batcher.due() is None
    clock.now = 101.0
    assert batcher.due() == ["a", "b"]
    assert batcher.due() is None


def test_aggregator_median_max_and_count_per_tag_per_window():
    aggregator = Aggregator(interval_s=2.0)
    emitted = []
    for ts, tag, rssi in [
        (10.0, "t1", -70),
        (10.5, "t1", -60),
        (11.0, "t1", -80),
        (11.5, "t2", -50),
        (11.9, "t1", -65),
    ]:
        emitted += aggregator.add(RssiReading(tag, rssi, ts))
    assert emitted == []
    emitted = aggregator.add(RssiReading("t1", -90, 12.1))
    by_tag = {r.tag: r for r in emitted}
    assert by_tag["t1"].rssi == -67.5
    assert by_tag["t1"].count == 4
    assert by_tag["t1"].rssi_max == -60
    assert by_tag["t1"].ts == 11.9
    assert by_tag["t2"].count == 1
    assert [r.count for r in aggregator.flush()] == [1]


def test_aggregator_max_statistic_and_flush_due():
    aggregator = Aggregator(interval_s=1.0, statistic="max")
    aggregator.add(RssiReading("t", -80, 5.2))
    aggregator.add(RssiReading("t", -70, 5.4))
    assert aggregator.flush_due(5.9) == []
    (reading,) = aggregator.flush_due(6.0)
    assert reading.rssi == -70


def test_aggregator_rejects_unknown_statistic():
    with pytest.raises(ValueError, match="statistic"):
        Aggregator(1.0, "mean")


def test_reading_json_matches_contract_and_stats_are_opt_in():
    reading = RssiReading("mac:AA:BB:CC:DD:EE:FF", -67.5, 1795939200.123, count=4, rssi_max=-60)
    assert reading.to_json() == {
        "tag": "mac:AA:BB:CC:DD:EE:FF",
        "rssi": -67.5,
        "ts": "2026-11-29T08:00:00.123Z",
    }
    assert reading.to_json(include_stats=True)["count"] == 4
    assert iso_ms(0) == "1970-01-01T00:00:00.000Z"


def test_aggregation_cuts_volume_for_a_10_hz_beacon():
    aggregator = Aggregator(interval_s=2.0)
    out = []
    for i in range(600):  # one minute of one tag at 10 Hz
        out += aggregator.add(RssiReading("t", -60 - (i % 7), 1000.0 + i / 10))
    out += aggregator.flush()
    assert len(out) == 30
    assert sum(r.count for r in out) == 600
