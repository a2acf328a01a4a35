"""The alert lifecycle through the real path: readings in over HTTP, rule engine, alert rows,
timeline, acknowledge and resolve through the API, escalation with an injected clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from alerts import services
from alerts.models import Alert, AlertEvent, AlertState
from environment import monitoring, rules
from environment.models import SensorState
from tests.coldchain import minutes_ago, reading
from tests.factories import EscalationPolicyFactory, EscalationTierFactory, UserFactory

pytestmark = pytest.mark.django_db


def upload(post, sensor, points):
    """points: (minutes ago, temperature) pairs, uploaded in one batch."""
    body = {"readings": [reading(sensor, minutes_ago(m), t) for m, t in points]}
    response = post(sensor.token, body)
    assert response.status_code == 202, response.content
    return response.json()


def events(alert):
    return list(alert.events.order_by("at", "pk").values_list("kind", flat=True))


def test_excursion_opens_one_alert_updated_in_place_then_auto_resolves(fridge, post):
    # 60 min ago to 46 min ago: 9 °C, i.e. 14 minutes above range (alarm delay 10 min)
    upload(post, fridge, [(m, 5.0) for m in (62, 61)])
    upload(post, fridge, [(m, 9.0) for m in range(60, 54, -1)])
    assert not Alert.objects.exists()
    upload(post, fridge, [(m, 9.0) for m in range(54, 49, -1)])
    alert = Alert.objects.get()
    assert (alert.kind, alert.severity, alert.state) == (
        rules.TEMPERATURE_HIGH,
        "warning",
        AlertState.OPEN,
    )
    assert alert.started_at == minutes_ago(60)
    assert alert.sensor == fridge
    assert alert.tier == 0
    upload(post, fridge, [(48, 11.0), (47, 11.5)])
    upload(post, fridge, [(m, 11.0) for m in range(46, 36, -1)])
    alert.refresh_from_db()
    assert Alert.objects.count() == 1
    assert alert.severity == "critical"
    assert alert.peak_value == 11.5
    upload(post, fridge, [(m, 5.0) for m in range(36, 30, -1)])
    alert.refresh_from_db()
    assert alert.state == AlertState.OPEN
    assert alert.ended_at == minutes_ago(36)
    upload(post, fridge, [(m, 5.0) for m in range(30, 20, -1)])
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED
    assert alert.resolved_automatically
    assert events(alert) == ["opened", "notified", "severity", "notified", "ended", "resolved"]
    assert Alert.objects.count() == 1


def test_a_late_batch_that_completes_an_alarm_condition_raises_the_alert(fridge, post):
    upload(post, fridge, [(30, 5.0), (5, 9.0), (4, 9.0)])
    upload(post, fridge, [(m, 9.0) for m in range(20, 5, -1)])
    alert = Alert.objects.get()
    assert alert.started_at == minutes_ago(20)
    assert alert.state == AlertState.OPEN


def test_readings_from_a_gateway_relay_drive_the_same_rules(gateway, relayed, post):
    relayed.token = gateway.token
    upload(post, relayed, [(m, 12.0) for m in range(30, 10, -1)])
    assert Alert.objects.get().sensor == relayed


def test_acknowledge_and_resolve_by_hand_through_the_api(fridge, post, client, facilities_user):
    upload(post, fridge, [(m, 9.0) for m in range(30, 10, -1)])
    alert = Alert.objects.get()
    client.force_login(facilities_user)
    url = f"/api/v1/alerts/{alert.pk}/"
    response = client.post(url + "acknowledge/", {"comment": "on my way"}, "application/json")
    assert response.status_code == 200
    assert response.json()["acknowledged_by"] == "fac"
    again = client.post(url + "acknowledge/", {}, "application/json")
    assert again.status_code == 409
    no_note = client.post(url + "resolve/", {"note": " "}, "application/json")
    assert no_note.status_code in (400, 409)
    response = client.post(
        url + "resolve/", {"note": "vaccines moved to fridge 3; quarantined"}, "application/json"
    )
    assert response.status_code == 200
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED
    assert alert.resolved_by == facilities_user
    assert not alert.resolved_automatically
    detail = client.get(url).json()
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds[-2:] == ["acknowledged", "resolved"]
    assert detail["events"][-1]["actor"] == "fac"


def test_condition_going_on_after_a_manual_resolve_does_not_reopen_or_duplicate(fridge, post):
    upload(post, fridge, [(m, 9.0) for m in range(40, 25, -1)])
    alert = Alert.objects.get()
    services.resolve(alert, UserFactory(), "moved stock")
    upload(post, fridge, [(m, 9.0) for m in range(25, 15, -1)])
    assert Alert.objects.count() == 1
    upload(post, fridge, [(m, 5.0) for m in range(15, 0, -1)])
    alert.refresh_from_db()
    assert alert.ended_at == minutes_ago(15)
    upload(post, fridge, [(0.5, 9.0)])
    assert Alert.objects.count() == 1


def test_nurses_may_not_acknowledge_and_strangers_may_not_read(fridge, post, client, nurse_user):
    upload(post, fridge, [(m, 9.0) for m in range(30, 10, -1)])
    alert = Alert.objects.get()
    client.force_login(nurse_user)
    assert client.get("/api/v1/alerts/").status_code == 403
    response = client.post(f"/api/v1/alerts/{alert.pk}/acknowledge/", {}, "application/json")
    assert response.status_code == 403
    client.logout()
    assert client.get("/api/v1/alerts/").status_code == 403


def test_alert_list_filters(fridge, post, client, facilities_user):
    upload(post, fridge, [(m, 9.0) for m in range(30, 10, -1)])
    client.force_login(facilities_user)
    assert client.get("/api/v1/alerts/?state=open").json()["count"] == 1
    assert client.get("/api/v1/alerts/?state=resolved").json()["count"] == 0
    assert (
        client.get(f"/api/v1/alerts/?sensor={fridge.serial}&severity=warning").json()["count"] == 1
    )
    assert client.get("/api/v1/alerts/?kind=door-open").json()["count"] == 0


def test_every_step_is_in_the_audit_trail(fridge, post, facilities_user):
    from auditlog.models import LogEntry

    upload(post, fridge, [(m, 9.0) for m in range(30, 10, -1)])
    alert = Alert.objects.get()
    services.acknowledge(alert, facilities_user, "seen")
    services.resolve(alert, facilities_user, "door fixed")
    entries = LogEntry.objects.get_for_object(alert)
    assert entries.count() >= 3
    changed = [e.changes_dict.get("state") for e in entries if "state" in e.changes_dict]
    assert ["open", "acknowledged"] in changed
    assert ["acknowledged", "resolved"] in changed


def test_offline_sensor_raises_an_alert_and_clears_when_heard_again(fridge, post):
    upload(post, fridge, [(1, 5.0)])
    state = SensorState.objects.get(sensor=fridge)
    later = state.last_received_at + timedelta(minutes=2)
    assert monitoring.check_sensors(now=later)["offline"] == 0
    much_later = state.last_received_at + timedelta(minutes=4)
    assert monitoring.check_sensors(now=much_later)["offline"] == 1
    monitoring.check_sensors(now=much_later + timedelta(minutes=1))
    alert = Alert.objects.get(kind=rules.SENSOR_OFFLINE)
    assert alert.state == AlertState.OPEN
    upload(post, fridge, [(0, 5.0)])
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED
    assert Alert.objects.filter(kind=rules.SENSOR_OFFLINE).count() == 1


def test_periodic_pass_evaluates_readings_an_upload_could_not(fridge, post, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("rule engine bug")

    monkeypatch.setattr(rules, "update_monitor", broken)
    upload(post, fridge, [(m, 9.0) for m in range(30, 10, -1)])
    assert SensorState.objects.get(sensor=fridge).pending_evaluation
    assert not Alert.objects.exists()
    monkeypatch.undo()
    monitoring.check_sensors()
    assert Alert.objects.get().kind == rules.TEMPERATURE_HIGH
    assert not SensorState.objects.get(sensor=fridge).pending_evaluation


# --- escalation and notification, with an injected clock -------------------------------------


@pytest.fixture
def policy(db):
    policy = EscalationPolicyFactory(repeat_every_min=10)
    first = EscalationTierFactory(policy=policy, position=0, after_min=0)
    first.users.add(UserFactory(username="night-tech", roles=["facilities"]))
    second = EscalationTierFactory(policy=policy, position=1, after_min=15)
    second.users.add(UserFactory(username="manager", roles=["admin"]))
    return policy


def open_one(policy, now):
    return services.open_alert(
        source="test",
        kind="temperature-high",
        subject="sensor:x",
        title="fridge x",
        severity="warning",
        started_at=now,
        value=9.0,
        policy=policy,
        now=now,
    )


def test_unacknowledged_alert_repeats_then_escalates_to_the_next_tier(policy):
    t0 = timezone.now()
    alert = open_one(policy, t0)
    assert alert.tier == 0
    assert services.run_escalations(now=t0 + timedelta(minutes=5)) == 0
    assert services.run_escalations(now=t0 + timedelta(minutes=10)) == 1
    alert.refresh_from_db()
    assert (alert.tier, alert.notifications_sent) == (0, 2)
    assert services.run_escalations(now=t0 + timedelta(minutes=15)) == 1
    alert.refresh_from_db()
    assert alert.tier == 1
    assert services.run_escalations(now=t0 + timedelta(minutes=16)) == 0
    assert events(alert) == ["opened", "notified", "repeated", "escalated"]


def test_acknowledging_stops_reminders_and_escalation(policy, facilities_user):
    t0 = timezone.now()
    alert = open_one(policy, t0)
    services.acknowledge(alert, facilities_user, "on it", now=t0 + timedelta(minutes=3))
    assert services.run_escalations(now=t0 + timedelta(hours=2)) == 0
    alert.refresh_from_db()
    assert alert.tier == 0


def test_delivery_sends_email_to_the_tier_recipients(policy, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    alert = open_one(policy, timezone.now())
    notification = services.deliver(alert.pk, 0, "new alert", "email")
    assert [r.username for r in notification.recipients] == ["night-tech"]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["night-tech@hospital.test"]
    assert "WARNING" in mail.outbox[0].subject
    services.deliver(alert.pk, 0, "new alert", "log")
    assert len(mail.outbox) == 1


def test_notifications_go_through_celery_after_commit(
    policy, monkeypatch, settings, django_capture_on_commit_callbacks
):
    from hospital.celery import app

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    monkeypatch.setitem(app.conf, "task_always_eager", True)
    with django_capture_on_commit_callbacks(execute=True):
        open_one(policy, timezone.now())
    assert len(mail.outbox) == 1


def test_group_members_are_recipients(db):
    policy = EscalationPolicyFactory()
    tier = EscalationTierFactory(policy=policy, position=0)
    from django.contrib.auth.models import Group

    tier.groups.add(Group.objects.get_or_create(name="facilities")[0])
    UserFactory(username="a", roles=["facilities"])
    UserFactory(username="b", roles=["nurse"])
    assert [u.username for u in tier.recipients()] == ["a"]


def test_default_policy_exists_out_of_the_box(db):
    policy = services.default_policy()
    assert policy is not None
    assert [t.after_min for t in policy.tiers.all()] == [0, 15]


def test_report_and_clear_condition_for_other_sources(db):
    now = timezone.now()
    first = services.report_condition(
        source="tracking",
        kind="par-level",
        subject="unit:icu/pumps",
        title="ICU pumps",
        severity="warning",
        started_at=now,
        value=3,
    )
    second = services.report_condition(
        source="tracking",
        kind="par-level",
        subject="unit:icu/pumps",
        title="ICU pumps",
        severity="critical",
        started_at=now,
        value=1,
        peak=1,
    )
    assert first.pk == second.pk
    second.refresh_from_db()
    assert (second.severity, second.peak_value) == ("critical", 1)
    cleared = services.clear_condition(
        source="tracking", kind="par-level", subject="unit:icu/pumps", ended_at=now
    )
    assert cleared.state == AlertState.RESOLVED
    assert AlertEvent.objects.filter(alert=cleared, kind="resolved").exists()
