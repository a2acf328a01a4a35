"""The worker benchmark's report: which regime each run timed, and its cost per shard drain."""

from bench import worker as bench_worker


def run(drain_every: float, cpu_ms_per_shard_drain: float) -> dict:
    return {
        "engine_options": {},
        "drain_every_s": drain_every,
        "shard_drains": 160,
        "cpu_ms_per_shard_drain": cpu_ms_per_shard_drain,
        "wall_ms_per_shard_drain": 61.3,
        "readings_published": 100_000,
        "readings_applied": 99_500,
        "positions": 39_000,
        "cpu_s": 12.5,
        "readings_per_cpu_s": 7_960,
        "cpu_us_per_position": 321,
        "peak_rss_mb": 640,
        "gc_cpu_s": 0.31,
        "gc_full_collections": 1,
    }


def report(*runs: dict) -> dict:
    return {
        "command": "python -m bench.worker --drain-every 0.5",
        "when": "2026-11-27 19:00:00 UTC",
        "machine": {"cpus": 2, "load_average": ["1.0", "1.0", "1.0"]},
        "runs": list(runs),
    }


def defaults_row(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("| defaults"))


def test_the_live_regime_is_named_with_its_drain_interval_and_cost_per_shard_drain():
    text = bench_worker.markdown(report(run(0.5, 42.9)))
    assert defaults_row(text) == (
        "| defaults | every 0.5 s | 99,500 | 39,000 | 12.5 | 7,960 | 321 | 42.9 | 61.3 | "
        "0.31 (1) | 640 |"
    )


def test_a_result_from_before_wall_times_were_taken_leaves_that_cell_empty():
    older = run(0.5, 42.9)
    del older["wall_ms_per_shard_drain"]
    assert "| 42.9 |  | 0.31 (1) |" in defaults_row(bench_worker.markdown(report(older)))


def test_one_drain_of_the_whole_half_is_the_default_regime():
    args = bench_worker.parse_args([])
    assert args.drain_every == 0
    text = bench_worker.markdown(report(run(0.0, 566.7)))
    assert "| defaults | once | 99,500 |" in text


def test_a_compared_run_reports_its_ratio_to_the_defaults():
    faster = {**run(2.0, 30.0), "engine_options": {"quiet_solve_max_s": 6.0}}
    faster["readings_per_cpu_s"] = 9_552
    text = bench_worker.markdown(report(run(2.0, 36.0), faster))
    assert "| quiet_solve_max_s=6 | every 2 s |" in text
    assert "compared run / defaults: 1.20x" in text


def test_a_compared_environment_names_the_run():
    base, other = run(2.0, 36.0), {**run(2.0, 44.0), "env": ["WARDWISE_GC_THRESHOLDS=off"]}
    other["readings_per_cpu_s"] = 6_368
    text = bench_worker.markdown(report(base, other))
    assert "| WARDWISE_GC_THRESHOLDS=off | every 2 s |" in text
    assert "compared run / defaults: 0.80x" in text


def test_the_collector_clock_counts_only_collections_within_the_timed_drains(monkeypatch):
    readings = iter([10.0, 10.25, 11.0, 11.5])
    monkeypatch.setattr(bench_worker.time, "process_time", lambda: next(readings))
    clock = bench_worker.CollectorClock()
    clock("start", {"generation": 2})  # outside the timed drains: not read, not counted
    clock("stop", {"generation": 2})
    clock.timing = True
    clock("start", {"generation": 0})
    clock("stop", {"generation": 0})
    clock("start", {"generation": 2})
    clock("stop", {"generation": 2})
    assert clock.full_collections == 1
    assert clock.seconds == 0.75
