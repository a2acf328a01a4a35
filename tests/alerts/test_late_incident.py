"""An incident found only in late readings (it started and ended before they arrived) is stored
already resolved, and still reaches people once and the live console. Through the real path:
readings over HTTP, the rule engine, the alert row, Celery (eager) and the e-mail backend, the
facilities websocket over the configured channel layer, with real commits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.core import mail
from django.utils import timezone

from alerts import services
from alerts.models import Alert, AlertEvent, AlertState
from environment import rules
from hospital.routing import websocket_urlpatterns
from tests.coldchain import minutes_ago, reading
from tests.factories import EscalationPolicyFactory, EscalationTierFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

APP = URLRouter(websocket_urlpatterns)


@pytest.fixture
def told(fridge, monkeypatch, settings):
    """The fridge's policy: tier 0 (e-mail to night-tech) at once, tier 1 after 15 minutes;
    notifications delivered in-process by Celery, e-mail kept in memory."""
    from hospital.celery import app

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    monkeypatch.setitem(app.conf, "task_always_eager", True)
    policy = EscalationPolicyFactory(repeat_every_min=10)
    first = EscalationTierFactory(policy=policy, position=0, after_min=0)
    first.users.add(UserFactory(username="night-tech", roles=["facilities"]))
    second = EscalationTierFactory(policy=policy, position=1, after_min=15)
    second.users.add(UserFactory(username="manager", roles=["admin"]))
    fridge.escalation_policy = policy
    fridge.save()
    return policy


def upload(client, sensor, points):
    """points: (minutes ago, temperature) pairs, in one batch."""
    import json

    body = {"readings": [reading(sensor, minutes_ago(m), t) for m, t in points]}
    response = client.post(
        "/api/v1/readings/environment/",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {sensor.token}",
    )
    assert response.status_code == 202, response.content
    return response.json()


#: Two hours ago the fridge sat at 9.5 °C for 15 minutes (alarm delay 10) and then recovered
#: for 20 (hysteresis 10): the whole excursion is over before its readings arrive.
EXCURSION = [(m, 9.5) for m in range(120, 105, -1)] + [(m, 5.0) for m in range(105, 85, -1)]


def assert_told_once(alert):
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED
    assert alert.resolved_automatically
    assert alert.resolution_note == services.PAST_INCIDENT_NOTE
    assert alert.started_at == minutes_ago(120)
    assert alert.ended_at == minutes_ago(105)
    assert (alert.tier, alert.notifications_sent) == (0, 1)
    kinds = list(alert.events.order_by("at", "pk").values_list("kind", flat=True))
    assert kinds == ["opened", "ended", "resolved", "notified"]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["night-tech@hospital.test"]
    assert "over before its readings arrived" in mail.outbox[0].body
    # Resolved, so nothing escalates or repeats later.
    assert services.run_escalations(now=timezone.now() + timedelta(hours=2)) == 0
    assert len(mail.outbox) == 1


def test_a_spool_upload_with_a_finished_excursion_notifies_once_and_goes_live(
    client, fridge, told, facilities_user
):
    async def run():
        communicator = WebsocketCommunicator(APP, "/ws/alerts/")
        communicator.scope["user"] = facilities_user
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        assert (await communicator.receive_json_from(timeout=5))["type"] == "snapshot"
        await database_sync_to_async(upload)(client, fridge, EXCURSION)
        message = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return message

    message = async_to_sync(run)()
    alert = Alert.objects.get()
    assert (alert.kind, alert.severity) == (rules.TEMPERATURE_HIGH, "warning")
    assert message["type"] == "alert"
    assert message["event"] == "opened"
    assert (message["alert"]["id"], message["alert"]["state"]) == (alert.pk, "resolved")
    assert message["alert"]["sensor"] == fridge.serial
    assert_told_once(alert)


def test_readings_filling_a_gap_reveal_a_finished_excursion(client, fridge, told):
    """The sensor's live readings came through on time around a gap; its buffered readings of
    the gap arrive later and show the excursion (the engine replays the stored history)."""
    upload(client, fridge, [(m, 5.0) for m in range(130, 120, -1)])
    upload(client, fridge, [(m, 5.0) for m in range(85, 60, -1)])
    assert not Alert.objects.exists()
    upload(client, fridge, EXCURSION)
    alert = Alert.objects.get()
    assert_told_once(alert)
    assert not AlertEvent.objects.filter(kind=AlertEvent.Kind.ESCALATED).exists()
