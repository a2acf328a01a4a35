"""Maintenance alerts through the shared alert lifecycle: one alert per asset, schedule and due
date, opened when the maintenance falls due (or the configured days before), updated as it turns
overdue with its severity rising, never duplicated by the periodic checks, told to the
schedule's escalation policy, and resolved automatically when the work order is finished."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Alert, AlertEvent, AlertState, EscalationPolicy
from tests.factories import (
    AssetFactory,
    AssetLocationFactory,
    EscalationPolicyFactory,
    EscalationTierFactory,
    UserFactory,
)
from workflows import alerting, maintenance, tasks
from workflows.models import MaintenanceSchedule, WorkOrder

pytestmark = pytest.mark.django_db


@pytest.fixture
def biomed_desk():
    policy = EscalationPolicyFactory(name="Biomed desk")
    tier = EscalationTierFactory(policy=policy, position=0, channels=["log"])
    tier.users.add(UserFactory(username="tech", roles=["biomed"]))
    return policy


@pytest.fixture
def pump_pm(ward, biomed_desk):
    """A pump in Room 1 whose 6-monthly PM fell due 3 days ago; alerts a week ahead."""
    today = timezone.localdate()
    pump = AssetFactory(name="Pump M1", asset_type=ward["pumps"])
    AssetLocationFactory(asset=pump, floor=ward["floor"], zone=ward["zones"]["room"])
    schedule = MaintenanceSchedule.objects.create(
        name="Pump PM",
        asset_type=ward["pumps"],
        interval_days=180,
        starts_on=today - timedelta(days=3),
        alert_days_before=7,
        critical_after_days=30,
        policy=biomed_desk,
    )
    return {"pump": pump, "schedule": schedule, "due": today - timedelta(days=3)}


def maintenance_alerts():
    return Alert.objects.filter(kind=alerting.MAINTENANCE_DUE)


def test_one_alert_follows_the_incident_from_due_to_overdue_to_critical(pump_pm, biomed_desk):
    due = pump_pm["due"]
    assert maintenance.check_maintenance_alerts(today=due - timedelta(days=8))["open"] == 0
    assert not maintenance_alerts().exists()

    opened = maintenance.check_maintenance_alerts(today=due - timedelta(days=7))
    assert opened == {"open": 1, "opened": 1, "resolved": 0}
    alert = maintenance_alerts().get()
    assert alert.source == "workflows"
    assert alert.subject == f"maintenance:{pump_pm['schedule'].pk}:asset:{pump_pm['pump'].pk}"
    assert alert.title == "Pump M1: Pump PM"
    assert (alert.severity, alert.state, alert.last_value) == ("info", AlertState.OPEN, -7.0)
    assert "due in 7 days" in alert.message
    assert "Room 1" in alert.message
    assert alert.policy == biomed_desk
    assert alert.tier == 0, "the schedule's policy was told at once"
    assert alert.details["due_on"] == due.isoformat()

    updated_at = alert.updated_at
    again = maintenance.check_maintenance_alerts(today=due - timedelta(days=7))
    assert again == {"open": 1, "opened": 0, "resolved": 0}
    alert.refresh_from_db()
    assert alert.updated_at == updated_at, "an unchanged day is not even rewritten"

    maintenance.check_maintenance_alerts(today=due + timedelta(days=1))
    maintenance.check_maintenance_alerts(today=due + timedelta(days=1))
    alert.refresh_from_db()
    assert (alert.severity, alert.last_value) == ("warning", 1.0)
    assert "1 day overdue" in alert.message
    raised = alert.events.filter(kind=AlertEvent.Kind.ESCALATED_SEVERITY)
    assert list(raised.values_list("data__old", "data__new")) == [("info", "warning")]

    maintenance.check_maintenance_alerts(today=due + timedelta(days=30))
    alert.refresh_from_db()
    assert alert.severity == "critical"
    assert "30 days overdue" in alert.message
    assert maintenance_alerts().count() == 1
    assert alert.events.filter(kind=AlertEvent.Kind.OPENED).count() == 1


def test_finishing_the_work_order_resolves_the_alert(
    pump_pm, client, django_capture_on_commit_callbacks
):
    maintenance.refresh_maintenance_due()
    maintenance.check_maintenance_alerts()
    alert = maintenance_alerts().get()
    assert alert.severity == "warning"
    order = WorkOrder.objects.get(asset=pump_pm["pump"], kind="preventive", status="open")
    assert f"work order #{order.pk}" in alert.message

    client.force_login(UserFactory(username="bio-tech", roles=["biomed"]))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.patch(
            f"/api/v1/workflows/maintenance/work-orders/{order.pk}/",
            {"status": "done", "notes": "PM passed"},
            "application/json",
        )
    assert response.status_code == 200, response.content
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED
    assert alert.resolved_automatically
    assert alert.resolution_note.startswith(f"maintenance done: work order #{order.pk} completed")

    assert maintenance.check_maintenance_alerts() == {"open": 0, "opened": 0, "resolved": 0}
    assert maintenance_alerts().count() == 1, "the next due date is half a year away"


def test_a_schedule_without_alerts_or_no_longer_applying_raises_nothing(pump_pm):
    schedule = pump_pm["schedule"]
    schedule.raise_alerts = False
    schedule.save()
    maintenance.check_maintenance_alerts()
    assert not maintenance_alerts().exists()

    schedule.raise_alerts = True
    schedule.save()
    maintenance.check_maintenance_alerts()
    alert = maintenance_alerts().get()
    pump = pump_pm["pump"]
    pump.status = "retired"
    pump.save()
    assert maintenance.check_maintenance_alerts()["resolved"] == 1
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED
    assert "no longer applies" in alert.resolution_note


def test_moving_the_due_date_ends_the_incident(pump_pm):
    maintenance.check_maintenance_alerts()
    alert = maintenance_alerts().get()
    schedule = pump_pm["schedule"]
    later = timezone.localdate() + timedelta(days=3)
    schedule.starts_on = later
    schedule.save()
    result = maintenance.check_maintenance_alerts()
    assert result == {"open": 1, "opened": 1, "resolved": 1}
    alert.refresh_from_db()
    assert alert.resolution_note == f"no longer due: the schedule now has it due on {later}"
    current = maintenance_alerts().exclude(state=AlertState.RESOLVED).get()
    assert (current.severity, current.details["due_on"]) == ("info", later.isoformat())


def test_without_a_policy_the_default_policy_is_told(pump_pm):
    schedule = pump_pm["schedule"]
    schedule.policy = None
    schedule.save()
    maintenance.check_maintenance_alerts()
    assert maintenance_alerts().get().policy == EscalationPolicy.objects.get(is_default=True)


def test_a_schedule_created_overdue_through_the_api_alerts_at_once(ward, client, biomed_desk):
    pump = AssetFactory(name="Pump API", asset_type=ward["pumps"])
    client.force_login(UserFactory(username="bio-api", roles=["biomed"]))
    response = client.post(
        "/api/v1/workflows/maintenance/schedules/",
        {
            "name": "Electrical safety",
            "asset": pump.pk,
            "interval_days": 365,
            "starts_on": str(timezone.localdate() - timedelta(days=40)),
            "critical_after_days": 30,
            "policy": biomed_desk.pk,
        },
        "application/json",
    )
    assert response.status_code == 201, response.content
    alert = maintenance_alerts().get()
    assert (alert.severity, alert.policy) == ("critical", biomed_desk)
    due = client.get("/api/v1/workflows/maintenance/due/").json()["results"]
    assert [(row["asset"], row["alert_id"]) for row in due] == [("Pump API", alert.pk)]


def test_the_periodic_task_checks_the_alerts(pump_pm):
    result = tasks.check_maintenance_alerts.apply().get()
    assert result == {"open": 1, "opened": 1, "resolved": 0}
    assert maintenance_alerts().get().severity == "warning"
