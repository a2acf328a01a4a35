"""The live feed (manage.py demo / simulate) stays in step with the wall clock."""

import threading

import pytest

from tracking.simulation.layout import generate_hospital
from tracking.simulation.live import LiveFeed


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def feed_posting_in(seconds_per_batch: float, monkeypatch) -> tuple[LiveFeed, FakeClock]:
    """A feed whose every POST takes `seconds_per_batch` of (fake) wall time and succeeds."""
    document = generate_hospital(floors=1, rooms_per_side=4, assets_per_floor=6, seed=2)
    clock = FakeClock(1_800_000_000.0)
    feed = LiveFeed(document, "http://127.0.0.1:1", {}, seed=2, clock=clock)
    feed.tokens = dict.fromkeys(feed.simulator.scanner_serials, "token")
    posted = []

    def post(serial, readings):
        clock.now += seconds_per_batch
        posted.append((serial, readings))
        return 202

    monkeypatch.setattr(feed, "post", post)
    monkeypatch.setattr(feed, "wait_for_server", lambda stop, timeout_s=60.0: True)
    feed.posted = posted
    return feed, clock


def test_a_feed_that_cannot_post_in_real_time_skips_ahead_and_stays_live(monkeypatch):
    feed, clock = feed_posting_in(0.2, monkeypatch)  # a dozen scanners: over 2 s per step
    feed.run(threading.Event(), duration_s=120)

    assert feed.skipped_intervals > 30
    assert clock() - feed.simulator.now < feed.simulator.config.advert_interval_s
    newest = max(reading.ts for _serial, batch in feed.posted for reading in batch)
    assert clock() - newest < 5.0  # readings are stamped close to the wall clock, not minutes ago


def test_a_feed_that_keeps_up_skips_nothing(monkeypatch):
    feed, clock = feed_posting_in(0.0, monkeypatch)

    def step_and_let_a_second_pass():
        LiveFeed.step(feed)
        clock.now += 1.0

    monkeypatch.setattr(feed, "step", step_and_let_a_second_pass)
    feed.run(threading.Event(), duration_s=30)

    assert feed.skipped_intervals == 0
    assert len({round(r.ts) for _serial, batch in feed.posted for r in batch}) >= 29


def test_the_server_url_must_be_http():
    with pytest.raises(ValueError, match="http"):
        LiveFeed(generate_hospital(floors=1, assets_per_floor=1), "ftp://x", {})
