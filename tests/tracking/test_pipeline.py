"""Shard processing: event-time order, the late allowance, zone stays and idempotent writes."""

import orjson
import pytest

from tests.factories import (
    AssetFactory,
    AssetLocationFactory,
    FloorFactory,
    ScannerFactory,
    TagFactory,
    ZoneFactory,
)
from tracking import bus, pipeline
from tracking.ingestion import RssiReading
from tracking.models import AssetLocation, PositionSample, Presence, ZoneStay

pytestmark = pytest.mark.django_db
START = 1_795_000_000.0


@pytest.fixture
def ward(redis_bus, settings):
    """Two rooms side by side, a scanner in each, one tagged pump."""
    settings.WARDWISE = {
        **settings.WARDWISE,
        "LATE_ALLOWANCE_S": 2.0,
        "HOLD_MAX_S": 5.0,
        "POSITION_SAMPLE_INTERVAL_S": 60,
    }
    floor = FloorFactory(width_m=20, height_m=6)
    west = ZoneFactory(floor=floor, name="West", polygon=[[0, 0], [10, 0], [10, 6], [0, 6]])
    east = ZoneFactory(floor=floor, name="East", polygon=[[10, 0], [20, 0], [20, 6], [10, 6]])
    ScannerFactory(serial="w", floor=floor, x=5, y=3)
    ScannerFactory(serial="e", floor=floor, x=15, y=3)
    tag = TagFactory(asset=AssetFactory(name="Pump 1"))
    return {"floor": floor, "west": west, "east": east, "tag": tag.tag_id, "asset": tag.asset}


def hear(tag, start, seconds, near, far, step=0.5):
    """Readings of one tag as heard by the near (-55 dBm) and far (-80 dBm) scanner."""
    readings = []
    for i in range(int(seconds / step)):
        ts = start + i * step
        readings.append(("near", RssiReading(ts, tag, -55.0)))
        readings.append(("far", RssiReading(ts + 0.01, tag, -80.0)))
    return [(near if which == "near" else far, r) for which, r in readings]


def publish(rows, received_at):
    for serial, reading in rows:
        bus.publish(serial, [reading], received_at)


def process_all(now):
    reports = [pipeline.process_shard(shard, now=now) for shard in range(bus.shard_count())]
    return {
        name: sum(getattr(r, name) for r in reports)
        for name in ("applied", "held", "late", "estimates", "unknown_tag")
    }


def test_readings_become_a_location_in_the_right_room(ward):
    publish(hear(ward["tag"], START, 20, "w", "e"), received_at=START + 20)
    process_all(now=START + 30)
    location = AssetLocation.objects.get(asset=ward["asset"])
    assert location.zone == ward["west"]
    assert location.x < 10


def test_the_newest_readings_wait_for_the_allowance_or_at_most_the_hold_time(ward):
    publish(hear(ward["tag"], START, 10, "w", "e"), received_at=START + 10)
    counts = process_all(now=START + 10)
    assert counts["held"] > 0
    assert counts["applied"] + counts["held"] == 40
    counts = process_all(now=START + 20)
    assert counts["held"] == 0


def test_a_reading_older_than_what_was_applied_is_dropped_as_late(ward):
    publish(hear(ward["tag"], START, 10, "w", "e"), received_at=START + 10)
    process_all(now=START + 30)
    publish([("w", RssiReading(START + 1, ward["tag"], -50.0))], received_at=START + 31)
    counts = process_all(now=START + 40)
    assert counts["late"] == 1
    assert counts["applied"] == 0


def stored_state(tag):
    raw = bus.client().hget(pipeline.STATE_KEY.format(bus.shard_of(tag)), tag)
    return orjson.loads(raw)


def reload_states():
    """As a process that did not commit the shards last: states come from Redis."""
    runtime = pipeline.site_runtime()
    for shard in range(bus.shard_count()):
        runtime.forget_shard(shard)


def smoothed_scanners(tag):
    return pipeline.site_runtime().engine.export_state(tag)["rssi"]


