"""The Celery app. Without REDIS_URL tasks run in-process (settings: CELERY_TASK_ALWAYS_EAGER)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hospital.settings")

app = Celery("wardwise")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

#: Periodic work on Celery beat (`celery -A hospital beat`). Apps add their entries here.
app.conf.beat_schedule = {
    "tracking-mark-missing-assets": {
        "task": "tracking.tasks.mark_missing_assets",
        "schedule": 30.0,
    },
    "tracking-mark-offline-scanners": {
        "task": "tracking.tasks.mark_offline_scanners",
        "schedule": 30.0,
    },
    "tracking-kick-idle-shards": {
        "task": "tracking.tasks.kick_idle_shards",
        "schedule": 10.0,
    },
    "tracking-prune-position-history": {
        "task": "tracking.tasks.prune_position_history",
        "schedule": 3600.0,
    },
    "environment-check-sensors": {
        "task": "environment.tasks.check_sensors",
        "schedule": 30.0,
    },
    "alerts-run-escalations": {
        "task": "alerts.tasks.run_escalations",
        "schedule": 30.0,
    },
    "integrations-retry-due-webhooks": {
        "task": "integrations.tasks.retry_due_webhooks",
        "schedule": 60.0,
    },
    "workflows-evaluate-dwell-rules": {
        "task": "workflows.tasks.evaluate_dwell_rules",
        "schedule": 60.0,
    },
    "workflows-check-par-levels": {
        "task": "workflows.tasks.check_par_levels",
        "schedule": 60.0,
    },
    "workflows-check-device-health": {
        "task": "workflows.tasks.check_device_health",
        "schedule": 60.0,
    },
    "workflows-snapshot-batteries": {
        "task": "workflows.tasks.snapshot_batteries",
        "schedule": 3600.0,
    },
    "workflows-refresh-maintenance-due": {
        "task": "workflows.tasks.refresh_maintenance_due",
        "schedule": 3600.0,
    },
    "workflows-check-maintenance-alerts": {
        "task": "workflows.tasks.check_maintenance_alerts",
        "schedule": 900.0,
    },
    "workflows-reconcile-status-history": {
        "task": "workflows.tasks.reconcile_status_history",
        "schedule": 60.0,
    },
}
