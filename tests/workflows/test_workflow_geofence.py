"""Geofences through the real path: readings in, the pipeline's zone change, the fence is
crossed, the alert is opened through the shared lifecycle (with the rule's recipients) and
delivered over the alerts websocket, and cleared when the asset is back in bounds."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from alerts.models import Alert, AlertState
from hospital.routing import websocket_urlpatterns
from integrations.events import ZoneChange
from tests.factories import (
    AssetFactory,
    AssetTypeFactory,
    EscalationPolicyFactory,
    EscalationTierFactory,
    FloorFactory,
    UserFactory,
    ZoneFactory,
)
from workflows import alerting, zones
from workflows.models import Geofence

APP = URLRouter(websocket_urlpatterns)


def exit_fence(ward, **kwargs):
    return Geofence.objects.create(
        name="Pumps leaving by the exit",
        event="enter",
        scope="zone-kind",
        zone_kind="exit",
        asset_type=ward["pumps"],
        severity="critical",
        **kwargs,
    )


@pytest.mark.django_db(transaction=True)
def test_a_pump_entering_the_exit_alerts_over_the_real_redis_websocket(ward, radio, settings):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [settings.REDIS_URL], "prefix": "ww-test-workflows"},
        }
    }
    channel_layers.backends.clear()
    policy = EscalationPolicyFactory(name="Security desk")
    tier = EscalationTierFactory(policy=policy, position=0, channels=["log"])
    guard = UserFactory(username="guard", roles=["facilities"])
    tier.users.add(guard)
    fence = exit_fence(ward, policy=policy)
    pump = radio.tagged("Pump X")

    async def run():
        communicator = WebsocketCommunicator(APP, "/ws/alerts/")
        communicator.scope["user"] = guard
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        assert (await communicator.receive_json_from(timeout=5))["type"] == "snapshot"
        await database_sync_to_async(radio.place)(pump, "room")
        await database_sync_to_async(radio.place)(pump, "exit")
        message = await communicator.receive_json_from(timeout=10)
        await communicator.disconnect()
        return message

    try:
        message = async_to_sync(run)()
    finally:
        channel_layers.backends.clear()
    assert message["event"] == "opened"
    assert message["alert"]["kind"] == alerting.GEOFENCE_ENTER
    assert message["alert"]["severity"] == "critical"
    alert = Alert.objects.get(kind=alerting.GEOFENCE_ENTER)
    assert alert.source == "workflows"
    assert alert.subject == f"geofence:{fence.pk}:asset:{pump.pk}"
    assert alert.policy == policy
    assert alert.tier == 0
    assert "Exit" in alert.message


@pytest.mark.django_db
def test_a_fence_for_another_type_is_silent(ward, radio):
    exit_fence(ward)
    chair = AssetFactory(name="Chair 1", asset_type=AssetTypeFactory(slug="wheelchair", name="W"))
    from tests.factories import TagFactory

    TagFactory(asset=chair)
    radio.place(chair, "room")
    radio.place(chair, "exit")
    assert not Alert.objects.filter(kind=alerting.GEOFENCE_ENTER).exists()


@pytest.mark.django_db
def test_quiet_hours_silence_the_rule(ward, radio):
    now = timezone.localtime()
    start = (now - timedelta(hours=3)).time().replace(microsecond=0)
    end = (now + timedelta(hours=3)).time().replace(microsecond=0)
    exit_fence(ward, quiet_start=start, quiet_end=end)
    pump = radio.tagged("Pump Q")
    radio.place(pump, "room")
    radio.place(pump, "exit")
    assert not Alert.objects.filter(kind=alerting.GEOFENCE_ENTER).exists()


@pytest.mark.django_db
def test_a_wheelchair_leaving_its_home_floor_alerts_and_clears_on_return(
    django_capture_on_commit_callbacks,
):
    chairs = AssetTypeFactory(slug="wheelchair", name="Wheelchair")
    home = FloorFactory(name="Ward 3")
    other = FloorFactory(name="Ward 4", building=home.building)
    bay = ZoneFactory(floor=home, name="Chair bay", kind="storage")
    lobby = ZoneFactory(floor=other, name="Lobby 4", kind="lobby")
    Geofence.objects.create(
        name="Wheelchairs stay on ward 3",
        event="exit",
        scope="floor",
        floor=home,
        asset_type=chairs,
    )
    chair = AssetFactory(name="Chair 7", asset_type=chairs)
    now = timezone.now()
    leave = ZoneChange(chair.pk, bay.pk, now, lobby.pk, now, None)
    zones.on_zone_changes([leave])
    alert = Alert.objects.get(kind=alerting.GEOFENCE_EXIT)
    assert alert.title == "Chair 7: Wheelchairs stay on ward 3"
    assert "Lobby 4" in alert.message
    zones.on_zone_changes([leave])
    assert Alert.objects.filter(kind=alerting.GEOFENCE_EXIT).count() == 1
    back = ZoneChange(chair.pk, lobby.pk, now, bay.pk, now, None)
    zones.on_zone_changes([back])
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED
    assert alert.resolved_automatically


@pytest.mark.django_db
def test_a_pump_leaving_its_building_alerts_but_not_when_it_changes_floor_inside_it():
    pumps = AssetTypeFactory(slug="infusion-pump", name="Infusion pump")
    ward = FloorFactory(name="Ward 5")
    upstairs = FloorFactory(name="Ward 6", building=ward.building)
    annex = FloorFactory(name="Annex 1")
    room = ZoneFactory(floor=ward, name="Room 501", kind="room")
    stairs_room = ZoneFactory(floor=upstairs, name="Room 601", kind="room")
    annex_room = ZoneFactory(floor=annex, name="Annex store", kind="storage")
    Geofence.objects.create(
        name="Pumps stay in the main building",
        event="exit",
        scope="building",
        building=ward.building,
        asset_type=pumps,
    )
    pump = AssetFactory(name="Pump 12", asset_type=pumps)
    now = timezone.now()
    zones.on_zone_changes([ZoneChange(pump.pk, room.pk, now, stairs_room.pk, now, None)])
    assert not Alert.objects.filter(kind=alerting.GEOFENCE_EXIT).exists()
    zones.on_zone_changes([ZoneChange(pump.pk, stairs_room.pk, now, annex_room.pk, now, None)])
    alert = Alert.objects.get(kind=alerting.GEOFENCE_EXIT)
    assert alert.title == "Pump 12: Pumps stay in the main building"


@pytest.mark.django_db
def test_geofence_api_roles_and_validation(client, biomed, nurse, ward):
    body = {"name": "Leave building", "event": "exit", "scope": "building"}
    client.force_login(nurse)
    assert client.post("/api/v1/workflows/geofences/", body, "application/json").status_code == 403
    client.force_login(biomed)
    missing = client.post("/api/v1/workflows/geofences/", body, "application/json")
    assert missing.status_code == 400
    body["building"] = ward["floor"].building_id
    body["quiet_start"] = "22:00"
    half = client.post("/api/v1/workflows/geofences/", body, "application/json")
    assert half.status_code == 400
    body["quiet_end"] = "06:00"
    created = client.post("/api/v1/workflows/geofences/", body, "application/json")
    assert created.status_code == 201, created.content
    assert Geofence.objects.get(name="Leave building").quiet_end == time(6)