def test_tag_states_are_kept_packed_with_the_layout_they_refer_to(ward):
    publish(hear(ward["tag"], START, 10, "w", "e"), received_at=START + 10)
    process_all(now=START + 30)
    packed, persist = stored_state(ward["tag"])
    engine = pipeline.site_runtime().engine
    assert packed[:2] == [1, engine.layout_key]
    assert persist["zone_id"] == ward["west"].pk
    layout = bus.client().get(pipeline.LAYOUT_KEY.format(engine.layout_key))
    assert orjson.loads(layout) == engine.layout


def test_a_state_stored_by_the_release_before_packed_states_is_still_read(ward):
    publish(hear(ward["tag"], START, 10, "w", "e"), received_at=START + 10)
    process_all(now=START + 30)
    engine = pipeline.site_runtime().engine
    before = engine.export_state(ward["tag"])
    _, persist = stored_state(ward["tag"])
    bus.client().hset(
        pipeline.STATE_KEY.format(bus.shard_of(ward["tag"])),
        ward["tag"],
        orjson.dumps({"engine": before, "persist": persist}),
    )
    reload_states()
    publish([("e", RssiReading(START + 10, ward["tag"], -80.0))], received_at=START + 31)
    process_all(now=START + 40)
    assert set(smoothed_scanners(ward["tag"])) == {"w", "e"}
    assert smoothed_scanners(ward["tag"])["w"] == before["rssi"]["w"]  # carried over


def test_after_a_site_change_states_are_read_through_the_layout_they_were_packed_in(ward):
    """A new scanner shifts the scanner indexes; the tag keeps what it had learnt."""
    publish(hear(ward["tag"], START, 10, "w", "e"), received_at=START + 10)
    process_all(now=START + 30)
    before = pipeline.site_runtime().engine.export_state(ward["tag"])
    old_key = pipeline.site_runtime().engine.layout_key
    ScannerFactory(serial="a-new-one", floor=ward["floor"], x=10, y=5)
    assert pipeline.site_runtime().engine.layout_key != old_key
    publish([("e", RssiReading(START + 10, ward["tag"], -80.0))], received_at=START + 31)
    process_all(now=START + 40)
    assert smoothed_scanners(ward["tag"])["w"] == before["rssi"]["w"]
    assert stored_state(ward["tag"])[0][1] == pipeline.site_runtime().engine.layout_key


def test_a_state_whose_layout_was_lost_starts_afresh_and_says_so(ward, caplog):
    publish(hear(ward["tag"], START, 10, "w", "e"), received_at=START + 10)
    process_all(now=START + 30)
    old_key = pipeline.site_runtime().engine.layout_key
    ScannerFactory(serial="a-new-one", floor=ward["floor"], x=10, y=5)
    bus.client().delete(pipeline.LAYOUT_KEY.format(old_key))
    publish([("e", RssiReading(START + 10, ward["tag"], -80.0))], received_at=START + 31)
    counts = process_all(now=START + 40)
    assert counts["applied"] == 1
    assert set(smoothed_scanners(ward["tag"])) == {"e"}
    assert "starts afresh" in caplog.text
    assert AssetLocation.objects.get(asset=ward["asset"]).zone == ward["west"]


def heard_without_a_position(ward, persist, at):
    """Persist a tag that was heard at `at` but got no new position (between its solves)."""
    work = pipeline.TagWork(ward["tag"], ward["asset"].pk, persist, last_heard=at)
    pipeline._persist([work], pipeline.site_runtime())


def last_seen(ward):
    return AssetLocation.objects.get(asset=ward["asset"]).last_seen_at.timestamp()


def test_between_positions_a_heard_tags_last_seen_time_is_written_at_most_so_often(ward, settings):
    settings.WARDWISE = {**settings.WARDWISE, "LAST_SEEN_WRITE_S": 5.0}
    AssetLocationFactory(
        asset=ward["asset"], floor=ward["floor"], last_seen_at=pipeline._moment(START)
    )
    persist = {"seen_ts": START}
    heard_without_a_position(ward, persist, START + 4)
    assert last_seen(ward) == START  # not yet: within 5 s of what the database has
    heard_without_a_position(ward, persist, START + 5)
    assert last_seen(ward) == START + 5
    assert persist["seen_ts"] == START + 5
    heard_without_a_position(ward, {}, START + 6)  # a state from before this was kept
    assert last_seen(ward) == START + 6


