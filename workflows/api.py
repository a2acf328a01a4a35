"""The workflows API under /api/v1/workflows/. Biomed and administrators configure and manage;
nurses (all clinical staff) read the par board; facilities also read device health. Views are
thin: they validate the request and call the plain functions of this app."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from hospital.permissions import ClinicalStaff, EquipmentManagers, role_permission
from hospital.roles import ADMIN, BIOMED, FACILITIES
from tracking.models import ScannerHealth, Tag
from workflows import devicehealth, maintenance, par, utilisation
from workflows.models import (
    Geofence,
    MaintenanceSchedule,
    ParLevel,
    RecallCampaign,
    StatusChange,
    WorkOrder,
    ZoneGroup,
    ZoneRule,
)

DeviceHealthReaders = role_permission(BIOMED, FACILITIES, ADMIN)


class CleanedModelSerializer(serializers.ModelSerializer):
    """Runs the model's own `clean()` so the API refuses exactly what the admin refuses."""

    def validate(self, attrs):
        attrs = super().validate(attrs)
        model = self.Meta.model
        many = {field.name for field in model._meta.many_to_many}
        instance = copy.copy(self.instance) if self.instance is not None else model()
        for name, value in attrs.items():
            if name not in many:
                setattr(instance, name, value)
        try:
            instance.clean()
        except DjangoValidationError as exc:
            detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
            raise ValidationError(detail) from exc
        return attrs


def _serializer(model_class, extra_read_only=()):
    class Serializer(CleanedModelSerializer):
        class Meta:
            model = model_class
            fields = "__all__"
            read_only_fields = extra_read_only

    Serializer.__name__ = f"{model_class.__name__}Serializer"
    return Serializer


ZoneRuleSerializer = _serializer(ZoneRule)
ZoneGroupSerializer = _serializer(ZoneGroup)
ParLevelSerializer = _serializer(ParLevel)
GeofenceSerializer = _serializer(Geofence)
ScheduleSerializer = _serializer(MaintenanceSchedule)
WorkOrderSerializer = _serializer(WorkOrder, ("created_at", "completed_at"))
RecallSerializer = _serializer(RecallCampaign)


class StatusHistorySerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", allow_null=True, default=None)

    class Meta:
        model = StatusChange
        fields = [
            "id",
            "asset",
            "at",
            "old_status",
            "new_status",
            "rule",
            "rule_name",
            "zone",
            "stay",
            "actor",
            "source",
            "note",
        ]


class ManagedViewSet(viewsets.ModelViewSet):
    permission_classes = [EquipmentManagers]


class ZoneRuleViewSet(ManagedViewSet):
    queryset = ZoneRule.objects.all()
    serializer_class = ZoneRuleSerializer
    filterset_fields = ["is_active", "trigger", "zone_kind", "zone"]


class ZoneGroupViewSet(ManagedViewSet):
    queryset = ZoneGroup.objects.prefetch_related("zones")
    serializer_class = ZoneGroupSerializer


class ParLevelViewSet(ManagedViewSet):
    queryset = ParLevel.objects.all()
    serializer_class = ParLevelSerializer
    filterset_fields = ["asset_type", "department", "zone_group", "is_active"]


class GeofenceViewSet(ManagedViewSet):
    queryset = Geofence.objects.all()
    serializer_class = GeofenceSerializer
    filterset_fields = ["is_active", "event", "scope"]


class ScheduleViewSet(ManagedViewSet):
    queryset = MaintenanceSchedule.objects.all()
    serializer_class = ScheduleSerializer
    filterset_fields = ["asset_type", "asset", "is_active"]

    def perform_create(self, serializer):
        serializer.save()
        maintenance.refresh_and_alert()

    def perform_update(self, serializer):
        serializer.save()
        maintenance.refresh_and_alert()

    def perform_destroy(self, instance):
        instance.delete()
        maintenance.refresh_and_alert()


class WorkOrderViewSet(ManagedViewSet):
    queryset = WorkOrder.objects.select_related("asset", "assignee")
    serializer_class = WorkOrderSerializer
    filterset_fields = ["asset", "status", "kind", "assignee", "schedule", "recall"]


class StatusChangeViewSet(viewsets.ReadOnlyModelViewSet):
    """The status history of assets, each change with the person or the rule that made it."""

    permission_classes = [EquipmentManagers]
    queryset = StatusChange.objects.select_related("actor").order_by("-at", "-pk")
    serializer_class = StatusHistorySerializer
    filterset_fields = ["asset", "rule", "new_status", "source"]


class RecallUnitSerializer(serializers.Serializer):
    asset_id = serializers.IntegerField()
    asset = serializers.CharField()
    serial_number = serializers.CharField()
    status = serializers.CharField()
    work_order_id = serializers.IntegerField(allow_null=True)
    work_order_status = serializers.CharField(allow_null=True)
    location = serializers.DictField(allow_null=True)


