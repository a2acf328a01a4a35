"""The floor websocket: a snapshot on connect, then coalesced position and status changes.

A floor with hundreds of moving assets produces more updates than a phone should draw, so each
connection keeps the newest state per asset and sends an asset again only once a second has
passed since it last sent that asset. Nothing is dropped but superseded states: the newest
state of every asset is always sent, at most a second late.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from hospital import observability
from hospital.models import Floor
from hospital.roles import ADMIN, BIOMED, FACILITIES, NURSE, has_role
from tracking import live

CLINICAL_ROLES = (NURSE, BIOMED, FACILITIES, ADMIN)
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NO_SUCH_FLOOR = 4404


class Coalescer:
    """Newest state per asset, released at most once per `interval_s` per asset.

    Location updates older (by event time) than what the client already has or will get are
    ignored, so a late message can never move a marker backwards; status changes merge into
    whatever is pending for the asset.
    """

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.pending: dict[int, dict] = {}
        self.last_sent: dict[int, float] = {}
        self.newest_ts: dict[int, datetime] = {}

    def seen(self, state: dict) -> None:
        """Record what the client already has (the snapshot)."""
        ts = live.parse_ts(state.get("ts"))
        if ts is not None:
            self.newest_ts[state["asset_id"]] = ts

    def add_location(self, update: dict) -> None:
        asset_id = update["asset_id"]
        ts = live.parse_ts(update.get("ts"))
        newest = self.newest_ts.get(asset_id)
        if ts is not None and newest is not None and ts < newest:
            return
        if ts is not None:
            self.newest_ts[asset_id] = ts
        self.pending[asset_id] = {**self.pending.get(asset_id, {}), **update}

    def add_status(self, update: dict) -> None:
        asset_id = update["asset_id"]
        self.pending[asset_id] = {**self.pending.get(asset_id, {}), **update}

    def next_due(self) -> float | None:
        """The earliest time (loop clock) at which something pending may be sent."""
        if not self.pending:
            return None
        return min(self.last_sent.get(a, float("-inf")) + self.interval_s for a in self.pending)

    def take_due(self, now: float) -> list[dict]:
        due = [
            a for a in self.pending if now >= self.last_sent.get(a, float("-inf")) + self.interval_s
        ]
        for asset_id in due:
            self.last_sent[asset_id] = now
        return [self.pending.pop(asset_id) for asset_id in sorted(due)]


class FloorConsumer(AsyncJsonWebsocketConsumer):
    """`ws/floors/<floor_id>/`: people with a clinical role, signed in with a session.

    Refusals accept the handshake and close at once with an application code (4401 not signed
    in, 4403 no clinical role, 4404 no such floor), because browsers do not expose the reason
    of a refused handshake.
    """

    interval_s = 1.0

    async def connect(self) -> None:
        self.floor_id = int(self.scope["url_route"]["kwargs"]["floor_id"])
        self.group = live.floor_group(self.floor_id)
        self.coalescer = Coalescer(self.interval_s)
        self.timer: asyncio.TimerHandle | None = None
        self.timer_when: float | None = None
        self.flushing: set[asyncio.Task] = set()
        self.counted = False
        self.joined = False
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not await database_sync_to_async(has_role)(user, *CLINICAL_ROLES):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if not await database_sync_to_async(Floor.objects.filter(pk=self.floor_id).exists)():
            await self.close(code=CLOSE_NO_SUCH_FLOOR)
            return
        # Join before reading the snapshot: updates racing it are held by the coalescer and
        # the snapshot's event times keep older ones from overwriting it.
        await self.channel_layer.group_add(self.group, self.channel_name)
        self.joined = True
        assets = await database_sync_to_async(live.floor_snapshot)(self.floor_id)
        for state in assets:
            self.coalescer.seen(state)
        await self.send_json(
            {
                "type": "snapshot",
                "floor_id": self.floor_id,
                "ts": datetime.now(UTC).isoformat(),
                "assets": assets,
            }
        )
        self.counted = True
        await sync_to_async(observability.incr, thread_sensitive=False)("websocket_clients", 1)
        self._schedule()

    async def disconnect(self, code) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        for task in list(self.flushing):
            task.cancel()
        if self.joined:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if self.counted:
            self.counted = False
            await sync_to_async(observability.incr, thread_sensitive=False)("websocket_clients", -1)

    async def receive_json(self, content, **kwargs) -> None:
        """The protocol is server-to-client only; a client's `ping` gets a `pong`."""
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def asset_locations(self, event: dict) -> None:
        for update in event["updates"]:
            self.coalescer.add_location(update)
        self._schedule()

    async def asset_status(self, event: dict) -> None:
        self.coalescer.add_status(event["update"])
        self._schedule()

    def _schedule(self) -> None:
        due = self.coalescer.next_due()
        if due is None or (self.timer is not None and self.timer_when <= due):
            return
        if self.timer is not None:
            self.timer.cancel()
        loop = asyncio.get_running_loop()
        self.timer_when = max(due, loop.time())
        self.timer = loop.call_at(self.timer_when, self._fire)

    def _fire(self) -> None:
        self.timer = None
        task = asyncio.ensure_future(self._flush())
        self.flushing.add(task)
        task.add_done_callback(self.flushing.discard)

    async def _flush(self) -> None:
        assets = self.coalescer.take_due(asyncio.get_running_loop().time())
        if assets:
            await self.send_json({"type": "updates", "floor_id": self.floor_id, "assets": assets})
        self._schedule()