def test_a_position_writes_the_last_seen_time_and_restarts_the_interval(ward):
    publish(hear(ward["tag"], START, 10, "w", "e"), received_at=START + 10)
    process_all(now=START + 30)
    persist = pipeline.site_runtime().persist_state[ward["tag"]]
    assert persist["seen_ts"] == last_seen(ward) == START + 9.51


def test_a_missing_asset_heard_again_is_present_at_once_though_no_position_came(ward):
    AssetLocationFactory(
        asset=ward["asset"],
        floor=ward["floor"],
        last_seen_at=pipeline._moment(START),
        presence=Presence.MISSING,
    )
    heard_without_a_position(ward, {"seen_ts": START}, START + 3600)
    location = AssetLocation.objects.get(asset=ward["asset"])
    assert location.presence == Presence.PRESENT
    assert location.last_seen_at.timestamp() == START + 3600


def test_readings_of_unregistered_tags_are_counted_not_localized(ward):
    stranger = "mac:AA:BB:CC:DD:EE:FF"
    publish(hear(stranger, START, 5, "w", "e"), received_at=START + 5)
    counts = process_all(now=START + 30)
    assert counts["unknown_tag"] == 20
    assert not AssetLocation.objects.exists()


def test_moving_to_the_next_room_closes_one_stay_and_opens_another(ward):
    publish(hear(ward["tag"], START, 40, "w", "e"), received_at=START + 40)
    process_all(now=START + 60)
    publish(hear(ward["tag"], START + 40, 60, "e", "w"), received_at=START + 100)
    process_all(now=START + 120)
    stays = list(ZoneStay.objects.filter(asset=ward["asset"]).order_by("entered_at"))
    assert [stay.zone for stay in stays] == [ward["west"], ward["east"]]
    assert stays[0].left_at is not None
    assert stays[0].dwell_s > 30
    assert stays[1].left_at is None
    assert AssetLocation.objects.get(asset=ward["asset"]).zone == ward["east"]
    zones = list(
        PositionSample.objects.filter(asset=ward["asset"])
        .order_by("ts")
        .values_list("zone", flat=True)
    )
    assert zones[0] == ward["west"].pk
    assert zones[-1] == ward["east"].pk


def crash_before_the_redis_commit(monkeypatch, now):
    """Drain the shards; the worker dies after its first chunk's database commit."""

    def crash(*args, **kwargs):
        raise ConnectionError("worker killed between the database and the Redis commit")

    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "_commit_chunk", crash)
        with pytest.raises(ConnectionError):
            process_all(now=now)


def test_reprocessing_a_chunk_after_a_crash_writes_nothing_twice(ward, monkeypatch):
    publish(hear(ward["tag"], START, 30, "w", "e"), received_at=START + 30)
    crash_before_the_redis_commit(monkeypatch, now=START + 60)
    rows_after_crash = PositionSample.objects.count()
    assert rows_after_crash > 0
    process_all(now=START + 60)
    assert PositionSample.objects.count() == rows_after_crash
    assert ZoneStay.objects.filter(asset=ward["asset"]).count() == 1


def stays_of(asset):
    return list(
        ZoneStay.objects.filter(asset=asset)
        .order_by("entered_at")
        .values_list("zone_id", "entered_at", "left_at")
    )


def test_replaying_a_chunk_in_which_a_tag_changed_rooms_twice_leaves_its_stays_alone(
    ward, monkeypatch
):
    """West, east, west again in one chunk; the worker dies before the Redis commit and the
    chunk is replayed from the first change on: the stays must read as they did."""
    publish(hear(ward["tag"], START, 30, "w", "e"), received_at=START + 140)
    publish(hear(ward["tag"], START + 30, 50, "e", "w"), received_at=START + 140)
    publish(hear(ward["tag"], START + 80, 50, "w", "e"), received_at=START + 140)
    crash_before_the_redis_commit(monkeypatch, now=START + 200)
    stays = stays_of(ward["asset"])
    assert [zone for zone, _, _ in stays] == [ward["west"].pk, ward["east"].pk, ward["west"].pk]
    process_all(now=START + 200)
    assert stays_of(ward["asset"]) == stays


