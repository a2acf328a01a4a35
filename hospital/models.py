"""The hospital's physical site: buildings, floors, zones (rooms, corridors...) and departments."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from shapely.geometry import Polygon

from hospital.geometry import polygon_problem


class ZoneKind(models.TextChoices):
    ROOM = "room", "Patient room"
    CORRIDOR = "corridor", "Corridor"
    STORAGE = "storage", "Equipment storage"
    NURSE_STATION = "nurse-station", "Nurse station"
    CLEAN_UTILITY = "clean-utility", "Clean utility room"
    SOILED_UTILITY = "soiled-utility", "Soiled utility room"
    PHARMACY = "pharmacy", "Pharmacy"
    BLOOD_BANK = "blood-bank", "Blood bank"
    LAB = "lab", "Laboratory"
    OPERATING_ROOM = "operating-room", "Operating room"
    OFFICE = "office", "Office"
    LOBBY = "lobby", "Lobby"
    STAIRS = "stairs", "Stairs"
    ELEVATOR = "elevator", "Elevator"
    EXIT = "exit", "Building exit"
    OTHER = "other", "Other"


class Department(models.Model):
    name = models.CharField(max_length=120, unique=True)
    code = models.SlugField(max_length=40, unique=True, blank=True, null=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Site(models.Model):
    """The hospital campus a site file describes; there is normally exactly one."""

    name = models.CharField(max_length=200, unique=True)

    def __str__(self) -> str:
        return self.name


class Building(models.Model):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="buildings", null=True)
    name = models.CharField(max_length=120, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Floor(models.Model):
    building = models.ForeignKey(Building, on_delete=models.CASCADE, related_name="floors")
    name = models.CharField(max_length=120)
    level = models.IntegerField(help_text="Storey number; 0 is the ground floor.")
    width_m = models.FloatField(validators=[MinValueValidator(0.5)])
    height_m = models.FloatField(validators=[MinValueValidator(0.5)])
    plan_image = models.ImageField(upload_to="floor-plans/", blank=True)
    plan_pixels_per_m = models.FloatField(
        null=True, blank=True, help_text="Scale of the floor-plan image."
    )
    plan_origin_x_px = models.FloatField(
        default=0.0, help_text="Image column of the floor origin (x = 0 m)."
    )
    plan_origin_y_px = models.FloatField(
        default=0.0, help_text="Image row of the floor origin (y = 0 m)."
    )

    class Meta:
        ordering = ["building__name", "level", "name"]
        constraints = [
            models.UniqueConstraint(fields=["building", "name"], name="floor_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.building.name} / {self.name}"

    def geometry(self):
        """The floor's cached spatial index (see hospital.spatial)."""
        from hospital.spatial import floor_geometry

        return floor_geometry(self.pk)


class Zone(models.Model):
    floor = models.ForeignKey(Floor, on_delete=models.CASCADE, related_name="zones")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=32, choices=ZoneKind.choices, default=ZoneKind.ROOM)
    polygon = models.JSONField(help_text="Outline as [[x, y], ...] in floor metres.")
    department = models.ForeignKey(
        Department, on_delete=models.SET_NULL, null=True, blank=True, related_name="zones"
    )

    class Meta:
        ordering = ["floor", "name"]
        constraints = [
            models.UniqueConstraint(fields=["floor", "name"], name="zone_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.floor} / {self.name}"

    def clean(self) -> None:
        if not isinstance(self.polygon, list):
            raise ValidationError({"polygon": "must be a list of [x, y] points"})
        problem = polygon_problem(self.polygon)
        if problem:
            raise ValidationError({"polygon": problem})
        if self.floor_id is None:
            return
        shape = Polygon(self.polygon)
        floor = self.floor
        if (
            not Polygon(
                [(0, 0), (floor.width_m, 0), (floor.width_m, floor.height_m), (0, floor.height_m)]
            )
            .buffer(1e-6)
            .contains(shape)
        ):
            raise ValidationError({"polygon": "lies outside the floor"})
        for other in Zone.objects.filter(floor_id=self.floor_id).exclude(pk=self.pk):
            if shape.intersection(Polygon(other.polygon)).area > 1e-9:
                raise ValidationError({"polygon": f"overlaps zone {other.name!r}"})


class DeviceToken(models.Model):
    """A credential of one scanner gateway or one sensor. Only a hash of the secret is stored;
    the plaintext is shown once when the token is issued (hospital.devices.issue_token)."""

    scanner = models.ForeignKey(
        "tracking.Scanner",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="tokens",
    )
    sensor = models.ForeignKey(
        "environment.Sensor",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="tokens",
    )
    lookup = models.CharField(max_length=16, unique=True, help_text="Public prefix of the token.")
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(scanner__isnull=False, sensor__isnull=True)
                    | models.Q(scanner__isnull=True, sensor__isnull=False)
                ),
                name="device_token_has_one_owner",
            )
        ]

    def __str__(self) -> str:
        owner = self.scanner or self.sensor
        state = "revoked" if self.revoked_at else "active"
        return f"{owner} token {self.lookup}… ({state})"
