"""The webhook channel of alert notifications, against a real HTTP server on 127.0.0.1 that
checks the HMAC signature as docs/webhooks.md tells receivers to: alert events go through the
integrations app's signed, logged, retried delivery, per escalation tier and channel."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from alerts import services
from integrations import events, webhooks
from integrations.models import DeliveryState, Webhook, WebhookDelivery
from tests.factories import EscalationPolicyFactory, EscalationTierFactory, UserFactory

# Real commits, so deliveries are queued (and, in process, sent) when each step commits.
pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "pharmacy-pager-shared-secret"
ALERT_EVENTS = ["alert.opened", "alert.escalated", "alert.acknowledged", "alert.resolved"]


class Receiver:
    """Answers 401 to a request whose signature or timestamp is wrong, else the next scripted
    status (200 when none is left); keeps the requests it accepted."""

    def __init__(self, secret: str, statuses=()):
        self.statuses = list(statuses)
        self.accepted: list[tuple[dict, dict]] = []
        self.refused = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if not receiver.verify(secret, self.headers, body):
                    receiver.refused += 1
                    status = 401
                else:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    if status == 200:
                        receiver.accepted.append((dict(self.headers), json.loads(body)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/alerts"

    @staticmethod
    def verify(secret: str, headers, body: bytes) -> bool:
        timestamp = headers.get("X-Wardwise-Timestamp", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            return False
        expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
        return hmac.compare_digest(
            "sha256=" + expected.hexdigest(), headers.get("X-Wardwise-Signature", "")
        )

    @property
    def types(self) -> list[str]:
        return [document["type"] for _, document in self.accepted]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():
    made = []

    def make(secret=SECRET, statuses=()):
        made.append(Receiver(secret, statuses))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture(autouse=True)
def celery_in_process(monkeypatch, settings):
    """Tasks run in the test's process once the transaction commits, as a worker would run them."""
    from hospital.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    events.forget_receivers()
    yield
    events.forget_receivers()


def hook(url, name="pager", secret=SECRET, event_types=ALERT_EVENTS, **kwargs) -> Webhook:
    return Webhook.objects.create(
        name=name, url=url, secret=secret, event_types=event_types, **kwargs
    )


def policy_with(first: list[str], second: list[str]):
    policy = EscalationPolicyFactory(repeat_every_min=5)
    tier0 = EscalationTierFactory(policy=policy, position=0, after_min=0, channels=first)
    tier0.users.add(UserFactory(username="night-tech", roles=["facilities"]))
    tier1 = EscalationTierFactory(policy=policy, position=1, after_min=15, channels=second)
    tier1.users.add(UserFactory(username="manager", roles=["admin"]))
    return policy


def open_alert(policy, now, severity="warning"):
    return services.open_alert(
        source="environment",
        kind="temperature-high",
        subject="sensor:9",
        title="fridge-ward-1 (101)",
        severity=severity,
        started_at=now - timedelta(minutes=10),
        value=9.1,
        unit="°C",
        message="fridge-ward-1: temperature above range, now 9.1 °C",
        policy=policy,
        now=now,
    )