def test_the_safety_net_picks_up_readings_a_dead_worker_left_held(ward, monkeypatch):
    from tracking import tasks

    publish(hear(ward["tag"], START, 10, "w", "e"), received_at=START + 10)
    counts = process_all(now=START + 10)  # the stream is read; the newest readings are held
    assert counts["held"] > 0
    # the worker dies before queueing the follow-up drain, and no new reading comes
    queued = []
    monkeypatch.setattr(tasks, "queue_claimed", queued.append)
    tasks.kick_idle_shards()
    held_shards = [s for s in range(bus.shard_count()) if pipeline.has_held(s)]
    assert held_shards
    assert queued == held_shards
    process_all(now=START + 20)
    for shard in held_shards:  # as the drain's task ends: nothing left, no next drain
        assert pipeline.finish_drain(shard, pipeline.ShardReport()) is bus.NextDrain.NONE
    assert not any(pipeline.has_held(s) for s in range(bus.shard_count()))
    tasks.kick_idle_shards()
    assert queued == held_shards  # nothing left to pick up


def test_a_drain_stops_after_its_time_slice_and_leaves_the_rest_for_the_next_task(
    ward, monkeypatch
):
    """A shard fed faster than it drains must not keep its task (and lease) forever: the drain
    starts no chunk after its slice, the rest stays in the stream and the next drain goes on."""
    from tracking import tasks

    publish(hear(ward["tag"], START, 10, "w", "e"), received_at=START + 10)  # 40 entries
    shard = bus.shard_of(ward["tag"])
    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "ENTRIES_PER_CHUNK", 5)
        patch.setattr(pipeline, "DRAIN_SLICE_S", 0.0)
        report = pipeline.process_shard(shard, now=START + 30)
    assert report.entries == 5
    assert pipeline.has_unprocessed(shard)

    queued = []
    with monkeypatch.context() as patch:
        patch.setattr(tasks, "queue_claimed", queued.append)
        patch.setattr(pipeline, "process_shard", lambda s, **kwargs: report)
        tasks.process_shard.run(shard)  # the task that ran this drain queues the shard again
    assert queued == [shard]

    drains = 1
    while pipeline.has_unprocessed(shard):
        pipeline.process_shard(shard, now=START + 30)
        drains += 1
    assert drains > 1
    assert AssetLocation.objects.get(asset=ward["asset"]).zone == ward["west"]


def test_within_its_slice_a_drain_takes_every_chunk_there_is(ward, monkeypatch):
    publish(hear(ward["tag"], START, 10, "w", "e"), received_at=START + 10)
    shard = bus.shard_of(ward["tag"])
    monkeypatch.setattr(pipeline, "ENTRIES_PER_CHUNK", 5)
    report = pipeline.process_shard(shard, now=START + 30)
    assert report.entries == 40
    assert not pipeline.has_unprocessed(shard)


def test_each_chunks_positions_are_handed_on_once_stored_before_the_redis_commit(ward, monkeypatch):
    """The live push waits for PostgreSQL, not for the shard's Redis commit or later chunks."""
    publish(hear(ward["tag"], START, 10, "w", "e"), received_at=START + 10)
    shard = bus.shard_of(ward["tag"])
    monkeypatch.setattr(pipeline, "ENTRIES_PER_CHUNK", 10)
    handed = []

    def on_persisted(updates):
        stored = AssetLocation.objects.get(asset=ward["asset"])
        cursor = bus.client().get(pipeline.CURSOR_KEY.format(shard))
        handed.append((updates, stored.estimated_at.isoformat(), cursor))

    report = pipeline.process_shard(shard, now=START + 30, on_persisted=on_persisted)
    assert len(handed) > 1  # one call per chunk, not one at the end of the drain
    cursors = [cursor for _, _, cursor in handed]
    assert cursors[0] is None  # the first chunk was not committed to Redis yet
    assert len(set(cursors)) == len(cursors)
    for updates, stored_at, _ in handed:
        assert updates[-1]["ts"] == stored_at
    assert [u for updates, _, _ in handed for u in updates] == report.updates


