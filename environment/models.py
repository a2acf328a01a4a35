"""Environmental sensors (fridges, freezers, rooms), the threshold profiles they are held to, and
their readings: compliance records that are never edited or deleted, only annotated."""

from __future__ import annotations

from auditlog.registry import auditlog
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from hospital.models import Zone


class SensorKind(models.TextChoices):
    REFRIGERATOR = "refrigerator", "Refrigerator"
    FREEZER = "freezer", "Freezer"
    ULTRA_LOW_FREEZER = "ultra-low-freezer", "Ultra-low freezer"
    BLOOD_BANK = "blood-bank", "Blood-bank refrigerator"
    ROOM = "room", "Room"
    INCUBATOR = "incubator", "Incubator"


class ThresholdProfile(models.Model):
    """Limits a sensor is held to. Presets cite their sources in docs/cold-chain.md."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    temperature_min_c = models.FloatField(null=True, blank=True)
    temperature_max_c = models.FloatField(null=True, blank=True)
    temperature_critical_min_c = models.FloatField(null=True, blank=True)
    temperature_critical_max_c = models.FloatField(null=True, blank=True)
    humidity_min_pct = models.FloatField(null=True, blank=True)
    humidity_max_pct = models.FloatField(null=True, blank=True)
    alarm_delay_s = models.PositiveIntegerField(
        default=600, help_text="How long a value must stay out of range before an alert."
    )
    clear_hysteresis_s = models.PositiveIntegerField(
        default=600, help_text="How long a value must be back in range before the alert clears."
    )
    door_open_max_s = models.PositiveIntegerField(
        default=300, help_text="How long a door may stay open before an alert."
    )
    offline_after_intervals = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1)],
        help_text="Expected reporting intervals without a reading before 'sensor offline'.",
    )
    low_battery_pct = models.FloatField(
        default=20.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(100.0)],
        help_text="Battery at or below this raises a low-battery warning.",
    )
    critical_battery_pct = models.FloatField(
        default=10.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(100.0)],
        help_text="Battery at or below this makes the low-battery alert critical.",
    )
    plausible_min_c = models.FloatField(
        default=-100.0, help_text="Colder than this is a probe fault, not a temperature."
    )
    plausible_max_c = models.FloatField(
        default=70.0, help_text="Warmer than this is a probe fault (e.g. 85 °C error codes)."
    )
    source = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        problems = {}
        if self.critical_battery_pct > self.low_battery_pct:
            problems["critical_battery_pct"] = "must not be above the low-battery level"
        if self.plausible_min_c >= self.plausible_max_c:
            problems["plausible_max_c"] = "must be above the plausible minimum"
        if problems:
            raise ValidationError(problems)


class Sensor(models.Model):
    serial = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=32, choices=SensorKind.choices)
    zone = models.ForeignKey(Zone, on_delete=models.PROTECT, related_name="sensors")
    profile = models.ForeignKey(ThresholdProfile, on_delete=models.PROTECT, related_name="sensors")
    contents = models.CharField(max_length=200, blank=True, help_text="What it stores.")
    expected_interval_s = models.PositiveIntegerField(default=300)
    gateway = models.ForeignKey(
        "tracking.Scanner",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="relayed_sensors",
        help_text="Scanner gateway allowed to upload this sensor's readings with its own token.",
    )
    escalation_policy = models.ForeignKey(
        "alerts.EscalationPolicy",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sensors",
        help_text="Who is told about this sensor's alerts; empty means the default policy.",
    )
    calibration_due = models.DateField(null=True, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["serial"]

    def __str__(self) -> str:
        return self.serial


class ReadingBatch(models.Model):
    """One upload: which device delivered which readings, so a resent batch is recognised."""

    scanner = models.ForeignKey(
        "tracking.Scanner", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    sensor = models.ForeignKey(
        Sensor, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    batch_id = models.CharField(max_length=128, blank=True)
    received_at = models.DateTimeField()
    accepted = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["scanner", "batch_id"],
                condition=models.Q(scanner__isnull=False) & ~models.Q(batch_id=""),
                name="reading_batch_unique_per_scanner",
            ),
            models.UniqueConstraint(
                fields=["sensor", "batch_id"],
                condition=models.Q(sensor__isnull=False) & ~models.Q(batch_id=""),
                name="reading_batch_unique_per_sensor",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scanner or self.sensor} batch {self.batch_id or self.pk}"


class ImmutableRecord(Exception):
    """Readings are compliance records: they are annotated, never changed or deleted."""


class EnvironmentReading(models.Model):
    """One measurement as the sensor sent it. Unique per (sensor, ts), so a resend is stored once.
    PostgreSQL also refuses UPDATE and DELETE on the table (trigger in migration 0003)."""

    id = models.BigAutoField(primary_key=True)
    sensor = models.ForeignKey(Sensor, on_delete=models.PROTECT, related_name="readings")
    ts = models.DateTimeField(help_text="When the sensor measured (event time, UTC).")
    temperature_c = models.FloatField(null=True, blank=True)
    humidity_pct = models.FloatField(null=True, blank=True)
    battery_pct = models.FloatField(null=True, blank=True)
    door_open = models.BooleanField(null=True, blank=True)
    received_at = models.DateTimeField(help_text="When the server stored it.")
    batch = models.ForeignKey(
        ReadingBatch, on_delete=models.PROTECT, null=True, blank=True, related_name="readings"
    )

    class Meta:
        ordering = ["sensor", "ts"]
        constraints = [
            models.UniqueConstraint(fields=["sensor", "ts"], name="reading_unique_sensor_ts"),
        ]

    def __str__(self) -> str:
        return f"{self.sensor} {self.ts:%Y-%m-%d %H:%M:%S}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ImmutableRecord("readings cannot be changed; add an annotation instead")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRecord("readings cannot be deleted; add an annotation instead")


class ReadingAnnotation(models.Model):
    """A correction or remark on a reading, by a named person with a reason (append-only)."""

    reading = models.ForeignKey(
        EnvironmentReading, on_delete=models.PROTECT, related_name="annotations"
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    reason = models.CharField(max_length=200)
    note = models.TextField(blank=True)
    corrected_temperature_c = models.FloatField(
        null=True, blank=True, help_text="The value this reading should have had, if known."
    )

    class Meta:
        ordering = ["reading", "created_at"]

    def __str__(self) -> str:
        return f"{self.reading}: {self.reason}"


class SensorState(models.Model):
    """The live view of a sensor: newest values, what the rule engine has seen (a watermark of
    evaluated readings and the saved monitor state), and whether it is heard from."""

    sensor = models.OneToOneField(
        Sensor, on_delete=models.CASCADE, primary_key=True, related_name="state"
    )
    evaluated_through = models.BigIntegerField(
        default=0, help_text="Readings with a larger id have not been through the rules yet."
    )
    pending_evaluation = models.BooleanField(
        default=False, db_index=True, help_text="Stored readings wait for the rule engine."
    )
    unresolved_alerts = models.BooleanField(
        default=True,
        help_text=(
            "False only when the sensor has no unresolved alert, so an upload can skip looking "
            "for one. Opening or reopening a sensor's alert sets it (alerts.services); only the "
            "rule engine clears it, holding this row's lock, after finding none."
        ),
    )
    last_ts = models.DateTimeField(null=True, blank=True)
    last_received_at = models.DateTimeField(null=True, blank=True)
    temperature_c = models.FloatField(null=True, blank=True)
    humidity_pct = models.FloatField(null=True, blank=True)
    battery_pct = models.FloatField(null=True, blank=True)
    door_open = models.BooleanField(null=True, blank=True)
    monitor = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"state of {self.sensor}"


auditlog.register(ThresholdProfile)
auditlog.register(Sensor)
auditlog.register(ReadingAnnotation)