class RecallViewSet(ManagedViewSet):
    """Creating (or widening) a campaign marks every affected unit at once and opens its work
    order; units already marked stay marked."""

    queryset = RecallCampaign.objects.all()
    serializer_class = RecallSerializer

    def perform_create(self, serializer):
        maintenance.launch_recall(serializer.save())

    def perform_update(self, serializer):
        maintenance.launch_recall(serializer.save())

    @extend_schema(summary="Affected units and where each is now", responses=RecallUnitSerializer)
    @action(detail=True, methods=["get"])
    def units(self, request, pk=None):
        return Response(maintenance.recall_units(self.get_object()))

    @extend_schema(
        summary="Mark units that match now (assets registered since the launch)",
        request=None,
        responses={200: OpenApiTypes.OBJECT},
    )
    @action(detail=True, methods=["post"])
    def launch(self, request, pk=None):
        return Response({"added": maintenance.launch_recall(self.get_object())})


def _int(request, name: str, default=None, minimum: int = 0) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValidationError({name: "must be an integer"}) from exc
    if value < minimum:
        raise ValidationError({name: f"must be at least {minimum}"})
    return value


def _moment(raw: str | None, name: str) -> datetime | None:
    if not raw:
        return None
    moment = parse_datetime(raw)
    if moment is None:
        day = parse_date(raw)
        if day is None:
            raise ValidationError({name: "an ISO 8601 date or date-time"})
        moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return moment


class ParBoardView(APIView):
    """Every unit's available clean assets against its par, worst first (all clinical staff)."""

    permission_classes = [ClinicalStaff]

    @extend_schema(
        summary="Live par board",
        parameters=[
            OpenApiParameter("type", str, description="asset type slug"),
            OpenApiParameter("department", int),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        slug = request.query_params.get("type")
        types = None
        if slug:
            from tracking.models import AssetType

            types = list(AssetType.objects.filter(slug=slug).values_list("pk", flat=True))
        return Response({"levels": par.board(types, department_id=_int(request, "department"))})


class DueView(APIView):
    permission_classes = [EquipmentManagers]

    @extend_schema(
        summary="Maintenance due and overdue",
        parameters=[
            OpenApiParameter("within_days", int, description="default: the due-soon window"),
            OpenApiParameter("floor", int, description="only assets located on this floor"),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        rows = maintenance.due_list(
            within_days=_int(request, "within_days"), floor_id=_int(request, "floor")
        )
        return Response({"count": len(rows), "results": rows})


class NearMeView(APIView):
    """Maintenance due on the technician's floor, nearest-zone order: `floor` is required."""

    permission_classes = [EquipmentManagers]

    @extend_schema(
        summary="Maintenance due near me (on my floor)",
        parameters=[
            OpenApiParameter("floor", int, required=True),
            OpenApiParameter("within_days", int),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        floor = _int(request, "floor")
        if floor is None:
            raise ValidationError({"floor": "required: the floor you are on"})
        rows = maintenance.due_list(within_days=_int(request, "within_days"), floor_id=floor)
        rows.sort(key=lambda r: ((r["location"] or {}).get("zone") or "", r["due_on"], r["asset"]))
        return Response({"count": len(rows), "results": rows})


class CsvRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, dict) and "rows" in data:
            return utilisation.as_csv(data["rows"]).encode()
        return str(data).encode()


class UtilisationView(APIView):
    """Hours in use / idle / cleaning / maintenance from the status history; CSV with
    `?format=csv`; `chart` is ready for Chart.js."""

    permission_classes = [EquipmentManagers]
    renderer_classes = [JSONRenderer, CsvRenderer]

    @extend_schema(
        summary="Utilisation report",
        parameters=[
            OpenApiParameter("start", str),
            OpenApiParameter("end", str),
            OpenApiParameter("group", str, enum=list(utilisation.GROUPS)),
            OpenApiParameter("type", str),
            OpenApiParameter("floor", int),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        end = _moment(request.query_params.get("end"), "end") or timezone.now()
        start = _moment(request.query_params.get("start"), "start") or end - timedelta(days=30)
        try:
            data = utilisation.report(
                start,
                end,
                request.query_params.get("group") or "type",
                asset_type=request.query_params.get("type") or None,
                floor_id=_int(request, "floor"),
            )
        except ValueError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        response = Response(data)
        if getattr(request.accepted_renderer, "format", "") == "csv":
            name = f"utilisation-{data['group']}-{start:%Y%m%d}-{end:%Y%m%d}.csv"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class TagHealthView(APIView):
    permission_classes = [DeviceHealthReaders]

    @extend_schema(
        summary="Tag batteries with trend and replacement forecast, soonest first",
        operation_id="workflows_tag_health_list",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        rows = devicehealth.forecasts()
        return Response({"count": len(rows), "results": rows})


class TagHistoryView(APIView):
    permission_classes = [DeviceHealthReaders]

    @extend_schema(
        summary="One tag's daily battery history and forecast",
        operation_id="workflows_tag_health_retrieve",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, pk: int):
        tag = get_object_or_404(Tag.objects.select_related("asset"), pk=pk)
        return Response(
            {**devicehealth.tag_forecast(tag), "history": devicehealth.battery_history(tag)}
        )


class GatewayHealthView(APIView):
    permission_classes = [DeviceHealthReaders]

    @extend_schema(summary="Gateways offline now", responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        rows = list(
            ScannerHealth.objects.filter(online=False, scanner__is_active=True)
            .order_by("scanner__serial")
            .values(
                "scanner_id",
                "scanner__serial",
                "scanner__floor_id",
                "last_batch_at",
                "last_heartbeat_at",
            )
        )
        return Response({"count": len(rows), "results": rows})