def test_the_task_pushes_a_drains_positions(ward, monkeypatch):
    from tracking import tasks

    publish(hear(ward["tag"], START, 10, "w", "e"), received_at=START + 10)
    pushed = []
    monkeypatch.setattr(tasks, "_publish_live", pushed.extend)
    monkeypatch.setattr(tasks, "queue_claimed", lambda shard: None)
    tasks.process_shard.run(bus.shard_of(ward["tag"]))
    assert pushed
    assert {u["asset_id"] for u in pushed} == {ward["asset"].pk}


def test_a_drain_reports_how_long_each_reading_waited_and_how_long_it_took(ward):
    publish(hear(ward["tag"], START, 10, "w", "e"), received_at=START + 10)
    first = [pipeline.process_shard(shard, now=START + 10) for shard in range(bus.shard_count())]
    second = [pipeline.process_shard(shard, now=START + 16) for shard in range(bus.shard_count())]
    released_first = sum(r.applied for r in first)
    waits = [w for r in first for w in r.reading_waits]
    assert len(waits) == released_first > 0
    assert set(waits) == {0.0}  # released at once: received at START + 10, drained then
    later = [w for r in second for w in r.reading_waits]
    assert len(later) == 40 - released_first
    assert set(later) == {6.0}  # held until the hold time (5 s) ran out, taken 6 s later
    assert all(r.drain_s is not None and r.drain_s >= 0 for r in first + second)


def test_the_waits_and_drain_times_reach_the_metrics(ward, isolated_metrics):
    from hospital import observability

    publish(hear(ward["tag"], START, 10, "w", "e"), received_at=START + 10)
    for shard in range(bus.shard_count()):
        pipeline.finish_drain(shard, pipeline.process_shard(shard, now=START + 30))
    counters, _ = observability.read_shared()
    buckets = {
        json_labels: value
        for field, value in counters.items()
        for name, _, json_labels in [field.partition("|")]
        if name == "reading_wait_seconds_bucket"
    }
    assert buckets == {'{"le": "30.0"}': 40}  # every reading waited 20 s
    assert counters["reading_wait_seconds_sum"] == 40 * 20.0
    drains = sum(v for f, v in counters.items() if f.startswith("drain_seconds_bucket|"))
    assert drains == bus.shard_count()


# -- the end of a drain: the shard's schedule released, or claimed again for the next drain ----


def scheduled(redis_bus, shard) -> bool:
    return redis_bus.exists(bus.SCHEDULED_KEY.format(shard)) == 1


def test_a_shard_with_new_entries_after_its_drain_is_claimed_for_the_next_one(ward, redis_bus):
    publish(hear(ward["tag"], START, 2, "w", "e"), received_at=START + 2)
    shard = bus.shard_of(ward["tag"])
    assert bus.claim_schedule(shard)  # as the intake did when it queued this drain
    report = pipeline.process_shard(shard, now=START + 2)
    publish(hear(ward["tag"], START + 2, 1, "w", "e"), received_at=START + 3)  # meanwhile
    assert pipeline.finish_drain(shard, report) is bus.NextDrain.NOW
    assert 0 < redis_bus.ttl(bus.SCHEDULED_KEY.format(shard)) <= bus.SCHEDULE_CLAIM_S
    assert not bus.claim_schedule(shard)  # a batch arriving now finds the drain queued


def test_a_shard_left_with_held_readings_is_claimed_for_a_drain_after_the_allowance(
    ward, redis_bus
):
    publish(hear(ward["tag"], START, 4, "w", "e"), received_at=START + 4)
    shard = bus.shard_of(ward["tag"])
    report = pipeline.process_shard(shard, now=START + 4)
    assert report.held > 0
    assert pipeline.finish_drain(shard, report) is bus.NextDrain.AFTER_ALLOWANCE
    assert scheduled(redis_bus, shard)