def test_an_alert_s_life_reaches_the_receiver_signed_once_per_event(receivers, facilities_user):
    receiver = receivers()
    hook(receiver.url)
    policy = policy_with(["log", "webhook"], ["webhook"])
    t0 = timezone.now()
    alert = open_alert(policy, t0)
    assert receiver.types == ["alert.opened"]
    assert services.run_escalations(now=t0 + timedelta(minutes=5)) == 1, "a reminder"
    assert receiver.types == ["alert.opened"], "reminders are not sent to webhooks"
    assert services.run_escalations(now=t0 + timedelta(minutes=15)) == 1
    assert receiver.types == ["alert.opened", "alert.escalated"]
    services.acknowledge(alert, facilities_user, "moving the vaccines to fridge 2")
    services.resolve(alert, facilities_user, "door seal replaced, stock quarantined")
    assert receiver.types == ALERT_EVENTS, "one event each, though two tiers have the channel"
    assert receiver.refused == 0
    documents = {document["type"]: document for _, document in receiver.accepted}
    opened = documents["alert.opened"]
    assert opened["data"]["alert"]["id"] == alert.pk
    assert opened["data"]["alert"]["severity"] == "warning"
    assert opened["data"]["notification"] == {
        "event": "opened",
        "reason": "new alert",
        "tier": 0,
        "recipients": ["night-tech"],
    }
    assert documents["alert.escalated"]["data"]["notification"]["tier"] == 1
    acknowledged = documents["alert.acknowledged"]["data"]["alert"]
    assert acknowledged["acknowledged_by"] == facilities_user.username
    assert acknowledged["acknowledge_comment"] == "moving the vaccines to fridge 2"
    resolved = documents["alert.resolved"]["data"]["alert"]
    assert resolved["state"] == "resolved"
    assert resolved["resolution_note"] == "door seal replaced, stock quarantined"
    assert resolved["resolved_by"] == facilities_user.username
    assert documents["alert.resolved"]["data"]["notification"]["tier"] == 1
    for headers, document in receiver.accepted:
        assert headers["X-Wardwise-Event"] == document["type"]
        assert headers["X-Wardwise-Delivery"] == document["id"]
    log = WebhookDelivery.objects.all()
    assert {d.state for d in log} == {DeliveryState.DELIVERED}
    assert sorted(d.event_type for d in log) == sorted(ALERT_EVENTS)


def test_a_tier_can_name_its_own_receiver(receivers):
    pharmacy, lab = receivers(), receivers()
    hook(pharmacy.url, name="pharmacy")
    hook(lab.url, name="lab")
    open_alert(policy_with(["webhook:pharmacy"], []), timezone.now())
    assert pharmacy.types == ["alert.opened"]
    assert lab.types == []


def test_tiers_without_the_channel_send_nothing_and_uninterested_receivers_get_nothing(receivers):
    receiver, locations = receivers(), receivers()
    hook(receiver.url)
    hook(locations.url, name="cmms", event_types=["asset.missing"])
    t0 = timezone.now()
    alert = open_alert(policy_with(["log"], ["webhook"]), t0)
    assert receiver.types == []
    services.run_escalations(now=t0 + timedelta(minutes=15))
    services.resolve(alert, note="ok", automatically=True)
    assert receiver.types == ["alert.escalated", "alert.resolved"]
    assert locations.types == []


def test_a_rise_to_critical_is_sent_once_as_escalated(receivers):
    receiver = receivers()
    hook(receiver.url)
    t0 = timezone.now()
    alert = open_alert(policy_with(["webhook"], ["webhook"]), t0)
    services.run_escalations(now=t0 + timedelta(minutes=15))
    services.update_alert(alert, severity="critical", value=11.0)
    assert receiver.types == ["alert.opened", "alert.escalated", "alert.escalated"]
    last = receiver.accepted[-1][1]["data"]
    assert last["notification"]["event"] == "severity"
    assert last["alert"]["severity"] == "critical"


def test_a_refused_delivery_is_retried_with_the_same_event_until_it_lands(receivers, settings):
    settings.WARDWISE_WEBHOOKS = {"RETRY_BASE_S": 1.0, "RETRY_MAX_S": 5.0}
    receiver = receivers(statuses=[503])
    hook(receiver.url)
    open_alert(policy_with(["webhook"], []), timezone.now())
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == DeliveryState.PENDING
    assert delivery.last_status == 503
    assert webhooks.attempt(delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.DELIVERED
    assert delivery.attempts == 2
    assert receiver.accepted[0][1]["id"] == str(delivery.event_id)


def test_a_wrong_secret_fails_the_receiver_s_check(receivers, settings):
    settings.WARDWISE_WEBHOOKS = {"RETRY_BASE_S": 1.0, "RETRY_MAX_S": 5.0}
    receiver = receivers(secret="the-receiver-expects-this-one")
    hook(receiver.url, max_attempts=1)
    open_alert(policy_with(["webhook"], []), timezone.now())
    assert receiver.refused == 1
    assert receiver.accepted == []
    assert WebhookDelivery.objects.get().state == DeliveryState.FAILED
