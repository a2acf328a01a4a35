"""Retention never deletes what a report still needs: the only automatic deletion is the compact
position history past WARDWISE_POSITION_HISTORY_DAYS. Temperature readings, alerts, zone stays
(utilisation, FHIR) and the audit trail are kept until an administrator archives them."""

from __future__ import annotations

from datetime import timedelta

from auditlog.models import LogEntry
from django.utils import timezone

from alerts import services
from environment.models import EnvironmentReading
from hospital.celery import app
from tests.factories import (
    AssetFactory,
    ColdChainSensorFactory,
    PositionSampleFactory,
    ZoneStayFactory,
)
from tracking.models import PositionSample, ZoneStay
from tracking.presence import prune_position_history

#: Every periodic task, and whether it deletes rows. A new periodic task must be added here
#: after checking it deletes nothing a report needs (docs/reliability.md, "Retention").
PERIODIC_TASKS = {
    "tracking.tasks.prune_position_history": "deletes PositionSample older than the window",
    "tracking.tasks.mark_missing_assets": "no deletion",
    "tracking.tasks.mark_offline_scanners": "no deletion",
    "tracking.tasks.kick_idle_shards": "no deletion",
    "environment.tasks.check_sensors": "no deletion",
    "alerts.tasks.run_escalations": "no deletion",
    "integrations.tasks.retry_due_webhooks": "no deletion",
    "workflows.tasks.evaluate_dwell_rules": "no deletion",
    "workflows.tasks.check_par_levels": "no deletion",
    "workflows.tasks.check_device_health": "no deletion",
    "workflows.tasks.snapshot_batteries": "no deletion",
    "workflows.tasks.refresh_maintenance_due": "replaces the derived due-date rows only",
    "workflows.tasks.check_maintenance_alerts": "no deletion",
    "workflows.tasks.reconcile_status_history": "no deletion",
}


def test_every_periodic_task_is_reviewed_for_deletion():
    scheduled = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert scheduled <= set(PERIODIC_TASKS), scheduled - set(PERIODIC_TASKS)


def test_pruning_keeps_every_compliance_record(db, settings):
    settings.WARDWISE = {**settings.WARDWISE, "POSITION_HISTORY_DAYS": 90}
    long_ago = timezone.now() - timedelta(days=3 * 365)
    sensor = ColdChainSensorFactory(serial="retention-fridge")
    EnvironmentReading.objects.create(
        sensor=sensor, ts=long_ago, temperature_c=4.0, received_at=long_ago
    )
    alert = services.open_alert(
        source="test",
        kind="temperature-high",
        subject=f"sensor:{sensor.pk}",
        title="old excursion",
        severity="warning",
        started_at=long_ago,
        value=9.0,
        sensor=sensor,
    )
    asset = AssetFactory()
    ZoneStayFactory(asset=asset, entered_at=long_ago, left_at=long_ago + timedelta(hours=1))
    old = PositionSampleFactory(asset=asset, ts=long_ago)
    recent = PositionSampleFactory(asset=asset, ts=timezone.now() - timedelta(days=1))
    entries = LogEntry.objects.count()

    assert prune_position_history() == 1

    assert not PositionSample.objects.filter(pk=old.pk).exists()
    assert PositionSample.objects.filter(pk=recent.pk).exists()
    assert EnvironmentReading.objects.filter(sensor=sensor).count() == 1
    assert type(alert).objects.filter(pk=alert.pk).exists()
    assert ZoneStay.objects.filter(asset=asset).count() == 1
    assert LogEntry.objects.count() >= entries