def test_held_readings_claim_nothing_when_the_caller_drains_them_itself(ward, redis_bus):
    publish(hear(ward["tag"], START, 4, "w", "e"), received_at=START + 4)
    shard = bus.shard_of(ward["tag"])
    assert bus.claim_schedule(shard)
    report = pipeline.process_shard(shard, now=START + 4)
    assert pipeline.finish_drain(shard, report, requeue_held=False) is bus.NextDrain.NONE
    assert not scheduled(redis_bus, shard)


def test_a_drained_shard_releases_its_schedule_for_the_next_batch(ward, redis_bus):
    publish(hear(ward["tag"], START, 4, "w", "e"), received_at=START + 4)
    shard = bus.shard_of(ward["tag"])
    assert bus.claim_schedule(shard)
    report = pipeline.process_shard(shard, now=START + 60)
    assert report.held == 0
    assert pipeline.finish_drain(shard, report) is bus.NextDrain.NONE
    assert not scheduled(redis_bus, shard)
    assert bus.claim_schedule(shard)


def test_an_after_drain_step_that_fails_in_redis_raises_and_metrics_do_not_hide_it(
    ward, redis_bus, isolated_metrics
):
    shard = 3
    redis_bus.set(bus.STREAM_KEY.format(shard), "not a stream")
    with pytest.raises(Exception, match="WRONGTYPE"):
        pipeline.finish_drain(shard, pipeline.ShardReport(applied=5))


# -- a smaller WARDWISE_SHARDS: readings accepted under the old layout are still processed ------


def shrink_after_publishing(ward, settings) -> int:
    """Readings published under a shard count that puts the tag beyond shard 0, then the count
    lowered to one shard: returns the tag's old, now retired, shard."""
    old_count = next(n for n in (16, 15, 13, 11) if bus.shard_of(ward["tag"], n) > 0)
    settings.WARDWISE = {**settings.WARDWISE, "SHARDS": old_count}
    publish(hear(ward["tag"], START, 10, "w", "e"), received_at=START + 10)
    settings.WARDWISE = {**settings.WARDWISE, "SHARDS": 1}
    return bus.shard_of(ward["tag"], old_count)


def test_readings_left_in_a_retired_shard_are_drained_and_then_its_keys_deleted(
    ward, redis_bus, settings, monkeypatch, caplog
):
    from tracking import tasks

    old_shard = shrink_after_publishing(ward, settings)
    queued = []
    monkeypatch.setattr(tasks, "queue_claimed", queued.append)

    assert bus.retired_shards() == [old_shard]
    tasks.kick_idle_shards()
    assert queued == [old_shard]
    assert "beyond WARDWISE_SHARDS=1 and still holds readings" in caplog.text

    report = pipeline.process_shard(old_shard, now=START + 60)
    assert report.applied == 40
    assert AssetLocation.objects.get(asset=ward["asset"]).zone == ward["west"]
    assert pipeline.finish_drain(old_shard, report) is bus.NextDrain.NONE

    tasks.kick_idle_shards()
    assert queued == [old_shard]  # nothing more to drain
    assert bus.retired_shards() == []
    assert not redis_bus.keys(f"ww:*:{old_shard}")


def test_a_retired_shard_is_not_deleted_while_it_has_work_or_an_owner(ward, redis_bus, settings):
    old_shard = shrink_after_publishing(ward, settings)
    assert not pipeline.retire_shard(old_shard)  # unprocessed readings
    pipeline.process_shard(old_shard, now=START + 60)
    owner = bus.ShardLock(old_shard)
    assert owner.acquire()
    assert not pipeline.retire_shard(old_shard)  # a worker holds it
    owner.release()
    assert pipeline.retire_shard(old_shard)
    assert bus.retired_shards() == []


