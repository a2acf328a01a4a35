"""Report endpoints for the systems biomed already uses (CMMS, spreadsheets): thin views over
integrations.utilisation. Readable with a session or an integration API key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from hospital.permissions import EquipmentManagers
from integrations import utilisation
from integrations.keys import IntegrationKeyAuthentication

DEFAULT_PERIOD = timedelta(days=30)


class UtilisationCsvRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, dict) and "rows" in data:
            return utilisation.as_csv(data["rows"]).encode()
        return JSONRenderer().render(data)


def parse_moment(raw: str | None, field: str) -> datetime | None:
    """ISO 8601 date or date-time; a date means its midnight UTC."""
    if not raw:
        return None
    try:
        day = parse_date(raw)
        moment = None if day else parse_datetime(raw)
    except ValueError:
        day = moment = None
    if day is not None:
        moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    if moment is None:
        raise ValueError(f"{field} must be an ISO 8601 date or date-time")
    if timezone.is_naive(moment):
        raise ValueError(f"{field} needs a time zone (Z or +hh:mm)")
    return moment


def period(start_raw: str | None, end_raw: str | None) -> tuple[datetime, datetime]:
    end = parse_moment(end_raw, "end") or timezone.now()
    start = parse_moment(start_raw, "start") or end - DEFAULT_PERIOD
    if end <= start:
        raise ValueError("end must be after start")
    return start, end


class UtilisationView(APIView):
    """Hours in use / idle / cleaning per asset type and department; `?format=csv` for CSV."""

    authentication_classes = [IntegrationKeyAuthentication, SessionAuthentication]
    permission_classes = [EquipmentManagers]
    renderer_classes = [JSONRenderer, UtilisationCsvRenderer]

    @extend_schema(
        summary="Utilisation per asset type and department (JSON, or CSV with ?format=csv)",
        parameters=[
            OpenApiParameter("start", str, description="ISO 8601 date or date-time"),
            OpenApiParameter("end", str, description="ISO 8601 date or date-time"),
        ],
        responses={
            200: inline_serializer(
                "UtilisationReport",
                {
                    "start": serializers.DateTimeField(),
                    "end": serializers.DateTimeField(),
                    "categories": serializers.DictField(child=serializers.ListField()),
                    "rows": serializers.ListField(child=serializers.DictField()),
                },
            ),
            400: OpenApiResponse(description="bad period"),
        },
    )
    def get(self, request):
        try:
            start, end = period(request.query_params.get("start"), request.query_params.get("end"))
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=400)
        rows = utilisation.utilisation(start, end)
        headers = {}
        if request.accepted_renderer.format == "csv":
            name = f"utilisation-{start:%Y%m%d}-{end:%Y%m%d}.csv"
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return Response(
            {
                "start": start.isoformat(),
                "end": end.isoformat(),
                "categories": utilisation.kinds_by_category(),
                "rows": [row.as_dict() for row in rows],
            },
            headers=headers,
        )
