"""Credentials of integration engines, and outbound webhooks with their delivery log."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


class IntegrationClient(models.Model):
    """An integration engine or EHR that reads the FHIR API or the reports with an API key.

    It acts as its service user (`user`): the user's role groups decide what it may read, and
    audit entries name it. Only a hash of the key is stored (integrations.keys)."""

    name = models.CharField(max_length=120, unique=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="integration_client"
    )
    lookup = models.CharField(max_length=16, unique=True, help_text="Public prefix of the key.")
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({'revoked' if self.revoked_at else 'active'})"


class EventType(models.TextChoices):
    ZONE_ENTERED = "asset.zone.entered", "Asset entered a zone"
    ZONE_LEFT = "asset.zone.left", "Asset left a zone"
    ASSET_MISSING = "asset.missing", "Asset missing"
    ALERT_OPENED = "alert.opened", "Alert opened"
    ALERT_ESCALATED = "alert.escalated", "Alert escalated"
    ALERT_ACKNOWLEDGED = "alert.acknowledged", "Alert acknowledged"
    ALERT_RESOLVED = "alert.resolved", "Alert resolved"


def all_event_types() -> list[str]:
    return list(EventType.values)


class Webhook(models.Model):
    """A receiver of location events, signed with its own secret (docs/webhooks.md)."""

    name = models.CharField(max_length=120, unique=True)
    url = models.URLField(max_length=500)
    secret = models.CharField(
        max_length=128, help_text="Shared secret for the X-Wardwise-Signature HMAC-SHA256."
    )
    event_types = models.JSONField(
        default=all_event_types,
        help_text="Events sent to this receiver, e.g. ['asset.zone.entered', 'asset.missing'].",
    )
    is_active = models.BooleanField(default=True)
    max_attempts = models.PositiveSmallIntegerField(default=8)
    timeout_s = models.FloatField(default=10.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if not isinstance(self.event_types, list) or not self.event_types:
            raise ValidationError({"event_types": "must be a non-empty list of event types"})
        unknown = sorted(set(self.event_types) - set(EventType.values))
        if unknown:
            raise ValidationError({"event_types": f"unknown event type(s): {', '.join(unknown)}"})
        if len(self.secret) < 16:
            raise ValidationError({"secret": "use at least 16 characters"})  # nosec B105

    def wants(self, event_type: str) -> bool:
        return self.is_active and event_type in (self.event_types or [])


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"


class WebhookDelivery(models.Model):
    """One event for one receiver, with the outcome of its latest attempt."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField(help_text="Same for every attempt: receivers de-duplicate on it.")
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    payload = models.JSONField()
    state = models.CharField(
        max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["webhook", "event_id"], name="one_delivery_per_event")
        ]

    def __str__(self) -> str:
        return f"{self.event_type} -> {self.webhook} ({self.state})"
