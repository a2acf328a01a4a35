"""Shard processing: raw readings from the bus through the localization engine into PostgreSQL.

One call of `process_shard` owns a shard (a Redis lease), reads the stream entries after its
cursor, holds back the newest readings for a short event-time allowance so that readings of the
same moment from slow scanners are applied in order, runs the engine per tag from the tag's state
in Redis, writes current locations, the compact history and zone stays, and then commits the new
tag states, cursor and held readings to Redis in one transaction. A crash between the database
write and the Redis commit replays the chunk from the old state, which writes the same rows again
(every write is idempotent), so no reading is lost or applied twice.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter

import orjson
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from hospital import observability, prepared
from hospital.models import Floor, Zone
from hospital.site_loader import export_site_document
from integrations import events
from tracking import bus, confidence, quality, store
from tracking.lateness import HoldPolicy, LatenessWindow
from tracking.localization import EngineConfig, LocalizationEngine, Reading, SiteSpec
from tracking.models import (
    Asset,
    AssetLocation,
    AssetType,
    Presence,
    Scanner,
    Tag,
)

log = logging.getLogger(__name__)

CURSOR_KEY = bus.CURSOR_KEY  # the admission check reads it too
HELD_KEY = "ww:held:{}"
MAX_TS_KEY = "ww:maxts:{}"
#: The shard's lateness window (tracking.lateness): how late its readings arrive, so how long
#: they are held.
LATENESS_KEY = "ww:lateness:{}"
STATE_KEY = "ww:state:{}"
GENERATION_KEY = "ww:generation:{}"
#: What the indexes of packed tag states refer to (LocalizationEngine.layout), per layout key:
#: written once per process and site, in the commit of the first states packed by it.
LAYOUT_KEY = "ww:layout:{}"
#: Every key a shard has besides its lease (`bus.LOCK_KEY`).
SHARD_KEYS = (
    bus.STREAM_KEY,
    bus.SCHEDULED_KEY,
    CURSOR_KEY,
    HELD_KEY,
    MAX_TS_KEY,
    LATENESS_KEY,
    STATE_KEY,
    GENERATION_KEY,
)
SITE_VERSION_KEY = "ww:site-version"
#: Stream entries (one gateway batch's readings for the shard) per chunk. Only a drain that finds
#: a backlog fills a chunk; then a larger one holds more readings per tag, so fewer tag states are
#: written back and the chunk's fixed writes are shared by more readings (`python -m bench.worker`:
#: 1.2-1.4x readings per CPU-second against 500), for about 0.3 s of work per chunk.
ENTRIES_PER_CHUNK = 2000
#: A drain starts no new chunk after this long, and the task queues the shard again behind the
#: others. A shard fed faster than one worker drains it would otherwise keep its task forever:
#: the other shards would wait, and the lease (bus.ShardLock, 60 s) would lapse mid-drain and
#: let a second worker in.
DRAIN_SLICE_S = 10.0


def _bump_site_version(**kwargs) -> None:
    """A fresh random version (not a counter: a flushed cache must never repeat an old one)."""
    cache.set(SITE_VERSION_KEY, uuid.uuid4().hex, timeout=None)


for _model in (Floor, Zone, Scanner, Asset, Tag, AssetType):
    post_save.connect(_bump_site_version, sender=_model, dispatch_uid=f"site-version-{_model}")
    post_delete.connect(_bump_site_version, sender=_model, dispatch_uid=f"site-version-d-{_model}")


def engine_config() -> EngineConfig:
    return EngineConfig(
        self_calibration=settings.WARDWISE["SELF_CALIBRATION"],
        quiet_solve_max_s=settings.WARDWISE["QUIET_SOLVE_MAX_S"],
    )


class SiteRuntime:
    """The engine and the id maps of the current site, rebuilt when the site changes."""

    def __init__(self) -> None:
        document = export_site_document()
        self.spec = SiteSpec.from_document(document)
        mobility_by_type = dict(AssetType.objects.values_list("slug", "mobility"))
        tags = Tag.objects.filter(asset__isnull=False).values_list(
            "tag_id", "asset_id", "asset__asset_type__slug"
        )
        self.asset_of_tag = {tag: asset for tag, asset, _ in tags}
        mobility_of_tag = {tag: mobility_by_type.get(slug) for tag, _, slug in tags}
        self.engine = LocalizationEngine(
            self.spec, engine_config(), mobility_for_tag=mobility_of_tag.get
        )
        floors = list(Floor.objects.select_related("building"))
        names = [floor.name for floor in floors]
        self.floor_id = {
            (f"{f.building.name} / {f.name}" if names.count(f.name) > 1 else f.name): f.pk
            for f in floors
        }
        self.zone_id = {
            (floor_id, name): pk
            for pk, floor_id, name in Zone.objects.values_list("pk", "floor_id", "name")
        }
        # Tag states of the shards this process committed last, kept in the engine between
        # chunks: valid while the shard's generation in Redis is the one this process wrote.
        self.shard_generation: dict[int, bytes] = {}
        self.shard_tags: dict[int, set[str]] = defaultdict(set)
        self.persist_state: dict[str, dict] = {}
        self.layout_saved = False
        self.layouts: dict[str, dict | None] = {}

    def layout_of(self, key: str, client) -> dict | None:
        """The layout of states packed before the site changed (None if Redis lost it)."""
        if key not in self.layouts:
            raw = client.get(LAYOUT_KEY.format(key))
            self.layouts[key] = orjson.loads(raw) if raw else None
        return self.layouts[key]

    def forget_shard(self, shard: int) -> None:
        for tag in self.shard_tags.pop(shard, ()):
            self.engine.forget(tag)
            self.persist_state.pop(tag, None)
        self.shard_generation.pop(shard, None)


_runtime: tuple[str, SiteRuntime] | None = None


def site_runtime() -> SiteRuntime:
    global _runtime
    version = cache.get_or_set(SITE_VERSION_KEY, lambda: uuid.uuid4().hex, timeout=None)
    if _runtime is None or _runtime[0] != version:
        _runtime = (version, SiteRuntime())
    return _runtime[1]


@dataclass
class ShardReport:
    busy: bool = False
    entries: int = 0
    applied: int = 0
    held: int = 0
    #: how far behind the newest event time readings were released (tracking.lateness)
    hold_s: float | None = None
    late: int = 0
    unknown_tag: int = 0
    estimates: int = 0
    newest_receipt: float | None = None
    updates: list[dict] = field(default_factory=list)
    #: seconds from receipt to release of each reading released (metric reading_wait_seconds)
    reading_waits: list[float] = field(default_factory=list)
    drain_s: float | None = None


def process_shard(
    shard: int,
    now: float | None = None,
    on_persisted: Callable[[list[dict]], None] | None = None,
) -> ShardReport:
    """Drain the shard's stream (as far as the allowance lets, for at most DRAIN_SLICE_S)
    while holding its lease; the caller queues the shard again when entries remain.

    `on_persisted` gets each chunk's live updates as soon as they are in PostgreSQL, so their
    push waits neither for the Redis commit nor for the rest of the drain (a chunk replayed
    after a failed commit pushes the same positions again, which clients ignore)."""
    lock = bus.ShardLock(shard)
    if not lock.acquire():
        return ShardReport(busy=True)
    total = ShardReport()
    started = time.monotonic()
    slice_ends = started + DRAIN_SLICE_S
    try:
        while True:
            report = _process_chunk(shard, time.time() if now is None else now, on_persisted)
            for name in ("entries", "applied", "late", "unknown_tag", "estimates"):
                setattr(total, name, getattr(total, name) + getattr(report, name))
            total.held = report.held
            total.hold_s = report.hold_s
            if report.newest_receipt is not None:
                total.newest_receipt = report.newest_receipt
            total.updates.extend(report.updates)
            total.reading_waits.extend(report.reading_waits)
            if report.entries < ENTRIES_PER_CHUNK or time.monotonic() >= slice_ends:
                break
    finally:
        lock.release()
    total.drain_s = time.monotonic() - started
    return total


def finish_drain(shard: int, report: ShardReport, requeue_held: bool = True) -> bus.NextDrain:
    """The drain's counters and the shard's next step in one round trip (bus.queue_after_drain).
    Metrics never fail the drain; the schedule's script does, so a lost answer leaves the claim
    to `kick_idle_shards`."""
    pipe = bus.client().pipeline(transaction=False)
    if report.applied:
        observability.queue_incr(pipe, "readings_processed_total", report.applied)
    if report.estimates:
        observability.queue_incr(pipe, "positions_total", report.estimates)
    if report.late:
        observability.queue_incr(pipe, "readings_dropped_total", report.late, reason="late")
    if report.unknown_tag:
        observability.queue_incr(
            pipe, "readings_dropped_total", report.unknown_tag, reason="unknown-tag"
        )
    observability.queue_observe(pipe, "reading_wait_seconds", report.reading_waits)
    if report.drain_s is not None:
        observability.queue_observe(pipe, "drain_seconds", [report.drain_s])
    if report.hold_s is not None:
        observability.queue_observe(pipe, "late_allowance_seconds", [report.hold_s])
    bus.queue_after_drain(pipe, shard, held=requeue_held and report.held > 0)
    *metrics, next_drain = pipe.execute(raise_on_error=False)
    if any(isinstance(reply, Exception) for reply in metrics):
        log.warning(
            "drain metrics not recorded: %s", [r for r in metrics if isinstance(r, Exception)]
        )
    if report.newest_receipt is not None:
        observability.set_gauge("processing_lag_seconds", time.time() - report.newest_receipt)
    if isinstance(next_drain, Exception):
        raise next_drain
    return bus.NextDrain(next_drain)


def retire_shard(shard: int) -> bool:
    """Delete a retired shard's keys (bus.retired_shards) once nothing is left to drain in it;
    False while it has work or a worker holds its lease."""
    lock = bus.ShardLock(shard)
    if not lock.acquire():
        return False
    try:
        if has_work(shard):
            return False
        bus.client().delete(*(key.format(shard) for key in SHARD_KEYS))
        return True
    finally:
        lock.release()


def has_work(shard: int) -> bool:
    """Stream entries after the cursor, or readings held for the late allowance."""
    return has_unprocessed(shard) or has_held(shard)


def has_unprocessed(shard: int) -> bool:
    client = bus.client()
    cursor = client.get(CURSOR_KEY.format(shard)) or b"0-0"
    return bool(client.xrange(bus.STREAM_KEY.format(shard), min=b"(" + cursor, count=1))


def has_held(shard: int) -> bool:
    """Readings read from the stream but held for the late allowance: they wait for a drain
    that a dead worker may never have queued, and new entries may never come to trigger one."""
    return orjson.loads(bus.client().get(HELD_KEY.format(shard)) or b"[]") != []


def hold_policy() -> HoldPolicy:
    config = settings.WARDWISE
    return HoldPolicy(
        ceiling_s=config["LATE_ALLOWANCE_S"],
        floor_s=min(config["LATE_ALLOWANCE_MIN_S"], config["LATE_ALLOWANCE_S"]),
        window_s=config["LATE_ALLOWANCE_WINDOW_S"],
    )


def lateness_window(raw: bytes | None) -> LatenessWindow:
    if not raw:
        return LatenessWindow()
    try:
        return LatenessWindow.from_json(orjson.loads(raw))
    except orjson.JSONDecodeError:
        return LatenessWindow()


def _process_chunk(
    shard: int, now: float, on_persisted: Callable[[list[dict]], None] | None = None
) -> ShardReport:
    client = bus.client()
    report = ShardReport()
    cursor, held, max_ts, generation, lateness = client.mget(
        CURSOR_KEY.format(shard),
        HELD_KEY.format(shard),
        MAX_TS_KEY.format(shard),
        GENERATION_KEY.format(shard),
        LATENESS_KEY.format(shard),
    )
    cursor = cursor or b"0-0"
    entries = client.xrange(
        bus.STREAM_KEY.format(shard), min=b"(" + cursor, count=ENTRIES_PER_CHUNK
    )
    report.entries = len(entries)
    held = orjson.loads(held or b"[]")
    if not entries and not held:
        return report
    max_ts = float(max_ts or 0.0)
    policy = hold_policy()
    window = lateness_window(lateness)
    for entry_id, fields in entries:
        cursor = entry_id
        scanner = fields[b"s"].decode()
        received_at = float(fields[b"t"])
        frontier = min(max_ts, received_at)
        oldest = math.inf
        for ts, tag, rssi, battery in orjson.loads(fields[b"r"]):
            held.append([ts, scanner, tag, rssi, battery, received_at])
            oldest = min(oldest, ts)
            max_ts = max(max_ts, ts)
        if frontier > 0.0 and oldest != math.inf:
            window.observe(now, frontier - oldest, policy)

    report.hold_s = window.hold_s(now, policy)
    watermark = min(max_ts, now) - report.hold_s
    oldest_arrival = now - settings.WARDWISE["HOLD_MAX_S"]
    released = [r for r in held if r[0] <= watermark or r[5] <= oldest_arrival]
    still_held = [r for r in held if not (r[0] <= watermark or r[5] <= oldest_arrival)]
    released.sort(key=itemgetter(0, 1, 2, 3))
    if released:
        report.newest_receipt = max(r[5] for r in released)
        report.reading_waits = [now - r[5] for r in released]
    report.held = len(still_held)

    runtime = site_runtime()
    by_tag: dict[str, list[list]] = defaultdict(list)
    for row in released:
        if row[2] in runtime.asset_of_tag:
            by_tag[row[2]].append(row)
        else:
            report.unknown_tag += 1
    tags = sorted(by_tag)
    if generation is None or runtime.shard_generation.get(shard) != generation:
        runtime.forget_shard(shard)  # another process committed this shard since
    try:
        work = _apply(shard, tags, by_tag, runtime, client, report)
        report.updates = _persist(work, runtime) if work else []
        if on_persisted is not None and report.updates:
            on_persisted(report.updates)
        _commit_chunk(
            client,
            shard,
            {w.tag: [runtime.engine.export_packed(w.tag), w.persist] for w in work},
            cursor,
            still_held,
            max_ts,
            window,
            runtime,
        )
    except BaseException:
        runtime.forget_shard(shard)  # the engine went ahead of what Redis holds
        raise
    return report


def _apply(shard, tags, by_tag, runtime: SiteRuntime, client, report: ShardReport):
    """Run the released readings of each tag through the engine, from the tag's state."""
    engine = runtime.engine
    cached = runtime.shard_tags[shard]
    missing = [tag for tag in tags if tag not in cached]
    if missing:
        stored = client.hmget(STATE_KEY.format(shard), missing)
        for tag, raw in zip(missing, stored, strict=True):
            runtime.persist_state[tag] = _restore(tag, raw, runtime, client)
            cached.add(tag)
    work: list[TagWork] = []
    for tag in tags:
        state = engine.tags.get(tag)
        last_ts = state.last_ts if state is not None else -math.inf
        tag_work = TagWork(tag, runtime.asset_of_tag[tag], runtime.persist_state[tag])
        for ts, scanner, _, rssi, battery, _received in by_tag[tag]:
            if ts < last_ts:
                report.late += 1
                continue
            last_ts = ts
            report.applied += 1
            if battery is not None:
                tag_work.battery = battery
            tag_work.last_heard = ts
            tag_work.estimates.extend(engine.process(Reading(ts, scanner, tag, rssi)))
        report.estimates += len(tag_work.estimates)
        work.append(tag_work)
    return work


