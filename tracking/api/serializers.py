"""Read-only representations. Every related object they touch is loaded by tracking.api.queries."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from hospital.models import Building, Floor, Zone
from tracking import quality
from tracking.confidence import QUALITY_CHOICES, REASON_CHOICES, Assessment
from tracking.models import (
    Asset,
    AssetLocation,
    AssetType,
    PositionSample,
    Presence,
    Scanner,
    ScannerHealth,
    ZoneStay,
)


class AssetTypeSerializer(serializers.ModelSerializer):
    class Meta:
        model = AssetType
        fields = ["id", "slug", "name", "mobility"]


def location_assessment(field: serializers.Field, location: AssetLocation) -> Assessment:
    """The location's quality judged now (tracking.quality); the judge (one query for the
    offline scanners) is made once per response and kept in the serializer context."""
    judged = getattr(location, "_wardwise_assessment", None)
    if judged is None:
        context = field.context
        judge = context.get("location_judge")
        if judge is None:
            judge = context["location_judge"] = quality.judge(context.get("now"))
        judged = location._wardwise_assessment = judge(location)
    return judged


class LocationSerializer(serializers.ModelSerializer):
    floor = serializers.CharField(source="floor.name", allow_null=True, default=None)
    zone = serializers.CharField(
        source="zone.name",
        allow_null=True,
        default=None,
        help_text="The engine's current zone: show it as the room only when `quality` is "
        "`confirmed`.",
    )
    last_seen = serializers.DateTimeField(source="last_seen_at")
    zone_confidence = serializers.FloatField(
        source="zone_probability",
        allow_null=True,
        read_only=True,
        help_text="Posterior probability (0-1) that the asset is in `zone`; null when not "
        "recorded.",
    )
    scanners_used = serializers.IntegerField(
        allow_null=True, read_only=True, help_text="Scanners the estimate used."
    )
    quality = serializers.SerializerMethodField(
        help_text="confirmed: the evidence supports `zone`; uncertain: it does not, show the "
        "last confirmed zone; stale: not heard recently (docs/ui.md, Honest location)."
    )
    quality_reasons = serializers.SerializerMethodField(
        help_text="Why the zone is not confirmed, most important first; empty when confirmed."
    )
    last_confirmed_zone_id = serializers.IntegerField(
        source="confirmed_zone_id", allow_null=True, read_only=True
    )
    last_confirmed_zone = serializers.CharField(
        source="confirmed_zone.name",
        allow_null=True,
        default=None,
        read_only=True,
        help_text="The last zone the evidence confirmed; null if none ever was.",
    )
    last_confirmed_at = serializers.DateTimeField(
        source="confirmed_at",
        allow_null=True,
        read_only=True,
        help_text="Event time of the last estimate that confirmed it.",
    )

    class Meta:
        model = AssetLocation
        fields = [
            "floor_id",
            "floor",
            "zone_id",
            "zone",
            "x",
            "y",
            "accuracy_m",
            "estimated_at",
            "last_seen",
            "presence",
            "zone_confidence",
            "scanners_used",
            "quality",
            "quality_reasons",
            "last_confirmed_zone_id",
            "last_confirmed_zone",
            "last_confirmed_at",
        ]

    @extend_schema_field(serializers.ChoiceField(choices=QUALITY_CHOICES))
    def get_quality(self, location: AssetLocation) -> str:
        return location_assessment(self, location).quality.value

    @extend_schema_field(
        serializers.ListField(child=serializers.ChoiceField(choices=REASON_CHOICES))
    )
    def get_quality_reasons(self, location: AssetLocation) -> list[str]:
        return [reason.value for reason in location_assessment(self, location).reasons]


class AssetSerializer(serializers.ModelSerializer):
    type = serializers.CharField(source="asset_type.slug")
    type_name = serializers.CharField(source="asset_type.name")
    department = serializers.CharField(source="department.name", allow_null=True, default=None)
    tag_id = serializers.CharField(source="tag.tag_id", allow_null=True, default=None)
    battery_pct = serializers.FloatField(source="tag.battery_pct", allow_null=True, default=None)
    presence = serializers.SerializerMethodField()
    location = LocationSerializer(allow_null=True, help_text="Null until first located.")
    maintenance_due = serializers.DateField(
        source="maintenance.due_on",
        allow_null=True,
        default=None,
        read_only=True,
        help_text="Next preventive maintenance (workflows); null without a schedule.",
    )

    class Meta:
        model = Asset
        fields = [
            "id",
            "name",
            "type",
            "type_name",
            "status",
            "department_id",
            "department",
            "serial_number",
            "manufacturer",
            "model",
            "tag_id",
            "battery_pct",
            "presence",
            "location",
            "maintenance_due",
        ]

    @extend_schema_field(serializers.ChoiceField(choices=Presence.choices))
    def get_presence(self, asset: Asset) -> str:
        location = getattr(asset, "location", None)
        return location.presence if location is not None else Presence.NEVER_SEEN


class PositionSampleSerializer(serializers.ModelSerializer):
    zone = serializers.CharField(source="zone.name", allow_null=True, default=None)

    class Meta:
        model = PositionSample
        fields = ["ts", "floor_id", "zone_id", "zone", "x", "y", "accuracy_m"]


class ZoneStaySerializer(serializers.ModelSerializer):
    zone = serializers.CharField(source="zone.name")
    floor_id = serializers.IntegerField(source="zone.floor_id")
    ongoing = serializers.SerializerMethodField()
    dwell_s = serializers.SerializerMethodField()

    class Meta:
        model = ZoneStay
        fields = [
            "id",
            "zone_id",
            "zone",
            "floor_id",
            "entered_at",
            "left_at",
            "ongoing",
            "dwell_s",
        ]

    def get_ongoing(self, stay: ZoneStay) -> bool:
        return stay.left_at is None

    def get_dwell_s(self, stay: ZoneStay) -> float:
        """Seconds in the zone; for the stay still going on, up to now."""
        end = stay.left_at or self.context.get("now") or timezone.now()
        return max(0.0, (end - stay.entered_at).total_seconds())


class FloorSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Floor
        fields = ["id", "name", "level", "width_m", "height_m"]


class BuildingSerializer(serializers.ModelSerializer):
    site = serializers.CharField(source="site.name", allow_null=True, default=None)
    floors = FloorSummarySerializer(many=True)

    class Meta:
        model = Building
        fields = ["id", "name", "site", "floors"]


class ZoneSerializer(serializers.ModelSerializer):
    polygon = serializers.JSONField(help_text="Outline as [[x, y], ...] in floor metres.")
    department = serializers.CharField(source="department.name", allow_null=True, default=None)

    class Meta:
        model = Zone
        fields = ["id", "floor_id", "name", "kind", "polygon", "department_id", "department"]


class FloorZoneSerializer(serializers.ModelSerializer):
    polygon = serializers.JSONField(help_text="Outline as [[x, y], ...] in floor metres.")

    class Meta:
        model = Zone
        fields = ["id", "name", "kind", "polygon", "department_id"]


class FloorSerializer(serializers.ModelSerializer):
    building = serializers.CharField(source="building.name")
    zones = FloorZoneSerializer(many=True)

    class Meta:
        model = Floor
        fields = [
            "id",
            "building_id",
            "building",
            "name",
            "level",
            "width_m",
            "height_m",
            "plan_image",
            "plan_pixels_per_m",
            "plan_origin_x_px",
            "plan_origin_y_px",
            "zones",
        ]


class ScannerHealthSerializer(serializers.ModelSerializer):
    class Meta:
        model = ScannerHealth
        fields = [
            "online",
            "last_heartbeat_at",
            "last_batch_at",
            "agent_version",
            "uptime_s",
            "spool_depth",
            "spool_dropped",
            "readings_accepted",
            "readings_rejected",
        ]


class ScannerSerializer(serializers.ModelSerializer):
    """A scanner with what its agent last reported; one never heard from is offline."""

    online = serializers.SerializerMethodField()
    health = ScannerHealthSerializer(allow_null=True, help_text="Null until the first heartbeat.")

    class Meta:
        model = Scanner
        fields = [
            "id",
            "serial",
            "kind",
            "floor_id",
            "x",
            "y",
            "is_active",
            "last_seen_at",
            "online",
            "health",
        ]

    def get_online(self, scanner: Scanner) -> bool:
        health = getattr(scanner, "health", None)
        return health is not None and health.online
