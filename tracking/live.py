"""Live floor updates: what the workers publish and what a floor's websocket clients receive.

Workers call `publish_location_updates` / `publish_status_change` from synchronous code; the
messages travel over the channel layer (Redis in production) to the group `floor-<id>`, where
every connected `tracking.consumers.FloorConsumer` coalesces them per asset before sending.
Updates are batched per floor, so a worker batch of thousands of positions costs one channel
message per floor and chunk, not one per asset.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
from collections import defaultdict
from concurrent import futures
from datetime import datetime

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

logger = logging.getLogger(__name__)

#: Channel-layer message types, handled by FloorConsumer.asset_locations / asset_status.
LOCATIONS_MESSAGE = "asset.locations"
STATUS_MESSAGE = "asset.status"

#: Updates per channel message: keeps each message well under the layer's size limits.
CHUNK_SIZE = 500
#: How long a publish waits for the one before it (Redis answering slowly) before going ahead.
PREVIOUS_PUBLISH_WAIT_S = 5.0

LOCATION_FIELDS = (
    "asset_id",
    "floor_id",
    "zone_id",
    "zone",
    "x",
    "y",
    "accuracy_m",
    "ts",
    "presence",
    "status",
    "last_seen",
    "zone_confidence",
    "scanners_used",
    "quality",
    "quality_reasons",
    "last_confirmed_zone_id",
    "last_confirmed_zone",
    "last_confirmed_at",
)


def floor_group(floor_id: int) -> str:
    return f"floor-{int(floor_id)}"


def location_update(update: dict) -> dict:
    """The wire form of one position update: exactly the documented fields (docs/api.md)."""
    return {field: update.get(field) for field in LOCATION_FIELDS}


def _group_messages(updates: list[dict]) -> list[tuple[str, dict]]:
    """(group, message) pairs: one message per floor and chunk. An update carrying
    `previous_floor_id` (the asset changed floors) is also sent to the floor it left, whose
    clients then drop the asset because its `floor_id` is no longer theirs."""
    by_floor: dict[int, list[dict]] = defaultdict(list)
    for update in updates:
        wire = location_update(update)
        by_floor[int(update["floor_id"])].append(wire)
        previous = update.get("previous_floor_id")
        if previous is not None and int(previous) != int(update["floor_id"]):
            by_floor[int(previous)].append(wire)
    messages = []
    for floor_id, items in by_floor.items():
        for start in range(0, len(items), CHUNK_SIZE):
            chunk = items[start : start + CHUNK_SIZE]
            messages.append((floor_group(floor_id), {"type": LOCATIONS_MESSAGE, "updates": chunk}))
    return messages


async def _send_all(messages: list[tuple[str, dict]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for group, message in messages:
        await layer.group_send(group, message)


class Publisher:
    """A process's own event loop, on a thread that lives as long as the process, for sending
    to a shared (Redis) channel layer from synchronous code.

    `async_to_sync` would start a new event loop for every call, and channels-redis keeps its
    connections per event loop: every drain of a worker paid a new Redis connection, a thread and
    a loop (14 % of a worker's time at 10,000 readings/s, docs/performance.md). Here the
    connections stay open, and the caller does not wait for its messages to go out, only for the
    previous ones, so at most one publish per process is in flight and a slow Redis slows the
    worker down instead of queueing without bound."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="wardwise-live-publisher", daemon=True
        )
        self.thread.start()
        self.in_flight: futures.Future | None = None

    def submit(self, messages: list[tuple[str, dict]]) -> futures.Future:
        self.wait(PREVIOUS_PUBLISH_WAIT_S)
        self.in_flight = asyncio.run_coroutine_threadsafe(_send_logged(messages), self.loop)
        return self.in_flight

    def wait(self, timeout: float) -> None:
        """Until the publish in flight is done (or failed, and logged) or `timeout` passed."""
        if self.in_flight is not None:
            futures.wait([self.in_flight], timeout=timeout)


async def _send_logged(messages: list[tuple[str, dict]]) -> None:
    """A failure is logged before the publish counts as done, so whoever waited for it finds
    the log line written."""
    try:
        await _send_all(messages)
    except Exception:
        logger.exception("live update delivery failed for %d message(s)", len(messages))


_publisher: Publisher | None = None
_publisher_lock = threading.Lock()


def publisher() -> Publisher:
    """This process's publisher; a forked child (a prefork pool) starts its own, because the
    parent's thread did not survive the fork."""
    global _publisher
    with _publisher_lock:
        if _publisher is None or _publisher.pid != os.getpid():
            _publisher = Publisher()
        return _publisher


@atexit.register
def _flush_at_exit() -> None:
    """A worker stopping after a drain still delivers that drain's positions."""
    if _publisher is not None and _publisher.pid == os.getpid():
        _publisher.wait(2.0)


