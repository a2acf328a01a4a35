"""The engine benchmark: a seeded trace, the pipeline's engine configuration, honest counts."""

from bench import engine as bench_engine


def test_a_short_trace_is_replayed_and_counted_without_writing_results(tmp_path, monkeypatch):
    monkeypatch.setattr("bench.load.RESULTS_DIR", tmp_path)
    report = bench_engine.main(
        ["--floors", "1", "--assets-per-floor", "4", "--duration", "20", "--repeats", "1",
         "--no-save"]
    )  # fmt: skip
    result = report["result"]
    assert result["tags"] == 4
    assert 0 < result["estimates"] < result["readings"]
    assert result["cpu_us_per_estimate"] > result["cpu_us_per_reading"] > 0
    assert result["state_bytes_per_tag"] > 100
    assert result["state_us_per_tag"] > 0
    assert result["state_read_us_per_tag"] > 0
    named = result["named_state"]
    assert named["bytes_per_tag"] > 100
    assert named["write_us_per_tag"] > 0
    assert named["read_us_per_tag"] > 0
    assert "By name (export_state)" in bench_engine.markdown(report)
    assert not list(tmp_path.iterdir())


def test_the_reading_limit_cuts_the_same_trace():
    arguments = ["--floors", "1", "--assets-per-floor", "4", "--duration", "20"]
    site, full, _ = bench_engine.trace(bench_engine.parse_args(arguments))
    _, head, _ = bench_engine.trace(bench_engine.parse_args([*arguments, "--readings", "50"]))
    assert head == full[:50]
    assert site.floors


def test_the_digest_is_the_same_for_the_same_trace_and_changes_with_the_estimates():
    arguments = ["--floors", "1", "--assets-per-floor", "4", "--duration", "20", "--repeats", "1"]
    first = bench_engine.measure(bench_engine.parse_args(arguments))
    again = bench_engine.measure(bench_engine.parse_args(arguments))
    other = bench_engine.measure(bench_engine.parse_args([*arguments, "--seed", "2"]))
    assert first["estimates_sha256"] == again["estimates_sha256"]
    assert first["estimates_sha256"] != other["estimates_sha256"]
    assert len(first["estimates_sha256"]) == 64
