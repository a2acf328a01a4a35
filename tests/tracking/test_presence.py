"""Assets unheard for too long become missing; gateways that stop reporting go offline."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from hospital.devices import issue_token
from tests.factories import ScannerFactory, TagFactory
from tracking.models import AssetLocation, Presence, ScannerHealth
from tracking.presence import mark_missing_assets, mark_offline_scanners, prune_position_history

pytestmark = pytest.mark.django_db
HEARTBEAT = "/api/v1/scanners/heartbeat/"


def locate(asset, floor, seen_ago_s: float):
    seen = timezone.now() - timedelta(seconds=seen_ago_s)
    return AssetLocation.objects.create(
        asset=asset, floor=floor, x=1, y=1, accuracy_m=2, estimated_at=seen, last_seen_at=seen
    )


def test_an_asset_unheard_longer_than_the_limit_is_missing(settings):
    settings.WARDWISE = {**settings.WARDWISE, "ASSET_MISSING_AFTER_S": 600}
    scanner = ScannerFactory()
    quiet, heard = TagFactory().asset, TagFactory().asset
    locate(quiet, scanner.floor, seen_ago_s=601)
    locate(heard, scanner.floor, seen_ago_s=30)
    assert mark_missing_assets() == 1
    assert AssetLocation.objects.get(asset=quiet).presence == Presence.MISSING
    assert AssetLocation.objects.get(asset=heard).presence == Presence.PRESENT
    assert mark_missing_assets() == 0


def test_a_silent_scanner_goes_offline_and_a_reporting_one_stays_online(settings):
    settings.WARDWISE = {**settings.WARDWISE, "SCANNER_OFFLINE_AFTER_S": 300}
    now = timezone.now()
    silent = ScannerHealth.objects.create(
        scanner=ScannerFactory(), online=True, last_batch_at=now - timedelta(seconds=400)
    )
    beating = ScannerHealth.objects.create(
        scanner=ScannerFactory(),
        online=True,
        last_batch_at=now - timedelta(seconds=400),
        last_heartbeat_at=now - timedelta(seconds=20),
    )
    assert mark_offline_scanners() == 1
    silent.refresh_from_db()
    beating.refresh_from_db()
    assert (silent.online, beating.online) == (False, True)


def test_history_older_than_the_retention_is_pruned(settings):
    from tracking.models import PositionSample

    settings.WARDWISE = {**settings.WARDWISE, "POSITION_HISTORY_DAYS": 30}
    scanner = ScannerFactory()
    asset = TagFactory().asset
    for days in (31, 29):
        PositionSample.objects.create(
            asset=asset,
            ts=timezone.now() - timedelta(days=days),
            floor=scanner.floor,
            x=0,
            y=0,
            accuracy_m=1,
        )
    assert prune_position_history() == 1
    assert PositionSample.objects.count() == 1


def test_a_heartbeat_is_stored_and_shown_per_scanner(client, redis_bus):
    scanner = ScannerFactory()
    token = issue_token(scanner=scanner)
    body = {
        "agent_version": "0.1.0",
        "uptime_s": 3600.5,
        "spool_depth": 12,
        "dropped_evicted": 3,
        "dropped_poison": 1,
        "sources": {"ble": "scanning (passive)"},
    }
    response = client.post(
        HEARTBEAT,
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
    )
    assert response.status_code == 204
    health = ScannerHealth.objects.get(scanner=scanner)
    assert (health.agent_version, health.spool_depth, health.spool_dropped) == ("0.1.0", 12, 4)
    assert health.online
    assert health.details["sources"] == {"ble": "scanning (passive)"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"spool_depth": "many"}', "spool_depth has the wrong type"),
        ('{"uptime_s": -4}', "uptime_s must be a non-negative number"),
    ],
)
def test_a_bad_heartbeat_is_a_400_that_says_why(client, redis_bus, body, message):
    token = issue_token(scanner=ScannerFactory())
    response = client.post(
        HEARTBEAT, body, content_type="application/json", HTTP_AUTHORIZATION=f"Token {token}"
    )
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_a_heartbeat_needs_a_scanner_token(client, redis_bus):
    assert client.post(HEARTBEAT, "{}", content_type="application/json").status_code == 401
