"""Per-process CPU and memory of the benchmark's stack (bench.procstat)."""

from bench.procstat import Group, Sampler


def test_a_group_that_was_not_running_in_the_window_is_left_out_of_the_summary():
    running = Group("worker", samples=[(10.0, 100, 2048, 1), (20.0, 600, 4096, 1)])
    gone = Group("previous load generator", samples=[(10.0, 0, 0, 0), (20.0, 0, 0, 0)])
    summary = Sampler([running, gone]).summary(5.0, 25.0)
    assert list(summary) == ["worker"]
    assert summary["worker"]["rss_mb_max"] == 4.0
    assert summary["worker"]["processes"] == 1