def _send(messages: list[tuple[str, dict]]) -> None:
    """Deliver from synchronous code. Delivery is best effort: a broken channel layer must
    never fail the worker that computed the positions (they are already in PostgreSQL).

    The in-memory layer (the demo, tests without Redis) reaches only the consumers of the event
    loop it is used from, so it goes through `async_to_sync`, which runs the send on the loop of
    the `sync_to_async` caller; a shared layer goes through this process's publisher."""
    if not messages:
        return
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        if isinstance(layer, InMemoryChannelLayer):
            async_to_sync(_send_all)(messages)
        else:
            publisher().submit(messages)
    except Exception:
        logger.exception("live update delivery failed for %d message(s)", len(messages))


def publish_location_updates(updates: list[dict]) -> None:
    """Push new positions to the clients watching their floors.

    Each update is {"asset_id": int, "floor_id": int, "zone_id": int | None,
    "zone": str | None, "x": float, "y": float, "accuracy_m": float, "ts": "ISO-8601",
    "presence": str, "status": str, "last_seen": "ISO-8601", "zone_confidence": float | None,
    "scanners_used": int | None, "quality": "confirmed" | "uncertain" | "stale",
    "quality_reasons": [str], "last_confirmed_zone_id": int | None,
    "last_confirmed_zone": str | None, "last_confirmed_at": "ISO-8601" | None}, optionally
    with "previous_floor_id" when the asset changed floors. Call from synchronous code (a
    Celery task), never from an event loop.
    """
    _send(_group_messages(updates))


def publish_status_change(asset_id: int, floor_id: int | None, status: str, presence: str) -> None:
    """Push an asset's new status or presence (e.g. `missing`) to its floor's clients.
    An asset with no floor (never located) has no watchers, so nothing is sent."""
    if floor_id is None:
        return
    message = {
        "type": STATUS_MESSAGE,
        "update": {
            "asset_id": int(asset_id),
            "floor_id": int(floor_id),
            "status": status,
            "presence": presence,
        },
    }
    _send([(floor_group(floor_id), message)])


def publish_quality_changes(locations, judge) -> None:
    """Push the location quality of assets whose evidence changed without a new position
    (their zone's scanners went offline): {"asset_id", "floor_id", "quality",
    "quality_reasons"}, merged into the asset's state like a status change."""
    messages = []
    for location in locations:
        if location.floor_id is None:
            continue
        judged = judge(location)
        update = {
            "asset_id": int(location.asset_id),
            "floor_id": int(location.floor_id),
            "quality": judged.quality.value,
            "quality_reasons": [reason.value for reason in judged.reasons],
        }
        messages.append(
            (floor_group(location.floor_id), {"type": STATUS_MESSAGE, "update": update})
        )
    _send(messages)


def parse_ts(value: str | None) -> datetime | None:
    """An update's ISO-8601 time, or None when absent or unreadable."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def asset_state(location, judge) -> dict:
    """An AssetLocation (with asset, type, tag, zone and confirmed zone loaded) in the update's
    wire form, its quality judged now, plus what a map needs to label the marker."""
    asset = location.asset
    tag = getattr(asset, "tag", None)
    judged = judge(location)
    confirmed = location.confirmed_zone
    return {
        "asset_id": asset.pk,
        "floor_id": location.floor_id,
        "zone_id": location.zone_id,
        "zone": location.zone.name if location.zone is not None else None,
        "x": location.x,
        "y": location.y,
        "accuracy_m": location.accuracy_m,
        "ts": location.estimated_at.isoformat(),
        "presence": location.presence,
        "status": asset.status,
        "name": asset.name,
        "type": asset.asset_type.slug,
        "last_seen": location.last_seen_at.isoformat(),
        "battery_pct": tag.battery_pct if tag is not None else None,
        "zone_confidence": location.zone_probability,
        "scanners_used": location.scanners_used,
        "quality": judged.quality.value,
        "quality_reasons": [reason.value for reason in judged.reasons],
        "last_confirmed_zone_id": location.confirmed_zone_id,
        "last_confirmed_zone": confirmed.name if confirmed is not None else None,
        "last_confirmed_at": location.confirmed_at.isoformat() if location.confirmed_at else None,
    }


def floor_snapshot(floor_id: int) -> list[dict]:
    """Every asset currently located on the floor, its quality judged now: two queries (the
    locations, the offline scanners)."""
    from tracking import quality
    from tracking.models import AssetLocation

    locations = (
        AssetLocation.objects.filter(floor_id=floor_id)
        .select_related("asset__asset_type", "asset__tag", "zone", "confirmed_zone")
        .order_by("asset_id")
    )
    judge = quality.judge()
    return [asset_state(location, judge) for location in locations]
