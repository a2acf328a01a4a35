"""Alerts for people: list and detail with the timeline, acknowledge and resolve (facilities
staff and administrators). The steps go through alerts.services, so they are audited, shown on
the live console and stop escalation exactly as they would from anywhere else."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from alerts import services
from alerts.models import Alert, AlertEvent, AlertState, Severity
from hospital.permissions import FacilitiesStaff, role_permission
from hospital.roles import ADMIN, BIOMED, FACILITIES

AlertReaders = role_permission(FACILITIES, BIOMED, ADMIN)


class AlertEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", allow_null=True, default=None)

    class Meta:
        model = AlertEvent
        fields = ["at", "kind", "actor", "message", "data"]


class AlertSerializer(serializers.ModelSerializer):
    sensor = serializers.CharField(source="sensor.serial", allow_null=True, default=None)
    acknowledged_by = serializers.CharField(
        source="acknowledged_by.username", allow_null=True, default=None
    )
    resolved_by = serializers.CharField(
        source="resolved_by.username", allow_null=True, default=None
    )

    class Meta:
        model = Alert
        fields = [
            "id",
            "source",
            "kind",
            "subject",
            "title",
            "sensor",
            "severity",
            "state",
            "message",
            "unit",
            "peak_value",
            "last_value",
            "started_at",
            "ended_at",
            "opened_at",
            "updated_at",
            "acknowledged_at",
            "acknowledged_by",
            "acknowledge_comment",
            "resolved_at",
            "resolved_by",
            "resolution_note",
            "resolved_automatically",
            "tier",
            "notifications_sent",
        ]


class AlertDetailSerializer(AlertSerializer):
    events = AlertEventSerializer(many=True, read_only=True)

    class Meta(AlertSerializer.Meta):
        fields = [*AlertSerializer.Meta.fields, "events"]


class AcknowledgeSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class ResolveSerializer(serializers.Serializer):
    note = serializers.CharField(help_text="The corrective action taken.")


class AlertFilter(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=AlertState.choices)
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices)
    kind = django_filters.CharFilter()
    source = django_filters.CharFilter()
    sensor = django_filters.CharFilter(field_name="sensor__serial")
    unresolved = django_filters.BooleanFilter(method="filter_unresolved")
    opened_after = django_filters.IsoDateTimeFilter(field_name="opened_at", lookup_expr="gte")
    opened_before = django_filters.IsoDateTimeFilter(field_name="opened_at", lookup_expr="lt")

    class Meta:
        model = Alert
        fields = ["state", "severity", "kind", "source", "sensor"]

    def filter_unresolved(self, queryset, name, value):
        if value:
            return queryset.exclude(state=AlertState.RESOLVED)
        return queryset.filter(state=AlertState.RESOLVED)


class AlertViewSet(viewsets.ReadOnlyModelViewSet):
    filterset_class = AlertFilter

    def get_permissions(self):
        # OPTIONS on a step's URL runs as the "metadata" action: the route decides, not it.
        if {"acknowledge", "resolve"} & {self.action, *getattr(self, "action_map", {}).values()}:
            return [FacilitiesStaff()]
        return [AlertReaders()]

    def get_queryset(self):
        queryset = Alert.objects.select_related("sensor", "acknowledged_by", "resolved_by")
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("events__actor")
        return queryset.order_by("-opened_at")

    def get_serializer_class(self):
        return AlertDetailSerializer if self.action == "retrieve" else AlertSerializer

    def _step(self, request, step, serializer_class, field):
        alert = self.get_object()
        body = serializer_class(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            alert = step(alert, request.user, body.validated_data[field])
        except services.AlertError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(AlertSerializer(alert).data)

    @extend_schema(
        summary="Acknowledge an open alert",
        request=AcknowledgeSerializer,
        responses={200: AlertSerializer, 409: None},
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        return self._step(request, services.acknowledge, AcknowledgeSerializer, "comment")

    @extend_schema(
        summary="Resolve an alert by hand, with the corrective action",
        request=ResolveSerializer,
        responses={200: AlertSerializer, 409: None},
    )
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        return self._step(request, services.resolve, ResolveSerializer, "note")
