"""The facilities alert console websocket: who may connect, the snapshot, live changes."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from alerts import services
from alerts.live import GROUP
from hospital.routing import websocket_urlpatterns
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

APP = URLRouter(websocket_urlpatterns)


def open_alert(subject="sensor:1"):
    return services.open_alert(
        source="test",
        kind="temperature-high",
        subject=subject,
        title="fridge 1",
        severity="warning",
        started_at=timezone.now(),
        value=9.1,
    )


async def connect(user):
    communicator = WebsocketCommunicator(APP, "/ws/alerts/")
    communicator.scope["user"] = user
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


def test_anonymous_and_wrong_role_users_are_refused():
    nurse = UserFactory(username="n", roles=["nurse"])

    async def run():
        for user in (AnonymousUser(), nurse):
            communicator, connected, code = await connect(user)
            assert not connected
            assert code == 4403
            await communicator.disconnect()

    async_to_sync(run)()


def test_facilities_get_a_snapshot_then_live_changes():
    user = UserFactory(username="f", roles=["facilities"])
    first = open_alert()

    async def run():
        communicator, connected, _ = await connect(user)
        assert connected
        snapshot = await communicator.receive_json_from(timeout=5)
        assert snapshot["type"] == "snapshot"
        assert [a["id"] for a in snapshot["alerts"]] == [first.pk]
        second = await database_sync_to_async(open_alert)("sensor:2")
        await database_sync_to_async(services.acknowledge)(first, user, "going")
        changes = [await communicator.receive_json_from(timeout=5) for _ in range(2)]
        await communicator.disconnect()
        return second, changes

    second, changes = async_to_sync(run)()
    assert [(c["event"], c["alert"]["id"]) for c in changes] == [
        ("opened", second.pk),
        ("acknowledged", first.pk),
    ]
    assert changes[1]["alert"]["acknowledged_by"] == "f"


def test_admins_may_connect():
    admin = UserFactory(username="boss", roles=["admin"])

    async def run():
        communicator, connected, _ = await connect(admin)
        assert connected
        assert (await communicator.receive_json_from(timeout=5))["alerts"] == []
        await communicator.disconnect()

    async_to_sync(run)()


def test_over_the_real_redis_channel_layer(settings):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [settings.REDIS_URL], "prefix": "ww-test-alerts"},
        }
    }
    channel_layers.backends.clear()
    user = UserFactory(username="f2", roles=["facilities"])

    async def run():
        communicator, connected, _ = await connect(user)
        assert connected
        await communicator.receive_json_from(timeout=5)
        alert = await database_sync_to_async(open_alert)("sensor:redis")
        message = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return alert, message

    try:
        alert, message = async_to_sync(run)()
        assert (message["event"], message["alert"]["id"]) == ("opened", alert.pk)
        layer = channel_layers["default"]
        assert type(layer).__name__ == "RedisChannelLayer"
        assert GROUP == "alerts"
    finally:
        channel_layers.backends.clear()


def test_an_idle_console_stays_connected_over_the_configured_redis_layer(settings):
    """channels_redis blocks 5 s per receive; with redis-py's default 5 s socket timeout the read
    timed out and the consumer died, dropping an idle console every few seconds. The project's
    own layer configuration (hospital/settings.py) must outlast that."""
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    import asyncio

    from channels.layers import channel_layers

    channel_layers.backends.clear()
    user = UserFactory(username="f3", roles=["facilities"])

    async def run():
        communicator, connected, _ = await connect(user)
        assert connected
        await communicator.receive_json_from(timeout=5)
        await asyncio.sleep(7)  # longer than one blocking receive
        alert = await database_sync_to_async(open_alert)("sensor:idle")
        message = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return alert, message

    try:
        alert, message = async_to_sync(run)()
        assert (message["event"], message["alert"]["id"]) == ("opened", alert.pk)
    finally:
        channel_layers.backends.clear()
