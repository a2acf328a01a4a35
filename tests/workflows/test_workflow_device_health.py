"""Device health: battery history and forecast per tag, gateway-offline and tag-silent alerts
raised from the presence checks (delivered over the alerts websocket) and cleared on recovery."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from alerts.models import Alert, AlertState
from hospital.routing import websocket_urlpatterns
from tests.factories import (
    AssetLocationFactory,
    ScannerHealthFactory,
    TagFactory,
    UserFactory,
)
from tracking import presence
from tracking.models import AssetLocation, Tag
from workflows import alerting, devicehealth
from workflows.models import BatterySample


@pytest.mark.django_db
def test_daily_samples_and_a_forecast_per_tag(client, biomed, nurse):
    tag = TagFactory(battery_pct=80.0)
    today = timezone.localdate()
    for i in range(20):
        BatterySample.objects.create(
            tag=tag, day=today - timedelta(days=20 - i), battery_pct=90.0 - i, min_pct=90.0 - i
        )
    assert devicehealth.snapshot_batteries(today) == 1
    Tag.objects.filter(pk=tag.pk).update(battery_pct=69.0)
    devicehealth.snapshot_batteries(today)
    sample = BatterySample.objects.get(tag=tag, day=today)
    assert (sample.battery_pct, sample.min_pct) == (69.0, 69.0)
    client.force_login(nurse)
    assert client.get("/api/v1/workflows/device-health/tags/").status_code == 403
    client.force_login(biomed)
    rows = client.get("/api/v1/workflows/device-health/tags/").json()["results"]
    assert rows[0]["tag_id"] == tag.tag_id
    assert rows[0]["trend_pct_per_day"] == pytest.approx(-1.0, abs=0.05)
    replace_on = timezone.datetime.fromisoformat(rows[0]["replace_on"]).date()
    assert abs((replace_on - (today + timedelta(days=59))).days) <= 1
    detail = client.get(f"/api/v1/workflows/device-health/tags/{tag.pk}/").json()
    assert len(detail["history"]) == 21


@pytest.mark.django_db
def test_low_battery_alert_raised_and_cleared_after_a_swap():
    tag = TagFactory(battery_pct=9.0)
    devicehealth.check_device_health()
    alert = Alert.objects.get(kind=alerting.BATTERY_LOW)
    assert alert.unit == "%"
    Tag.objects.filter(pk=tag.pk).update(battery_pct=100.0)
    devicehealth.check_device_health()
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


@pytest.mark.django_db
def test_gateway_offline_from_the_presence_check_and_back_online(
    django_capture_on_commit_callbacks, client, facilities
):
    long_ago = timezone.now() - timedelta(hours=1)
    health = ScannerHealthFactory(last_heartbeat_at=long_ago, last_batch_at=long_ago)
    with django_capture_on_commit_callbacks(execute=True):
        assert presence.mark_offline_scanners() == 1
    alert = Alert.objects.get(kind=alerting.GATEWAY_OFFLINE)
    assert alert.subject == f"scanner:{health.scanner_id}"
    assert alert.started_at == long_ago
    devicehealth.check_device_health()
    assert Alert.objects.filter(kind=alerting.GATEWAY_OFFLINE).count() == 1
    client.force_login(facilities)
    gateways = client.get("/api/v1/workflows/device-health/gateways/").json()
    assert gateways["results"][0]["scanner__serial"] == health.scanner.serial
    health.online = True
    health.save()
    devicehealth.check_device_health()
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


@pytest.mark.django_db(transaction=True)
def test_a_silent_tag_alerts_over_the_websocket_and_clears_when_heard():
    user = UserFactory(username="fac-ws", roles=["facilities"])
    tag = TagFactory()
    AssetLocationFactory(asset=tag.asset, last_seen_at=timezone.now() - timedelta(hours=2))

    async def run():
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/alerts/")
        communicator.scope["user"] = user
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        await communicator.receive_json_from(timeout=5)
        marked = await database_sync_to_async(presence.mark_missing_assets)()
        message = await communicator.receive_json_from(timeout=10)
        await communicator.disconnect()
        return marked, message

    marked, message = async_to_sync(run)()
    assert marked == 1
    assert (message["event"], message["alert"]["kind"]) == ("opened", alerting.TAG_SILENT)
    assert message["alert"]["subject"] == f"tag:{tag.tag_id}"
    AssetLocation.objects.filter(asset=tag.asset).update(presence="present")
    devicehealth.check_device_health()
    assert Alert.objects.get(kind=alerting.TAG_SILENT).state == AlertState.RESOLVED
