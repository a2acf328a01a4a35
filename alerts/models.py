"""Alerts for the whole product (cold chain today, RTLS workflows tomorrow), who is told, and the
timeline of everything that happened to each alert."""

from __future__ import annotations

from auditlog.registry import auditlog
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class AlertState(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


def default_channels() -> list[str]:
    return ["log", "email"]


class EscalationPolicy(models.Model):
    """Who hears about an alert and when: tiers notified one after another while nobody
    acknowledges, and a reminder to the current tier every `repeat_every_min`."""

    name = models.CharField(max_length=120, unique=True)
    is_default = models.BooleanField(
        default=False, help_text="Used for alerts whose source names no policy."
    )
    repeat_every_min = models.PositiveIntegerField(
        default=15, help_text="Remind the current tier this often while unacknowledged (0: never)."
    )
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "escalation policies"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="one_default_escalation_policy",
            )
        ]

    def __str__(self) -> str:
        return self.name


class EscalationTier(models.Model):
    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="tiers")
    position = models.PositiveSmallIntegerField(help_text="0 is told first.")
    after_min = models.PositiveIntegerField(
        default=0, help_text="Minutes after the alert opened, unacknowledged, to tell this tier."
    )
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    groups = models.ManyToManyField(Group, blank=True, related_name="+")
    channels = models.JSONField(
        default=default_channels, help_text="Notifier names, e.g. ['log', 'email']."
    )

    class Meta:
        ordering = ["policy", "position"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "position"], name="tier_unique_position")
        ]

    def __str__(self) -> str:
        return f"{self.policy} tier {self.position} (+{self.after_min} min)"

    def recipients(self):
        """Active users named directly or through a group."""
        from django.contrib.auth import get_user_model

        user_model = get_user_model()
        return (
            user_model.objects.filter(
                models.Q(pk__in=self.users.values("pk"))
                | models.Q(groups__in=self.groups.values("pk")),
                is_active=True,
            )
            .distinct()
            .order_by("username")
        )


class Alert(models.Model):
    """One incident: opened once, updated in place as it evolves, acknowledged, then resolved."""

    source = models.CharField(max_length=32, help_text="The part of the product that raised it.")
    kind = models.CharField(max_length=64)
    subject = models.CharField(
        max_length=200, help_text="Stable key of what the alert is about, e.g. sensor:12."
    )
    title = models.CharField(max_length=200, help_text="What people see, e.g. the sensor.")
    sensor = models.ForeignKey(
        "environment.Sensor",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="alerts",
    )
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    state = models.CharField(
        max_length=16, choices=AlertState.choices, default=AlertState.OPEN, db_index=True
    )
    message = models.TextField(blank=True)
    unit = models.CharField(max_length=8, blank=True)
    peak_value = models.FloatField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)
    started_at = models.DateTimeField(help_text="When the condition began (event time).")
    ended_at = models.DateTimeField(
        null=True, blank=True, help_text="When the condition ended (event time)."
    )
    opened_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    acknowledge_comment = models.TextField(blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolution_note = models.TextField(blank=True)
    resolved_automatically = models.BooleanField(default=False)
    policy = models.ForeignKey(
        EscalationPolicy, on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts"
    )
    tier = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Highest escalation tier told so far."
    )
    last_notified_at = models.DateTimeField(null=True, blank=True)
    notifications_sent = models.PositiveIntegerField(default=0)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        indexes = [
            models.Index(fields=["sensor", "kind", "-started_at"]),
            models.Index(fields=["state", "-opened_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "subject", "kind"],
                condition=~models.Q(state="resolved"),
                name="one_unresolved_alert_per_subject_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.title}: {self.kind} ({self.severity}, {self.state})"

    @property
    def is_resolved(self) -> bool:
        return self.state == AlertState.RESOLVED


class AlertEvent(models.Model):
    """The alert's timeline, in the order things happened; never edited."""

    class Kind(models.TextChoices):
        OPENED = "opened", "Opened"
        ESCALATED_SEVERITY = "severity", "Severity raised"
        CONDITION_ENDED = "ended", "Condition ended"
        CONDITION_RETURNED = "returned", "Condition returned"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"
        NOTIFIED = "notified", "Notified"
        ESCALATED = "escalated", "Escalated to the next tier"
        REPEATED = "repeated", "Reminder sent"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    message = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["alert", "at", "pk"]

    def __str__(self) -> str:
        return f"{self.alert_id} {self.kind} at {self.at:%Y-%m-%d %H:%M:%S}"


auditlog.register(Alert, exclude_fields=["updated_at", "last_value"])
auditlog.register(AlertEvent)
auditlog.register(EscalationPolicy)
auditlog.register(EscalationTier, m2m_fields={"users", "groups"})
