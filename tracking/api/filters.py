"""Query-string filters of the read API (django-filter); their names are the public API."""

from __future__ import annotations

import django_filters
from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from hospital.models import Zone, ZoneKind
from tracking.models import Asset, AssetStatus, Presence, Scanner, ScannerKind


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """A primary key in the query string (documented as an integer, not a float)."""


class AssetFilter(django_filters.FilterSet):
    type = django_filters.CharFilter(
        field_name="asset_type__slug", help_text="Asset type slug, e.g. infusion-pump."
    )
    status = django_filters.MultipleChoiceFilter(
        choices=AssetStatus.choices, help_text="Repeat to match any of several statuses."
    )
    presence = django_filters.ChoiceFilter(
        choices=Presence.choices,
        method="filter_presence",
        help_text="never-seen also matches assets that were never located.",
    )
    floor = IdFilter(field_name="location__floor_id", help_text="Floor id.")
    zone = IdFilter(field_name="location__zone_id", help_text="Zone id.")
    department = IdFilter(field_name="department_id", help_text="Owning department id.")

    class Meta:
        model = Asset
        fields = ["type", "status", "presence", "floor", "zone", "department"]

    def filter_presence(self, queryset, name, value):
        if value == Presence.NEVER_SEEN:
            return queryset.filter(
                Q(location__isnull=True) | Q(location__presence=Presence.NEVER_SEEN)
            )
        return queryset.filter(location__presence=value)


class ZoneFilter(django_filters.FilterSet):
    floor = IdFilter(field_name="floor_id", help_text="Floor id.")
    kind = django_filters.ChoiceFilter(choices=ZoneKind.choices)
    department = IdFilter(field_name="department_id")

    class Meta:
        model = Zone
        fields = ["floor", "kind", "department"]


class ScannerFilter(django_filters.FilterSet):
    floor = IdFilter(field_name="floor_id", help_text="Floor id.")
    kind = django_filters.ChoiceFilter(choices=ScannerKind.choices)
    online = django_filters.BooleanFilter(
        method="filter_online", help_text="Scanners with no heartbeat yet count as offline."
    )

    class Meta:
        model = Scanner
        fields = ["floor", "kind", "online"]

    def filter_online(self, queryset, name, value):
        if value:
            return queryset.filter(health__online=True)
        return queryset.filter(Q(health__isnull=True) | Q(health__online=False))
