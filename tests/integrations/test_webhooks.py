"""Outbound webhooks against a real HTTP server on 127.0.0.1: signatures, retries with back-off,
the delivery log, and the events the pipeline and the presence check emit."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from integrations import events, tasks, webhooks
from integrations.models import DeliveryState, EventType, Webhook, WebhookDelivery
from tests.factories import (
    AssetFactory,
    AssetLocationFactory,
    FloorFactory,
    ScannerFactory,
    TagFactory,
    ZoneFactory,
)
from tracking import bus, pipeline, presence
from tracking.ingestion import RssiReading
from tracking.models import Presence, ZoneStay

pytestmark = pytest.mark.django_db
SECRET = "a-shared-secret-of-some-length"


class Receiver:
    """A webhook receiver that answers with the next scripted status and records requests."""

    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.requests: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/wardwise"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory():
    made = []

    def make(*statuses):
        receiver = Receiver(statuses)
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture(autouse=True)
def fresh_receivers():
    events.forget_receivers()
    yield
    events.forget_receivers()


def hook(url, **kwargs) -> Webhook:
    return Webhook.objects.create(name=kwargs.pop("name", "cmms"), url=url, secret=SECRET, **kwargs)


def test_a_delivery_is_signed_and_retried_with_backoff_until_it_lands(receiver_factory, settings):
    settings.WARDWISE_WEBHOOKS = {"RETRY_BASE_S": 2.0, "RETRY_MAX_S": 60.0}
    receiver = receiver_factory(500, 503)
    webhook = hook(receiver.url)
    [delivery_id] = events.emit(EventType.ASSET_MISSING, {"asset": {"id": 1}}, timezone.now())
    first = webhooks.attempt(delivery_id)
    second = webhooks.attempt(delivery_id)
    assert 2.0 <= first <= 2.2
    assert 4.0 <= second <= 4.4
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert delivery.state == DeliveryState.PENDING
    assert delivery.last_status == 503
    assert delivery.next_attempt_at > timezone.now()
    assert webhooks.attempt(delivery_id) is None
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.DELIVERED
    assert delivery.attempts == 3
    assert len(receiver.requests) == 3
    event_ids = {headers["X-Wardwise-Delivery"] for headers, _ in receiver.requests}
    assert event_ids == {str(delivery.event_id)}
    for headers, body in receiver.requests:
        assert headers["X-Wardwise-Event"] == "asset.missing"
        assert webhooks.verify_signature(
            webhook.secret,
            headers["X-Wardwise-Timestamp"],
            body,
            headers["X-Wardwise-Signature"],
        )
        assert not webhooks.verify_signature(
            "another-secret-entirely",
            headers["X-Wardwise-Timestamp"],
            body,
            headers["X-Wardwise-Signature"],
        )
        assert json.loads(body)["data"] == {"asset": {"id": 1}}
    assert webhooks.attempt(delivery_id) is None, "a delivered event is never sent again"
    assert len(receiver.requests) == 3


def test_an_old_timestamp_fails_verification():
    body = b'{"x":1}'
    signed = webhooks.signature(SECRET, 1_000, body)
    assert webhooks.verify_signature(SECRET, "1000", body, signed, now=1_100)
    assert not webhooks.verify_signature(SECRET, "1000", body, signed, now=2_000)
    assert not webhooks.verify_signature(SECRET, "1000", body + b" ", signed, now=1_100)


def test_delivery_gives_up_after_max_attempts(receiver_factory):
    receiver = receiver_factory(500, 500, 500)
    hook(receiver.url, max_attempts=3)
    [delivery_id] = events.emit(EventType.ASSET_MISSING, {})
    assert webhooks.attempt(delivery_id) is not None
    assert webhooks.attempt(delivery_id) is not None
    assert webhooks.attempt(delivery_id) is None
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert delivery.state == DeliveryState.FAILED
    assert delivery.last_error == "HTTP 500"


def test_an_unreachable_receiver_is_retried_and_due_ones_are_found(receiver_factory):
    receiver = receiver_factory()
    url = receiver.url
    receiver.close()
    hook(url)
    [delivery_id] = events.emit(EventType.ASSET_MISSING, {})
    assert webhooks.attempt(delivery_id) is not None
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert delivery.last_status is None
    assert delivery.last_error
    later = delivery.next_attempt_at + timedelta(minutes=5)
    assert webhooks.due_deliveries(now=later) == [delivery_id]
    assert webhooks.due_deliveries(now=timezone.now()) == []


def test_only_interested_active_webhooks_get_events(receiver_factory):
    receiver = receiver_factory()
    hook(receiver.url, name="moves", event_types=[EventType.ZONE_ENTERED])
    hook(receiver.url, name="off", is_active=False)
    assert events.emit(EventType.ASSET_MISSING, {}) == []
    assert len(events.emit(EventType.ZONE_ENTERED, {})) == 1


def test_zone_changes_emit_left_and_entered(receiver_factory):
    hook(receiver_factory().url)
    floor = FloorFactory()
    west = ZoneFactory(floor=floor, name="West", polygon=[[0, 0], [5, 0], [5, 5], [0, 5]])
    east = ZoneFactory(floor=floor, name="East", polygon=[[5, 0], [10, 0], [10, 5], [5, 5]])
    asset = AssetFactory(name="Pump 9")
    start = timezone.now() - timedelta(minutes=10)
    ZoneStay.objects.create(asset=asset, zone=west, entered_at=start)
    watch = events.StayWatch([asset.pk])
    moved = timezone.now()
    ZoneStay.objects.filter(asset=asset, left_at__isnull=True).update(left_at=moved)
    ZoneStay.objects.create(asset=asset, zone=east, entered_at=moved)
    assert watch.emit_changes() == 2
    sent = {d.event_type: d.payload for d in WebhookDelivery.objects.all()}
    assert sent["asset.zone.left"]["data"]["zone"]["name"] == "West"
    assert sent["asset.zone.left"]["data"]["left_at"] == moved.isoformat().replace("+00:00", "Z")
    assert sent["asset.zone.entered"]["data"]["zone"]["name"] == "East"
    assert sent["asset.zone.entered"]["data"]["asset"]["name"] == "Pump 9"
    again = events.StayWatch([asset.pk])
    assert again.emit_changes() == 0, "an unchanged stay emits nothing"


def test_the_presence_check_emits_asset_missing(receiver_factory):
    hook(receiver_factory().url)
    zone = ZoneFactory()
    stale = timezone.now() - timedelta(hours=2)
    location = AssetLocationFactory(
        zone=zone, floor=zone.floor, estimated_at=stale, last_seen_at=stale
    )
    assert presence.mark_missing_assets() == 1
    location.refresh_from_db()
    assert location.presence == Presence.MISSING
    [delivery] = WebhookDelivery.objects.filter(event_type="asset.missing")
    assert delivery.payload["data"]["asset"]["id"] == location.asset_id
    assert delivery.payload["data"]["last_zone"]["id"] == zone.pk


def test_the_retry_task_requeues_overdue_deliveries(receiver_factory, monkeypatch):
    hook(receiver_factory().url)
    [delivery_id] = events.emit(EventType.ASSET_MISSING, {})
    WebhookDelivery.objects.filter(pk=delivery_id).update(
        created_at=timezone.now() - timedelta(hours=1)
    )
    queued = []
    monkeypatch.setattr(tasks.deliver_webhook, "delay", queued.append)
    assert tasks.retry_due_webhooks() == 1
    assert queued == [delivery_id]


def test_the_pipeline_emits_zone_events_when_an_asset_moves(receiver_factory, redis_bus, settings):
    settings.WARDWISE = {**settings.WARDWISE, "LATE_ALLOWANCE_S": 2.0, "HOLD_MAX_S": 5.0}
    hook(receiver_factory().url)
    floor = FloorFactory(width_m=20, height_m=6)
    ZoneFactory(floor=floor, name="West", polygon=[[0, 0], [10, 0], [10, 6], [0, 6]])
    ZoneFactory(floor=floor, name="East", polygon=[[10, 0], [20, 0], [20, 6], [10, 6]])
    ScannerFactory(serial="w", floor=floor, x=5, y=3)
    ScannerFactory(serial="e", floor=floor, x=15, y=3)
    tag = TagFactory(asset=AssetFactory(name="Pump 1")).tag_id
    start = 1_795_000_000.0

    def hear(begin, near, far):
        for i in range(40):
            ts = begin + i * 0.5
            bus.publish(near, [RssiReading(ts, tag, -55.0)], ts)
            bus.publish(far, [RssiReading(ts + 0.01, tag, -80.0)], ts)
        for shard in range(bus.shard_count()):
            pipeline.process_shard(shard, now=begin + 60)

    hear(start, "w", "e")
    hear(start + 30, "e", "w")
    sent = [
        (d.event_type, d.payload["data"]["zone"]["name"])
        for d in WebhookDelivery.objects.order_by("pk")
    ]
    assert sent == [
        ("asset.zone.entered", "West"),
        ("asset.zone.left", "West"),
        ("asset.zone.entered", "East"),
    ]
