"""The audit trail: who changed what, and when, on the records a security office asks about.

django-auditlog writes a LogEntry for every create, update and delete of the models below (and
for changes of their many-to-many fields, e.g. a person's role groups), with the signed-in person
as actor (AuditlogMiddleware) or, for API calls authenticated in the view (integration keys), the
key's service user (`attribute_to`). Changes made by the system itself (workers, management
commands, the rule engine) have no actor. The log is append-only: the admin shows it read-only
and, on PostgreSQL, a trigger refuses UPDATE and DELETE of its rows (hospital migration 0005).
"""

from __future__ import annotations

from auditlog.context import auditlog_value
from auditlog.registry import auditlog
from django.apps import apps

#: model label -> auditlog.register() options. Fields that change on every reading or use
#: (last values, timestamps of use) are left out: they are telemetry, not changes.
AUDITED: dict[str, dict] = {
    "auth.User": {
        "m2m_fields": {"groups", "user_permissions"},
        "exclude_fields": ["last_login"],
        "mask_fields": ["password"],
    },
    "auth.Group": {"m2m_fields": {"permissions"}},
    "hospital.DeviceToken": {
        "mask_fields": ["secret_hash"],
        "exclude_fields": ["last_used_at", "last_used_ip"],
    },
    "tracking.Asset": {},
    "tracking.AssetType": {},
    "tracking.Tag": {"exclude_fields": ["battery_pct", "last_seen_at"]},
    "tracking.Scanner": {"exclude_fields": ["rssi_offset_db", "last_seen_at"]},
    "environment.Sensor": {},
    "environment.ThresholdProfile": {},
    "alerts.Alert": {"exclude_fields": ["peak_value", "last_value", "updated_at"]},
    "alerts.EscalationPolicy": {},
    "integrations.IntegrationClient": {
        "mask_fields": ["secret_hash"],
        "exclude_fields": ["last_used_at"],
    },
    "integrations.Webhook": {"mask_fields": ["secret"]},
}


def register_models() -> None:
    """Register every model of AUDITED that its own app has not registered already (an app's
    own registration, e.g. environment's, keeps its options)."""
    for label, options in AUDITED.items():
        try:
            model = apps.get_model(label)
        except LookupError:
            continue
        if auditlog.contains(model):
            continue
        names = {f.name for f in model._meta.get_fields()}
        kept = {
            key: [f for f in value if f in names]
            if key in {"exclude_fields", "mask_fields"}
            else {f for f in value if f in names}
            for key, value in options.items()
        }
        auditlog.register(model, **kept)


def attribute_to(user) -> None:
    """Make `user` the actor of what the rest of this request changes, for credentials that
    DRF checks in the view, after AuditlogMiddleware has looked at the request."""
    try:
        context = auditlog_value.get()
    except LookupError:
        return
    context["actor"] = user
