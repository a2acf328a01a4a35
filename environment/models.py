"""Environmental sensors (fridges, freezers, rooms) and the threshold profiles they are held to."""

from __future__ import annotations

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
    source = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Sensor(models.Model):
    serial = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=32, choices=SensorKind.choices)
    zone = models.ForeignKey(Zone, on_delete=models.PROTECT, related_name="sensors")
    profile = models.ForeignKey(ThresholdProfile, on_delete=models.PROTECT, related_name="sensors")
    contents = models.CharField(max_length=200, blank=True, help_text="What it stores.")
    expected_interval_s = models.PositiveIntegerField(default=300)
    calibration_due = models.DateField(null=True, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["serial"]

    def __str__(self) -> str:
        return self.serial
