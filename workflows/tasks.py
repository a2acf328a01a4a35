"""Celery beat tasks of the workflows; each calls one plain function."""

from __future__ import annotations

from celery import shared_task

from workflows import devicehealth, maintenance, par, status, zones


@shared_task(ignore_result=True)
def evaluate_dwell_rules() -> int:
    return zones.evaluate_dwell_rules()


@shared_task(ignore_result=True)
def check_par_levels() -> int:
    return par.check_par_levels()


@shared_task(ignore_result=True)
def check_device_health() -> dict:
    return devicehealth.check_device_health()


@shared_task(ignore_result=True)
def snapshot_batteries() -> int:
    return devicehealth.snapshot_batteries()


@shared_task(ignore_result=True)
def refresh_maintenance_due() -> int:
    return maintenance.refresh_maintenance_due()


@shared_task(ignore_result=True)
def check_maintenance_alerts() -> dict:
    return maintenance.check_maintenance_alerts()


@shared_task(ignore_result=True)
def reconcile_status_history() -> dict:
    return status.reconcile_status_history()
