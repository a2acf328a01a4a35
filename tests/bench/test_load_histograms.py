"""bench.load reads the workers' histograms over its measurement window, as Prometheus would."""

import pytest

from bench.load import bucket_counts, bucket_quantiles, wait_text

BOUNDS = (0.5, 1.0, 2.0)


def test_bucket_counts_are_read_by_le_from_the_stored_fields():
    counters = {
        'reading_wait_seconds_bucket|{"le": "0.5"}': 3.0,
        'reading_wait_seconds_bucket|{"le": "+Inf"}': 1.0,
        "reading_wait_seconds_sum": 9.0,
        'drain_seconds_bucket|{"le": "0.1"}': 7.0,
        "readings_processed_total": 4.0,
    }
    assert bucket_counts(counters, "reading_wait_seconds") == {"0.5": 3.0, "+Inf": 1.0}
    assert bucket_counts(counters, "drain_seconds") == {"0.1": 7.0}


def test_quantiles_count_only_what_the_window_added_and_interpolate_within_a_bucket():
    before = {"0.5": 100.0}  # before the window: all fast, must not count
    after = {"0.5": 100.0, "1.0": 50.0, "2.0": 50.0}
    result = bucket_quantiles(before, after, BOUNDS)
    assert result["count"] == 100
    assert result["p50"] == pytest.approx(1.0)  # the 50th of 100 is the last in (0.5, 1.0]
    assert result["p95"] == pytest.approx(1.0 + 1.0 * 45 / 50)
    assert result["p99"] == pytest.approx(1.0 + 1.0 * 49 / 50)


def test_a_quantile_beyond_the_last_bound_reads_as_that_bound():
    result = bucket_quantiles({}, {"0.5": 10.0, "+Inf": 90.0}, BOUNDS)
    assert result["p50"] == result["p99"] == 2.0


def test_an_empty_window_has_a_count_and_no_quantiles():
    assert bucket_quantiles({"0.5": 4.0}, {"0.5": 4.0}, BOUNDS) == {"count": 0}


def test_results_written_before_the_histograms_still_print():
    assert "None" in wait_text({"window_s": 60.0})
