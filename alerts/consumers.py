"""The facilities alert console's websocket: a snapshot of unresolved alerts on connect, then
every change as it happens. Only signed-in facilities staff and administrators may connect."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from alerts.live import GROUP, payload
from alerts.models import Alert, AlertState
from hospital.roles import ADMIN, FACILITIES, has_role

FORBIDDEN = 4403


def snapshot() -> list[dict]:
    alerts = (
        Alert.objects.exclude(state=AlertState.RESOLVED)
        .select_related("sensor", "acknowledged_by")
        .order_by("-opened_at")
    )
    return [payload(alert) for alert in alerts]


class AlertConsumer(AsyncJsonWebsocketConsumer):
    joined = False

    async def connect(self):
        user = self.scope.get("user")
        if not await database_sync_to_async(has_role)(user, FACILITIES, ADMIN):
            await self.close(code=FORBIDDEN)
            return
        await self.channel_layer.group_add(GROUP, self.channel_name)
        self.joined = True
        await self.accept()
        await self.send_json(
            {"type": "snapshot", "alerts": await database_sync_to_async(snapshot)()}
        )

    async def disconnect(self, code):
        if self.joined:
            await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def receive_json(self, content, **kwargs):
        """The console only listens; acknowledging goes through the REST API (audited)."""

    async def alert_changed(self, message):
        await self.send_json(
            {"type": "alert", "event": message["event"], "alert": message["alert"]}
        )
