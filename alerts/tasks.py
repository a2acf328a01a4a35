"""Celery tasks of the alert lifecycle; each calls a plain function in alerts.services."""

from __future__ import annotations

from celery import shared_task

from alerts import services


@shared_task(
    bind=True,
    autoretry_for=(Exception,),
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=8,
    acks_late=True,
)
def send_notification(
    self, alert_id: int, tier: int, reason: str, channel: str, event: str = "opened"
) -> None:
    services.deliver(alert_id, tier, reason, channel, event)


@shared_task
def run_escalations() -> int:
    return services.run_escalations()