def _restore(tag: str, raw: bytes | None, runtime: SiteRuntime, client) -> dict:
    """Load a tag's stored engine state into the engine; returns its persist state. States are
    [packed engine state, persist state]; a release before packed states wrote
    {"engine": named state, "persist": ...}, still read after an upgrade."""
    if not raw:
        return {}
    stored = orjson.loads(raw)
    engine = runtime.engine
    if isinstance(stored, dict):
        if stored.get("engine"):
            engine.import_state(tag, stored["engine"])
        return stored.get("persist", {})
    packed, persist = stored
    if packed is not None:
        try:
            key = LocalizationEngine.packed_layout_key(packed)
            layout = None if key == engine.layout_key else runtime.layout_of(key, client)
            engine.import_packed(tag, packed, layout)
        except ValueError as exc:
            log.warning(
                "tag %s: its stored filter state is unreadable (%s); it starts afresh", tag, exc
            )
    return persist


def _dumps(value) -> bytes:
    """JSON for the shard's Redis state (orjson: the state of every tag of a chunk is written
    back after it, several times faster than the standard library)."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)


def _commit_chunk(
    client,
    shard: int,
    states: dict,
    cursor,
    held: list,
    max_ts: float,
    window: LatenessWindow,
    runtime: SiteRuntime,
) -> None:
    """Tag states, cursor and held readings move forward together, or not at all; the new
    generation tells this process next time that its in-memory states are still current."""
    generation = uuid.uuid4().hex.encode()
    pipe = client.pipeline(transaction=True)
    if not runtime.layout_saved:
        engine = runtime.engine
        pipe.set(LAYOUT_KEY.format(engine.layout_key), _dumps(engine.layout), nx=True)
    if states:
        pipe.hset(
            STATE_KEY.format(shard),
            mapping={tag: _dumps(state) for tag, state in states.items()},
        )
    pipe.set(CURSOR_KEY.format(shard), cursor)
    pipe.set(HELD_KEY.format(shard), _dumps(held))
    pipe.set(MAX_TS_KEY.format(shard), repr(max_ts))
    pipe.set(LATENESS_KEY.format(shard), _dumps(window.to_json()))
    pipe.set(GENERATION_KEY.format(shard), generation)
    pipe.execute()
    runtime.layout_saved = True
    runtime.shard_generation[shard] = generation


@dataclass
class TagWork:
    tag: str
    asset_id: int
    persist: dict
    estimates: list = field(default_factory=list)
    battery: float | None = None
    last_heard: float | None = None


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _load_confirmed(items: list[TagWork]) -> None:
    """The last confirmed zone of tags whose state does not know it yet (new tags, state from
    before it was kept, a lost Redis state): from the stored location, one query."""
    if not items:
        return
    rows = {
        asset_id: (zone_id, name, at)
        for asset_id, zone_id, name, at in AssetLocation.objects.filter(
            asset_id__in=[item.asset_id for item in items]
        ).values_list("asset_id", "confirmed_zone_id", "confirmed_zone__name", "confirmed_at")
    }
    for item in items:
        zone_id, name, at = rows.get(item.asset_id, (None, None, None))
        item.persist.update(
            confirmed_zone_id=zone_id,
            confirmed_zone=name,
            confirmed_ts=at.timestamp() if at is not None else None,
        )


def _evidence(estimate, zone_id, last_heard: float, offline_zones) -> confidence.Evidence:
    return confidence.Evidence(
        zone=zone_id,
        zone_probability=estimate.zone_probability,
        scanners_used=estimate.scanners_used,
        accuracy_m=estimate.accuracy_m,
        estimated_at=estimate.ts,
        last_seen_at=last_heard,
        zone_scanners_offline=zone_id in offline_zones,
    )


def _persist(work: list[TagWork], runtime: SiteRuntime) -> list[dict]:
    """Write locations, history samples and zone stays; returns the live updates to push.

    Each estimate that confirms its zone (tracking.confidence: zone posterior, scanners,
    accuracy, the zone's scanners not all offline) becomes the tag's last confirmed zone, kept in
    its persist state and written with the location."""
    interval = settings.WARDWISE["POSITION_SAMPLE_INTERVAL_S"]
    move_m = settings.WARDWISE["POSITION_SAMPLE_MOVE_M"]
    limits = quality.thresholds()
    located = [item for item in work if item.estimates]
    offline_zones = quality.offline_zone_ids() if located else frozenset()
    _load_confirmed([item for item in located if "confirmed_ts" not in item.persist])
    known_zones = set(runtime.zone_id.values()) if located else set()
    locations, samples, updates = [], [], []
    zone_changes: list[tuple[int, datetime, int | None]] = []
    heard_only: dict[int, datetime] = {}
    seen_write_s = settings.WARDWISE["LAST_SEEN_WRITE_S"]
    batteries: dict[str, float] = {}
    for item in work:
        if item.battery is not None and item.battery != item.persist.get("battery"):
            batteries[item.tag] = item.battery
            item.persist["battery"] = item.battery
        if not item.estimates:
            # Positions come every second or two and carry the last-seen time; in between, a
            # heard tag's row is only touched again once LAST_SEEN_WRITE_S has passed.
            heard = item.last_heard
            if heard is not None and heard - item.persist.get("seen_ts", -math.inf) >= seen_write_s:
                heard_only[item.asset_id] = _moment(heard)
                item.persist["seen_ts"] = heard
            continue
        persist = item.persist
        floor_before = persist.get("floor_id")
        for estimate in item.estimates:
            floor_id = runtime.floor_id.get(estimate.floor)
            if floor_id is None:
                continue
            zone_id = runtime.zone_id.get((floor_id, estimate.zone)) if estimate.zone else None
            moved = math.hypot(
                estimate.x - persist.get("x", math.inf), estimate.y - persist.get("y", math.inf)
            )
            zone_changed = zone_id != persist.get("zone_id") or floor_id != persist.get("floor_id")
            if zone_changed or moved > move_m or estimate.ts - persist.get("ts", 0) >= interval:
                samples.append(
                    (
                        item.asset_id,
                        _moment(estimate.ts),
                        floor_id,
                        zone_id,
                        estimate.x,
                        estimate.y,
                        estimate.accuracy_m,
                    )
                )
                persist.update(ts=estimate.ts, x=estimate.x, y=estimate.y)
            if zone_id != persist.get("stay_zone_id"):
                zone_changes.append((item.asset_id, _moment(estimate.ts), zone_id))
                persist["stay_zone_id"] = zone_id
            persist.update(zone_id=zone_id, floor_id=floor_id)
            if confidence.supports_room(
                _evidence(estimate, zone_id, estimate.ts, offline_zones), limits
            ):
                persist.update(
                    confirmed_zone_id=zone_id,
                    confirmed_zone=estimate.zone,
                    confirmed_ts=estimate.ts,
                )
        last = item.estimates[-1]
        floor_id = persist.get("floor_id")
        if floor_id is None:
            continue
        last_heard = max(item.last_heard or last.ts, last.ts)
        persist["seen_ts"] = last_heard
        judged = confidence.assess(
            _evidence(last, persist.get("zone_id"), last_heard, offline_zones), last_heard, limits
        )
        confirmed_zone_id = persist.get("confirmed_zone_id")
        if confirmed_zone_id is not None and confirmed_zone_id not in known_zones:
            # the zone was deleted since: the foreign key must not point at it
            persist.update(confirmed_zone_id=None, confirmed_zone=None, confirmed_ts=None)
            confirmed_zone_id = None
        confirmed_at = (
            _moment(persist["confirmed_ts"]) if persist.get("confirmed_ts") is not None else None
        )
        locations.append(  # in the order of store.LOCATION_COLUMNS
            (
                item.asset_id,
                floor_id,
                persist.get("zone_id"),
                last.x,
                last.y,
                last.accuracy_m,
                _moment(last.ts),
                _moment(last_heard),
                Presence.PRESENT.value,
                last.zone_probability,
                last.scanners_used,
                confirmed_zone_id,
                confirmed_at,
            )
        )
        updates.append(
            {
                "asset_id": item.asset_id,
                "floor_id": floor_id,
                "zone_id": persist.get("zone_id"),
                "zone": last.zone or None,
                "x": round(last.x, 3),
                "y": round(last.y, 3),
                "accuracy_m": round(last.accuracy_m, 3),
                "ts": _moment(last.ts).isoformat(),
                "presence": Presence.PRESENT,
                "last_seen": _moment(last_heard).isoformat(),
                "zone_confidence": last.zone_probability,
                "scanners_used": last.scanners_used,
                "quality": judged.quality.value,
                "quality_reasons": [reason.value for reason in judged.reasons],
                "last_confirmed_zone_id": confirmed_zone_id,
                "last_confirmed_zone": persist.get("confirmed_zone"),
                "last_confirmed_at": confirmed_at.isoformat() if confirmed_at else None,
            }
        )
        if floor_before is not None and floor_before != floor_id:
            updates[-1]["previous_floor_id"] = floor_before

    with transaction.atomic():
        stay_watch = events.StayWatch(asset_id for asset_id, _, _ in zone_changes)
        # One round trip for all the writes. The listeners of emit_changes stay outside the
        # pipeline: the ORM reads an UPDATE's row count at once, which a pipeline has not yet.
        with prepared.pipelined():
            store.upsert_locations(locations)
            store.insert_samples(samples)
            store.write_stays(zone_changes)
            store.touch_last_seen(heard_only)
            store.write_batteries(batteries)
        stay_watch.emit_changes()

    statuses = store.asset_statuses([u["asset_id"] for u in updates])
    for update in updates:
        update["status"] = statuses.get(update["asset_id"], "")
    return updates
