"""The read API: thin viewsets over tracking.api.queries. People only, with a session: a device
token is a gateway's credential and reads nothing here."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import filters, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action

from hospital.permissions import ClinicalStaff, role_permission
from hospital.roles import ADMIN, BIOMED, FACILITIES
from tracking.api import queries
from tracking.api.filters import AssetFilter, ScannerFilter, ZoneFilter
from tracking.api.serializers import (
    AssetSerializer,
    AssetTypeSerializer,
    BuildingSerializer,
    FloorSerializer,
    PositionSampleSerializer,
    ScannerSerializer,
    ZoneSerializer,
    ZoneStaySerializer,
)

ScannerReaders = role_permission(BIOMED, FACILITIES, ADMIN)

TO_PARAMETER = OpenApiParameter(
    "to", OpenApiTypes.DATETIME, description="End, ISO-8601, inclusive (default: now)."
)
HISTORY_PARAMETERS = [
    OpenApiParameter(
        "from",
        OpenApiTypes.DATETIME,
        description="Start, ISO-8601, inclusive (default: one day before `to`).",
    ),
    TO_PARAMETER,
]
STAYS_PARAMETERS = [
    OpenApiParameter(
        "from", OpenApiTypes.DATETIME, description="Start, ISO-8601 (default: unbounded)."
    ),
    TO_PARAMETER,
]


class ReadViewSet(viewsets.ReadOnlyModelViewSet):
    authentication_classes = [SessionAuthentication]
    permission_classes = [ClinicalStaff]
    lookup_value_converter = "int"


class AssetViewSet(ReadViewSet):
    """Assets with their current location; filter by type, status, presence, floor, zone,
    department, or search name, serial number, model and tag id."""

    queryset = queries.assets()
    serializer_class = AssetSerializer
    filterset_class = AssetFilter
    filter_backends = [
        *ReadViewSet.filter_backends,
        filters.SearchFilter,
        filters.OrderingFilter,
    ]
    search_fields = [
        "name",
        "serial_number",
        "model",
        "manufacturer",
        "tag__tag_id",
        "asset_type__name",
        "asset_type__slug",
    ]
    ordering_fields = ["name", "status", "location__last_seen_at"]
    ordering = ["name"]

    @extend_schema(parameters=HISTORY_PARAMETERS, responses=PositionSampleSerializer(many=True))
    @action(detail=True, filter_backends=[])
    def history(self, request, pk=None):
        """The asset's compact position history in the window, oldest first."""
        start, end = queries.time_window(request.query_params, queries.DEFAULT_HISTORY_WINDOW)
        samples = queries.asset_history(self.get_object(), start, end)
        page = self.paginate_queryset(samples)
        return self.get_paginated_response(PositionSampleSerializer(page, many=True).data)

    @extend_schema(parameters=STAYS_PARAMETERS, responses=ZoneStaySerializer(many=True))
    @action(detail=True, filter_backends=[])
    def stays(self, request, pk=None):
        """The asset's zone stays overlapping the window (all when unbounded), newest first."""
        start, end = queries.time_window(request.query_params, None)
        stays = queries.asset_stays(self.get_object(), start, end)
        page = self.paginate_queryset(stays)
        data = ZoneStaySerializer(page, many=True, context={"now": timezone.now()}).data
        return self.get_paginated_response(data)


class AssetTypeViewSet(ReadViewSet):
    queryset = queries.asset_types()
    serializer_class = AssetTypeSerializer


class BuildingViewSet(ReadViewSet):
    queryset = queries.buildings()
    serializer_class = BuildingSerializer


class FloorViewSet(ReadViewSet):
    """Floors with their zones (polygons in floor metres), for drawing the map."""

    queryset = queries.floors()
    serializer_class = FloorSerializer
    filterset_fields = ["building"]


class ZoneViewSet(ReadViewSet):
    queryset = queries.zones()
    serializer_class = ZoneSerializer
    filterset_class = ZoneFilter


class ScannerViewSet(ReadViewSet):
    """Scanner health, for the teams who maintain the gateways."""

    permission_classes = [ScannerReaders]
    queryset = queries.scanners()
    serializer_class = ScannerSerializer
    filterset_class = ScannerFilter
