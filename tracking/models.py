"""Scanners that hear tags, and the assets those tags are fixed to."""

from __future__ import annotations

from auditlog.registry import auditlog
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from hospital.models import Department, Floor
from tracking.tagids import canonical_tag_id

DEFAULT_SCANNER_HEIGHT_M = 2.5
DEFAULT_RSSI_AT_1M = -59.0
DEFAULT_PATH_LOSS_EXPONENT = 2.0


class ScannerKind(models.TextChoices):
    BLE = "ble", "Bluetooth LE"
    RFID = "rfid", "UHF RFID"


class Scanner(models.Model):
    serial = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=8, choices=ScannerKind.choices, default=ScannerKind.BLE)
    floor = models.ForeignKey(Floor, on_delete=models.PROTECT, related_name="scanners")
    x = models.FloatField(help_text="Metres in the floor frame.")
    y = models.FloatField(help_text="Metres in the floor frame.")
    z = models.FloatField(
        default=DEFAULT_SCANNER_HEIGHT_M, help_text="Mounting height above the floor, metres."
    )
    rssi_at_1m = models.FloatField(
        default=DEFAULT_RSSI_AT_1M,
        validators=[MinValueValidator(-120), MaxValueValidator(0)],
        help_text="Nominal RSSI of a tag 1 m away, dBm.",
    )
    path_loss_exponent = models.FloatField(
        default=DEFAULT_PATH_LOSS_EXPONENT,
        validators=[MinValueValidator(1.0), MaxValueValidator(6.0)],
    )
    rssi_offset_db = models.FloatField(
        default=0.0,
        help_text="Correction added to this scanner's RSSI, estimated from data (docs).",
    )
    description = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["serial"]

    def __str__(self) -> str:
        return self.serial

    def clean(self) -> None:
        if self.floor_id is not None and not (
            0 <= self.x <= self.floor.width_m and 0 <= self.y <= self.floor.height_m
        ):
            raise ValidationError("the scanner lies outside its floor")


class Mobility(models.TextChoices):
    PARKED = "parked", "Mostly parked (pumps, monitors)"
    ROAMING = "roaming", "Roams (wheelchairs, beds)"


