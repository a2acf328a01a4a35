"""The two endpoints the nurse pages add to the read API: find the nearest available asset on
foot, and change an asset's status. Thin: the logic is in tracking.nearest and tracking.status."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from hospital.models import Zone
from hospital.permissions import ClinicalStaff
from tracking import nearest
from tracking.api import queries
from tracking.api.serializers import AssetSerializer
from tracking.confidence import QUALITY_CHOICES, REASON_CHOICES
from tracking.models import AssetStatus, AssetType
from tracking.status import StatusNotAllowed, change_status


class FindNearestQuery(serializers.Serializer):
    type = serializers.SlugField(help_text="Asset type slug, e.g. infusion-pump.")
    from_zone = serializers.IntegerField(help_text="Zone id where the person is.")
    limit = serializers.IntegerField(min_value=1, max_value=50, default=5)

    def validate_type(self, value: str) -> str:
        if not AssetType.objects.filter(slug=value).exists():
            raise serializers.ValidationError(f"no asset type {value!r}")
        return value


class RouteStepSerializer(serializers.Serializer):
    zone_id = serializers.IntegerField(source="pk")
    zone = serializers.CharField(source="name")
    floor_id = serializers.IntegerField()


class NearestSerializer(serializers.Serializer):
    asset_id = serializers.IntegerField(source="location.asset_id")
    name = serializers.CharField(source="location.asset.name")
    type = serializers.CharField(source="location.asset.asset_type.slug")
    status = serializers.CharField(source="location.asset.status")
    serial_number = serializers.CharField(source="location.asset.serial_number")
    floor_id = serializers.IntegerField(source="zone.floor_id")
    floor = serializers.CharField(source="zone.floor.name")
    zone_id = serializers.IntegerField(source="zone.pk")
    zone = serializers.CharField(source="zone.name")
    x = serializers.FloatField(source="location.x")
    y = serializers.FloatField(source="location.y")
    accuracy_m = serializers.FloatField(source="location.accuracy_m")
    last_seen = serializers.DateTimeField(source="location.last_seen_at")
    zone_confidence = serializers.FloatField(
        source="location.zone_probability",
        allow_null=True,
        help_text="Posterior probability (0-1) that the asset is in `zone`.",
    )
    quality = serializers.ChoiceField(
        source="assessment.quality",
        choices=QUALITY_CHOICES,
        help_text="Only `confirmed` results are known to be in `zone`; the others are ranked "
        "after them and `zone` is the engine's best guess.",
    )
    quality_reasons = serializers.ListField(
        source="assessment.reasons",
        child=serializers.ChoiceField(choices=REASON_CHOICES),
    )
    last_confirmed_zone_id = serializers.IntegerField(
        source="location.confirmed_zone_id", allow_null=True
    )
    last_confirmed_zone = serializers.CharField(
        source="location.confirmed_zone.name", allow_null=True, default=None
    )
    last_confirmed_at = serializers.DateTimeField(source="location.confirmed_at", allow_null=True)
    walking_distance_m = serializers.FloatField(source="walking_m")
    floor_changes = serializers.IntegerField()
    straight_line_m = serializers.FloatField(
        source="straight_m", allow_null=True, help_text="Same floor only; for comparison."
    )
    route = RouteStepSerializer(many=True, help_text="Zones walked through, start to asset.")


class ZoneRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    floor_id = serializers.IntegerField()
    floor = serializers.CharField(source="floor.name")


class FindNearestView(APIView):
    authentication_classes = [SessionAuthentication]
    permission_classes = [ClinicalStaff]

    @extend_schema(
        summary="Nearest available assets of a type, by walking distance",
        parameters=[
            OpenApiParameter("type", str, required=True),
            OpenApiParameter("from_zone", int, required=True),
            OpenApiParameter("limit", int, description="1-50, default 5."),
        ],
        responses=inline_serializer(
            "FindNearest",
            {
                "type": serializers.CharField(),
                "from_zone": ZoneRefSerializer(),
                "results": NearestSerializer(many=True),
            },
        ),
    )
    def get(self, request):
        """Available and present assets of the type, ranked by the walk through doors and
        corridors (floor changes counted), never by straight-line distance through walls.
        Assets whose room is confirmed come first; those whose room is uncertain, then those
        not heard recently, follow, each flagged with `quality` and the last confirmed room."""
        query = FindNearestQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        zone = get_object_or_404(Zone.objects.select_related("floor"), pk=params["from_zone"])
        results = nearest.find_nearest(params["type"], zone, limit=params["limit"])
        return Response(
            {
                "type": params["type"],
                "from_zone": ZoneRefSerializer(zone).data,
                "results": NearestSerializer(results, many=True).data,
            }
        )


class StatusChangeSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=AssetStatus.choices)


class AssetStatusView(APIView):
    authentication_classes = [SessionAuthentication]
    permission_classes = [ClinicalStaff]

    @extend_schema(
        summary="Set an asset's status (audited)",
        request=StatusChangeSerializer,
        responses={200: AssetSerializer},
    )
    def post(self, request, pk: int):
        """Ward staff set available, in use or needs cleaning; biomed and administrators may
        also set maintenance or retired. The change is audited with the acting user."""
        asset = get_object_or_404(queries.assets(), pk=pk)
        body = StatusChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            change_status(asset, body.validated_data["status"], request.user)
        except StatusNotAllowed as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        return Response(AssetSerializer(queries.assets().get(pk=pk)).data)
