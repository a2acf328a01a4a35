"""The workflows' side of the shared alert lifecycle (alerts.services): one source name, the
alert kinds, and a guard so a periodic check that finds the same condition again does not
rewrite and re-broadcast an unchanged alert every minute."""

from __future__ import annotations

from datetime import datetime

from alerts import services
from alerts.models import SEVERITY_RANK, Alert, AlertState

SOURCE = "workflows"
PAR_CRITICAL = "par-critical"
GEOFENCE_ENTER = "geofence-enter"
GEOFENCE_EXIT = "geofence-exit"
GATEWAY_OFFLINE = "gateway-offline"
TAG_SILENT = "tag-silent"
BATTERY_LOW = "tag-battery-low"
MAINTENANCE_DUE = "maintenance-due"


def open_alert_of(kind: str, subject: str) -> Alert | None:
    return (
        Alert.objects.filter(source=SOURCE, kind=kind, subject=subject)
        .exclude(state=AlertState.RESOLVED)
        .first()
    )


def report(
    *,
    kind: str,
    subject: str,
    title: str,
    severity: str,
    started_at: datetime,
    message: str,
    value: float | None = None,
    policy=None,
    details: dict | None = None,
    unit: str = "",
) -> Alert:
    """Open the alert, or update it when its value or severity changed; otherwise leave it."""
    existing = open_alert_of(kind, subject)
    if (
        existing is not None
        and existing.last_value == value
        and SEVERITY_RANK[severity] <= SEVERITY_RANK[existing.severity]
    ):
        return existing
    return services.report_condition(
        source=SOURCE,
        kind=kind,
        subject=subject,
        title=title,
        severity=severity,
        started_at=started_at,
        value=value,
        peak=value,
        message=message,
        unit=unit,
        policy=policy,
        details=details,
    )


def clear(*, kind: str, subject: str, ended_at: datetime, note: str) -> Alert | None:
    if open_alert_of(kind, subject) is None:
        return None
    return services.clear_condition(
        source=SOURCE, kind=kind, subject=subject, ended_at=ended_at, note=note
    )
