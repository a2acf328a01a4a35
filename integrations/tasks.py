"""Celery tasks: thin wrappers over integrations.webhooks."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from integrations import webhooks


@shared_task(ignore_result=True, acks_late=True)
def deliver_webhook(delivery_id: int) -> None:
    delay = webhooks.attempt(delivery_id)
    if delay is not None and not settings.CELERY_TASK_ALWAYS_EAGER:
        deliver_webhook.apply_async((delivery_id,), countdown=delay)


@shared_task(ignore_result=True)
def retry_due_webhooks() -> int:
    """Safety net on beat: retries whose queued task was lost (a worker died) are sent again."""
    due = webhooks.due_deliveries()
    for delivery_id in due:
        deliver_webhook.delay(delivery_id)
    return len(due)
