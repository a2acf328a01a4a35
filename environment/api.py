"""The cold-chain API for people: sensors with their live state, readings over a time range
(downsampled for charts), daily extremes, the compliance report, and reading annotations.
Readings are read-only here: there is no way to change or delete one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import django_filters
from django.db.models import Avg, Count, Max, Min, Prefetch
from django.db.models.functions import TruncDay
from django.http import HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from alerts.models import Alert, AlertState
from environment import rules
from environment.models import (
    EnvironmentReading,
    ReadingAnnotation,
    Sensor,
    SensorKind,
    ThresholdProfile,
)
from environment.reports import build_report, report_csv, report_text
from hospital.permissions import role_permission
from hospital.roles import ADMIN, BIOMED, FACILITIES

ColdChainStaff = role_permission(FACILITIES, BIOMED, ADMIN)
MAX_RANGE = timedelta(days=400)
MAX_POINTS = 20_000


class ProfileSerializer(serializers.ModelSerializer):
    class Meta:
        model = ThresholdProfile
        fields = [
            "slug",
            "name",
            "temperature_min_c",
            "temperature_max_c",
            "temperature_critical_min_c",
            "temperature_critical_max_c",
            "humidity_min_pct",
            "humidity_max_pct",
            "alarm_delay_s",
            "clear_hysteresis_s",
            "door_open_max_s",
            "offline_after_intervals",
            "low_battery_pct",
            "critical_battery_pct",
            "plausible_min_c",
            "plausible_max_c",
            "source",
        ]


class LatestSerializer(serializers.Serializer):
    ts = serializers.DateTimeField(source="last_ts", allow_null=True)
    received_at = serializers.DateTimeField(source="last_received_at", allow_null=True)
    temperature_c = serializers.FloatField(allow_null=True)
    humidity_pct = serializers.FloatField(allow_null=True)
    battery_pct = serializers.FloatField(allow_null=True)
    door_open = serializers.BooleanField(allow_null=True)


class OpenAlertSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    severity = serializers.CharField()
    state = serializers.CharField()


def _state_of(sensor):
    try:
        return sensor.state
    except Sensor.state.RelatedObjectDoesNotExist:
        return None


def _open_alerts(sensor) -> list:
    cached = getattr(sensor, "unresolved_alerts", None)
    if cached is not None:
        return cached
    return list(sensor.alerts.exclude(state=AlertState.RESOLVED))


class SensorSerializer(serializers.ModelSerializer):
    zone = serializers.CharField(source="zone.name")
    floor = serializers.CharField(source="zone.floor.name")
    profile = ProfileSerializer()
    gateway = serializers.CharField(source="gateway.serial", allow_null=True, default=None)
    latest = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()
    open_alerts = serializers.SerializerMethodField()

    class Meta:
        model = Sensor
        fields = [
            "serial",
            "kind",
            "contents",
            "zone",
            "floor",
            "profile",
            "expected_interval_s",
            "gateway",
            "calibration_due",
            "is_active",
            "latest",
            "status",
            "open_alerts",
        ]

    @extend_schema_field(LatestSerializer(allow_null=True))
    def get_latest(self, sensor):
        state = _state_of(sensor)
        return LatestSerializer(state).data if state else None

    @extend_schema_field(
        serializers.ChoiceField(choices=["ok", "alert", "offline", "never-heard", "inactive"])
    )
    def get_status(self, sensor):
        """ok, alert (an unresolved alert), offline, never-heard or inactive."""
        if not sensor.is_active:
            return "inactive"
        alerts = _open_alerts(sensor)
        if any(a.kind == rules.SENSOR_OFFLINE for a in alerts):
            return "offline"
        if alerts:
            return "alert"
        state = _state_of(sensor)
        if state is None or state.last_received_at is None:
            return "never-heard"
        return "ok"

    @extend_schema_field(OpenAlertSerializer(many=True))
    def get_open_alerts(self, sensor):
        return OpenAlertSerializer(_open_alerts(sensor), many=True).data


class SensorFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=SensorKind.choices)
    profile = django_filters.CharFilter(field_name="profile__slug")
    zone = django_filters.NumberFilter(field_name="zone_id")
    floor = django_filters.NumberFilter(field_name="zone__floor_id")
    gateway = django_filters.CharFilter(field_name="gateway__serial")

    class Meta:
        model = Sensor
        fields = ["kind", "profile", "zone", "floor", "gateway", "is_active"]


class ReadingSerializer(serializers.ModelSerializer):
    sensor = serializers.CharField(source="sensor.serial")
    annotations = serializers.IntegerField(source="annotation_count", read_only=True, default=0)

    class Meta:
        model = EnvironmentReading
        fields = [
            "id",
            "sensor",
            "ts",
            "temperature_c",
            "humidity_pct",
            "battery_pct",
            "door_open",
            "received_at",
            "annotations",
        ]


class BucketSerializer(serializers.Serializer):
    ts = serializers.DateTimeField(help_text="Start of the bucket.")
    count = serializers.IntegerField()
    temperature_min_c = serializers.FloatField(allow_null=True)
    temperature_max_c = serializers.FloatField(allow_null=True)
    temperature_mean_c = serializers.FloatField(allow_null=True)
    humidity_mean_pct = serializers.FloatField(allow_null=True)


RANGE_PARAMETERS = [
    OpenApiParameter("from", OpenApiTypes.DATETIME, description="Start (default: 24 h ago)."),
    OpenApiParameter("to", OpenApiTypes.DATETIME, description="End (default: now)."),
]


def time_range(request) -> tuple[datetime, datetime]:
    def moment(name, default):
        raw = request.query_params.get(name)
        if not raw:
            return default
        value = parse_datetime(raw)
        if value is None:
            raise ValidationError({name: f"{raw!r} is not an ISO 8601 date-time"})
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    end = moment("to", timezone.now())
    start = moment("from", end - timedelta(hours=24))
    if end <= start:
        raise ValidationError({"to": "must be after from"})
    if end - start > MAX_RANGE:
        raise ValidationError({"from": f"the range is limited to {MAX_RANGE.days} days"})
    return start, end


class SensorViewSet(viewsets.ReadOnlyModelViewSet):
    """Sensors with their newest values and alert status."""

    permission_classes = [ColdChainStaff]
    serializer_class = SensorSerializer
    lookup_field = "serial"
    lookup_value_regex = "[^/]+"
    filterset_class = SensorFilter

    def get_queryset(self):
        return Sensor.objects.select_related(
            "zone__floor", "profile", "gateway", "state"
        ).prefetch_related(
            Prefetch(
                "alerts",
                queryset=Alert.objects.exclude(state=AlertState.RESOLVED),
                to_attr="unresolved_alerts",
            )
        )

    @extend_schema(
        summary="Readings of a sensor over a time range, raw or downsampled",
        parameters=[
            *RANGE_PARAMETERS,
            OpenApiParameter(
                "bucket_s",
                OpenApiTypes.INT,
                description="Downsample into buckets of this many seconds (min/max/mean).",
            ),
        ],
        responses=ReadingSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def readings(self, request, serial=None):
        sensor = self.get_object()
        start, end = time_range(request)
        rows = EnvironmentReading.objects.filter(sensor=sensor, ts__gte=start, ts__lt=end)
        bucket = request.query_params.get("bucket_s")
        if bucket:
            if not bucket.isdigit() or int(bucket) < 1:
                raise ValidationError({"bucket_s": "must be a positive whole number of seconds"})
            return Response(_downsample(rows, start, int(bucket)))
        rows = rows.select_related("sensor").annotate(annotation_count=Count("annotations"))
        page = self.paginate_queryset(rows.order_by("ts"))
        return self.get_paginated_response(ReadingSerializer(page, many=True).data)

    @extend_schema(
        summary="Daily minimum and maximum temperature",
        parameters=RANGE_PARAMETERS,
        responses=inline_serializer(
            "DailyExtremes",
            {
                "day": serializers.DateField(),
                "min_c": serializers.FloatField(),
                "max_c": serializers.FloatField(),
                "mean_c": serializers.FloatField(),
                "count": serializers.IntegerField(),
            },
            many=True,
        ),
    )
    @action(detail=True, methods=["get"])
    def daily(self, request, serial=None):
        sensor = self.get_object()
        start, end = time_range(request)
        days = (
            EnvironmentReading.objects.filter(
                sensor=sensor, ts__gte=start, ts__lt=end, temperature_c__isnull=False
            )
            .annotate(day=TruncDay("ts"))
            .values("day")
            .annotate(
                min_c=Min("temperature_c"),
                max_c=Max("temperature_c"),
                mean_c=Avg("temperature_c"),
                count=Count("id"),
            )
            .order_by("day")
        )
        return Response(
            [
                {**d, "day": d["day"].date().isoformat(), "mean_c": round(d["mean_c"], 2)}
                for d in days
            ]
        )

    @extend_schema(
        summary="Compliance report (JSON, CSV or printable text)",
        parameters=[
            *RANGE_PARAMETERS,
            OpenApiParameter("as", OpenApiTypes.STR, enum=["json", "csv", "text"]),
        ],
        responses={
            (200, "application/json"): OpenApiTypes.OBJECT,
            (200, "text/csv"): OpenApiTypes.STR,
        },
    )
    @action(detail=True, methods=["get"])
    def report(self, request, serial=None):
        sensor = self.get_object()
        start, end = time_range(request)
        report = build_report(sensor, start, end)
        kind = request.query_params.get("as", "json")
        name = f"coldchain-{sensor.serial}-{start:%Y%m%d}-{end:%Y%m%d}"
        if kind == "csv":
            response = HttpResponse(report_csv(report), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
            return response
        if kind == "text":
            return HttpResponse(report_text(report), content_type="text/plain; charset=utf-8")
        return Response(report)


def _downsample(rows, start: datetime, bucket_s: int) -> list[dict]:
    """Buckets aligned on `start`, computed in Python over the range's rows (bounded by
    MAX_POINTS buckets) so the same code runs on PostgreSQL and SQLite."""
    buckets: dict[int, list] = {}
    origin = start.timestamp()
    values = rows.order_by("ts").values_list("ts", "temperature_c", "humidity_pct")
    for ts, temperature, humidity in values.iterator(chunk_size=5000):
        index = int((ts.timestamp() - origin) // bucket_s)
        buckets.setdefault(index, []).append((temperature, humidity))
        if len(buckets) > MAX_POINTS:
            raise ValidationError({"bucket_s": f"more than {MAX_POINTS} buckets; use larger ones"})
    out = []
    for index, items in sorted(buckets.items()):
        temps = [t for t, _ in items if t is not None]
        hums = [h for _, h in items if h is not None]
        out.append(
            {
                "ts": datetime.fromtimestamp(origin + index * bucket_s, tz=UTC).isoformat(),
                "count": len(items),
                "temperature_min_c": min(temps) if temps else None,
                "temperature_max_c": max(temps) if temps else None,
                "temperature_mean_c": round(sum(temps) / len(temps), 3) if temps else None,
                "humidity_mean_pct": round(sum(hums) / len(hums), 2) if hums else None,
            }
        )
    return out


class ReadingFilter(django_filters.FilterSet):
    sensor = django_filters.CharFilter(field_name="sensor__serial")
    after = django_filters.IsoDateTimeFilter(field_name="ts", lookup_expr="gte")
    before = django_filters.IsoDateTimeFilter(field_name="ts", lookup_expr="lt")

    class Meta:
        model = EnvironmentReading
        fields = ["sensor", "after", "before"]


class ReadingViewSet(viewsets.ReadOnlyModelViewSet):
    """Stored readings. They are compliance records: no PUT, PATCH or DELETE exists."""

    permission_classes = [ColdChainStaff]
    serializer_class = ReadingSerializer
    filterset_class = ReadingFilter

    def get_queryset(self):
        return (
            EnvironmentReading.objects.select_related("sensor")
            .annotate(annotation_count=Count("annotations"))
            .order_by("sensor__serial", "ts")
        )


class AnnotationSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", read_only=True)
    sensor = serializers.CharField(source="reading.sensor.serial", read_only=True)
    ts = serializers.DateTimeField(source="reading.ts", read_only=True)

    class Meta:
        model = ReadingAnnotation
        fields = [
            "id",
            "reading",
            "sensor",
            "ts",
            "author",
            "created_at",
            "reason",
            "note",
            "corrected_temperature_c",
        ]
        read_only_fields = ["created_at"]

    def validate_reason(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("say why the reading is annotated")
        return value


class AnnotationFilter(django_filters.FilterSet):
    sensor = django_filters.CharFilter(field_name="reading__sensor__serial")
    reading = django_filters.NumberFilter(field_name="reading_id")

    class Meta:
        model = ReadingAnnotation
        fields = ["sensor", "reading"]


class AnnotationViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Corrections and remarks on readings; append-only, signed by their author."""

    permission_classes = [ColdChainStaff]
    serializer_class = AnnotationSerializer
    filterset_class = AnnotationFilter

    def get_queryset(self):
        return ReadingAnnotation.objects.select_related("reading__sensor", "author").order_by(
            "-created_at"
        )

    def perform_create(self, serializer):
        serializer.save(author=self.request.user)
