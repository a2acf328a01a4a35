"""Live delivery of alert changes to the facilities websocket (alerts.consumers)."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

GROUP = "alerts"
log = logging.getLogger("wardwise.alerts")


def payload(alert) -> dict:
    """The JSON an alert is shown with on the console (also the snapshot's items)."""

    def iso(moment):
        return moment.isoformat() if moment else None

    return {
        "id": alert.pk,
        "source": alert.source,
        "kind": alert.kind,
        "subject": alert.subject,
        "title": alert.title,
        "sensor": alert.sensor.serial if alert.sensor_id else None,
        "severity": alert.severity,
        "state": alert.state,
        "message": alert.message,
        "unit": alert.unit,
        "peak_value": alert.peak_value,
        "last_value": alert.last_value,
        "started_at": iso(alert.started_at),
        "ended_at": iso(alert.ended_at),
        "opened_at": iso(alert.opened_at),
        "updated_at": iso(alert.updated_at),
        "acknowledged_at": iso(alert.acknowledged_at),
        "acknowledged_by": alert.acknowledged_by.get_username()
        if alert.acknowledged_by_id
        else None,
        "resolved_at": iso(alert.resolved_at),
        "tier": alert.tier,
    }


def broadcast(alert, event: str) -> None:
    """Send the alert to every connected console once the transaction commits. A channel-layer
    outage is logged, never raised: the alert is stored and escalation still reaches people."""
    message = {"type": "alert.changed", "event": event, "alert": payload(alert)}

    def send():
        try:
            async_to_sync(get_channel_layer().group_send)(GROUP, message)
        except Exception:
            log.exception("could not broadcast alert %s", message["alert"]["id"])

    transaction.on_commit(send)