def test_shards_within_the_count_are_never_retired(ward, redis_bus):
    publish(hear(ward["tag"], START, 2, "w", "e"), received_at=START + 2)
    assert bus.retired_shards() == []


# -- the late allowance each shard learns from how late its readings arrive ------------------


@pytest.fixture
def learning(ward, settings):
    settings.WARDWISE = {
        **settings.WARDWISE,
        "LATE_ALLOWANCE_S": 2.0,
        "LATE_ALLOWANCE_MIN_S": 0.1,
        "LATE_ALLOWANCE_WINDOW_S": 30.0,
    }
    return ward


def prompt_traffic(ward, start, seconds):
    """The pump heard every half second by its room's scanner, each reading posted the moment
    it was heard and drained at once; returns the last drain's report."""
    shard = bus.shard_of(ward["tag"])
    for i in range(int(seconds * 2)):
        ts = start + i * 0.5
        publish([("w", RssiReading(ts, ward["tag"], -55.0))], received_at=ts)
        report = pipeline.process_shard(shard, now=ts)
    return report


def test_a_new_shard_holds_readings_for_the_whole_allowance(learning):
    report = prompt_traffic(learning, START, 10)
    assert report.hold_s == 2.0
    assert report.held == 4  # the last two seconds' readings


def test_a_shard_whose_scanners_post_promptly_releases_readings_sooner(learning):
    prompt_traffic(learning, START, 40)
    shard = bus.shard_of(learning["tag"])
    reload_states()  # what was learnt is in Redis, not only in this process
    publish([("w", RssiReading(START + 40.0, learning["tag"], -55.0))], received_at=START + 40)
    publish([("e", RssiReading(START + 40.3, learning["tag"], -80.0))], received_at=START + 40.3)
    report = pipeline.process_shard(shard, now=START + 40.3)
    assert report.hold_s == pytest.approx(0.1)
    assert report.held == 1  # only the reading of the last 0.1 s waits
    assert stored_state(learning["tag"])[0] is not None


def test_a_late_arrival_lengthens_the_hold_at_once_so_the_next_such_is_applied_in_order(
    learning,
):
    prompt_traffic(learning, START, 40)  # learnt: everything arrives at once, hold 0.1 s
    shard = bus.shard_of(learning["tag"])
    tag = learning["tag"]
    publish([("w", RssiReading(START + 40.0, tag, -55.0))], received_at=START + 40.0)
    publish([("e", RssiReading(START + 39.2, tag, -80.0))], received_at=START + 40.0)  # 0.8 s
    reports = [pipeline.process_shard(shard, now=START + 40.0)]
    assert reports[0].hold_s == pytest.approx(0.8 * 1.5 + 0.05)
    publish([("w", RssiReading(START + 41.0, tag, -55.0))], received_at=START + 41.0)
    reports.append(pipeline.process_shard(shard, now=START + 41.0))
    publish([("e", RssiReading(START + 39.9, tag, -80.0))], received_at=START + 41.2)  # 1.1 s
    reports.append(pipeline.process_shard(shard, now=START + 41.2))
    reports.append(pipeline.process_shard(shard, now=START + 50.0))
    assert sum(r.late for r in reports) == 0  # with a 0.1 s hold, 39.9 came after 40.0: late
    assert sum(r.applied for r in reports) == 4 + 1  # and the one held since the prompt traffic


def test_with_the_minimum_at_the_allowance_the_hold_is_fixed(learning, settings):
    settings.WARDWISE = {**settings.WARDWISE, "LATE_ALLOWANCE_MIN_S": 2.0}
    report = prompt_traffic(learning, START, 40)
    assert report.hold_s == 2.0
    assert report.held == 4


def test_every_drain_records_its_hold(learning, isolated_metrics):
    from hospital import observability

    report = prompt_traffic(learning, START, 2)
    pipeline.finish_drain(bus.shard_of(learning["tag"]), report)
    counters, _ = observability.read_shared()
    assert counters['late_allowance_seconds_bucket|{"le": "2.0"}'] == 1
    assert counters["late_allowance_seconds_sum"] == 2.0