class AssetType(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    mobility = models.CharField(max_length=16, choices=Mobility.choices, default=Mobility.PARKED)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AssetStatus(models.TextChoices):
    AVAILABLE = "available", "Available"
    IN_USE = "in-use", "In use"
    NEEDS_CLEANING = "needs-cleaning", "Needs cleaning"
    MAINTENANCE = "maintenance", "In maintenance"
    RETIRED = "retired", "Retired"


class Asset(models.Model):
    name = models.CharField(max_length=120, unique=True)
    asset_type = models.ForeignKey(AssetType, on_delete=models.PROTECT, related_name="assets")
    department = models.ForeignKey(
        Department, on_delete=models.SET_NULL, null=True, blank=True, related_name="assets"
    )
    serial_number = models.CharField(max_length=120, blank=True)
    manufacturer = models.CharField(max_length=120, blank=True)
    model = models.CharField(max_length=120, blank=True)
    status = models.CharField(
        max_length=20, choices=AssetStatus.choices, default=AssetStatus.AVAILABLE
    )
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TagKind(models.TextChoices):
    IBEACON = "ibeacon", "iBeacon"
    EDDYSTONE = "eddystone", "Eddystone UID"
    MAC = "mac", "BLE MAC address"
    RFID = "rfid", "UHF RFID EPC"


class Tag(models.Model):
    tag_id = models.CharField(
        max_length=128, unique=True, help_text="Canonical tag id, e.g. ibeacon:<uuid>:1:2."
    )
    kind = models.CharField(max_length=16, choices=TagKind.choices)
    asset = models.OneToOneField(
        Asset, on_delete=models.SET_NULL, null=True, blank=True, related_name="tag"
    )
    battery_pct = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["tag_id"]

    def __str__(self) -> str:
        return self.tag_id

    def save(self, *args, **kwargs):
        self.tag_id = canonical_tag_id(self.tag_id)
        self.kind = self.tag_id.split(":", 1)[0]
        super().save(*args, **kwargs)

    def clean(self) -> None:
        try:
            self.tag_id = canonical_tag_id(self.tag_id)
        except ValueError as exc:
            raise ValidationError({"tag_id": str(exc)}) from exc


class Presence(models.TextChoices):
    PRESENT = "present", "Present"
    MISSING = "missing", "Missing"
    NEVER_SEEN = "never-seen", "Never seen"


class AssetLocation(models.Model):
    """Where an asset is now: one row per asset, overwritten by every position update."""

    asset = models.OneToOneField(Asset, on_delete=models.CASCADE, related_name="location")
    floor = models.ForeignKey(Floor, on_delete=models.SET_NULL, null=True, related_name="+")
    zone = models.ForeignKey(
        "hospital.Zone", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    x = models.FloatField()
    y = models.FloatField()
    accuracy_m = models.FloatField()
    estimated_at = models.DateTimeField(help_text="Event time the estimate holds for.")
    last_seen_at = models.DateTimeField(help_text="Event time of the newest reading of the tag.")
    presence = models.CharField(
        max_length=16, choices=Presence.choices, default=Presence.PRESENT, db_index=True
    )
    zone_probability = models.FloatField(
        null=True,
        blank=True,
        help_text="Posterior probability of `zone` (the engine's zone model), 0-1; null when "
        "not recorded.",
    )
    scanners_used = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Scanners the estimate used."
    )
    confirmed_zone = models.ForeignKey(
        "hospital.Zone",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The last zone an estimate confirmed (tracking.confidence).",
    )
    confirmed_at = models.DateTimeField(
        null=True, blank=True, help_text="Event time of the last estimate that confirmed a zone."
    )

    def __str__(self) -> str:
        return f"{self.asset} @ {self.zone or self.floor}"


class PositionSample(models.Model):
    """Compact position history: at most one row per asset per sampling interval."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="positions")
    ts = models.DateTimeField()
    floor = models.ForeignKey(Floor, on_delete=models.CASCADE, related_name="+")
    zone = models.ForeignKey(
        "hospital.Zone", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    x = models.FloatField()
    y = models.FloatField()
    accuracy_m = models.FloatField()

    class Meta:
        ordering = ["asset", "ts"]
        indexes = [models.Index(fields=["ts"])]
        constraints = [
            models.UniqueConstraint(fields=["asset", "ts"], name="one_sample_per_asset_and_time")
        ]

    def __str__(self) -> str:
        return f"{self.asset} {self.ts:%Y-%m-%d %H:%M:%S}"


class ZoneStay(models.Model):
    """An asset's stay in a zone: entered, left (null while it is still there)."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="zone_stays")
    zone = models.ForeignKey("hospital.Zone", on_delete=models.CASCADE, related_name="stays")
    entered_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["asset", "-entered_at"]
        indexes = [
            models.Index(fields=["asset", "-entered_at"]),
            models.Index(fields=["zone", "-entered_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["asset"],
                condition=models.Q(left_at__isnull=True),
                name="one_open_stay_per_asset",
            )
        ]

    def __str__(self) -> str:
        return f"{self.asset} in {self.zone} from {self.entered_at:%Y-%m-%d %H:%M}"

    @property
    def dwell_s(self) -> float | None:
        if self.left_at is None:
            return None
        return (self.left_at - self.entered_at).total_seconds()


class ScannerHealth(models.Model):
    """What a scanner's agent last told us about itself (heartbeat) and what we saw of it."""

    scanner = models.OneToOneField(Scanner, on_delete=models.CASCADE, related_name="health")
    online = models.BooleanField(default=False, db_index=True)
    agent_version = models.CharField(max_length=64, blank=True)
    uptime_s = models.FloatField(null=True, blank=True)
    spool_depth = models.PositiveIntegerField(null=True, blank=True)
    spool_dropped = models.PositiveBigIntegerField(null=True, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_batch_at = models.DateTimeField(null=True, blank=True)
    readings_accepted = models.PositiveBigIntegerField(default=0)
    readings_rejected = models.PositiveBigIntegerField(default=0)
    details = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.scanner} ({'online' if self.online else 'offline'})"


# Status changes people make (tracking.status) and edits in the admin are audited with the actor.
auditlog.register(Asset)
