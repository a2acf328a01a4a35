"""The admin pages of the workflows, and the hooks into other apps: a failing zone-change
listener never costs the pipeline its positions; the beat schedule names every task."""

from __future__ import annotations

import pytest
from django.urls import reverse

from integrations import events
from tracking.models import AssetLocation, ZoneStay
from workflows.models import RecallCampaign, RecallUnit

pytestmark = pytest.mark.django_db

MODELS = [
    "zonerule",
    "statuschange",
    "zonegroup",
    "parlevel",
    "geofence",
    "maintenanceschedule",
    "maintenancedue",
    "workorder",
    "recallcampaign",
    "batterysample",
]


@pytest.mark.parametrize("model", MODELS)
def test_every_admin_page_opens(admin_client, model):
    response = admin_client.get(reverse(f"admin:workflows_{model}_changelist"))
    assert response.status_code == 200


def test_saving_a_recall_in_the_admin_marks_the_units(admin_client, ward):
    from tests.factories import AssetFactory

    AssetFactory(name="Pump A", model="Space", serial_number="B-10")
    AssetFactory(name="Pump B", model="Space", serial_number="B-30")
    response = admin_client.post(
        reverse("admin:workflows_recallcampaign_add"),
        {
            "reference": "R-1",
            "title": "Door latch",
            "model": "Space",
            "serial_first": "B-1",
            "serial_last": "B-20",
            "issued_on": "2026-11-20",
            "units-TOTAL_FORMS": "0",
            "units-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    campaign = RecallCampaign.objects.get(reference="R-1")
    assert list(
        RecallUnit.objects.filter(campaign=campaign).values_list("asset__name", flat=True)
    ) == ["Pump A"]


def test_a_failing_listener_does_not_cost_the_pipeline_its_positions(ward, radio, monkeypatch):
    def broken(changes):
        raise RuntimeError("rule bug")

    monkeypatch.setattr(events, "_stay_listeners", [(broken, lambda: True)])
    pump = radio.tagged("Pump L")
    radio.place(pump, "soiled-utility")
    assert AssetLocation.objects.get(asset=pump).zone == ward["zones"]["soiled-utility"]
    assert ZoneStay.objects.filter(asset=pump, left_at__isnull=True).count() == 1
    pump.refresh_from_db()
    assert pump.status == "available"


def test_the_beat_schedule_runs_every_workflow_task():
    from hospital.celery import app

    app.loader.import_default_modules()
    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {
        "workflows.tasks.evaluate_dwell_rules",
        "workflows.tasks.check_par_levels",
        "workflows.tasks.check_device_health",
        "workflows.tasks.snapshot_batteries",
        "workflows.tasks.refresh_maintenance_due",
        "workflows.tasks.check_maintenance_alerts",
        "workflows.tasks.reconcile_status_history",
    } <= tasks
    for name in tasks:
        if name.startswith("workflows."):
            assert name in app.tasks, name
