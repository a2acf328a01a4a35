"""Periodic cold-chain work (beat schedule in hospital/celery.py)."""

from celery import shared_task

from environment import monitoring


@shared_task
def check_sensors() -> dict:
    return monitoring.check_sensors()
