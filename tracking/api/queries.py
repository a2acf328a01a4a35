"""The read side's queries: each loads what its serializer touches in a fixed number of queries,
however many rows a page holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import ValidationError

from hospital.models import Building, Floor, Zone
from tracking.models import Asset, AssetType, PositionSample, Scanner, ZoneStay

#: History returned when the client names no start: the last day.
DEFAULT_HISTORY_WINDOW = timedelta(days=1)


def assets() -> QuerySet[Asset]:
    return Asset.objects.select_related(
        "asset_type",
        "department",
        "tag",
        "location__floor",
        "location__zone",
        "location__confirmed_zone",
        "maintenance",
    ).order_by("name")


def asset_types() -> QuerySet[AssetType]:
    return AssetType.objects.order_by("name")


def _instant(params, name: str) -> datetime | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = parse_datetime(raw.strip().replace(" ", "+"))
    except ValueError:
        value = None
    if value is None:
        raise ValidationError({name: "an ISO-8601 date and time, e.g. 2026-03-01T08:00:00Z"})
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)


def time_window(params, default: timedelta | None) -> tuple[datetime | None, datetime | None]:
    """`from`/`to` of the query string. Without `from`, the window starts `default` before `to`
    (or now), so an unbounded request cannot scan months of history by accident."""
    start, end = _instant(params, "from"), _instant(params, "to")
    if start is None and default is not None:
        start = (end or timezone.now()) - default
    if start is not None and end is not None and end < start:
        raise ValidationError({"to": "must not be before from"})
    return start, end


def asset_history(asset: Asset, start: datetime | None, end: datetime | None):
    samples = PositionSample.objects.filter(asset=asset).select_related("zone")
    if start is not None:
        samples = samples.filter(ts__gte=start)
    if end is not None:
        samples = samples.filter(ts__lte=end)
    return samples.order_by("ts")


def asset_stays(asset: Asset, start: datetime | None, end: datetime | None):
    """Stays overlapping the window, newest first (an open stay overlaps every later window)."""
    stays = ZoneStay.objects.filter(asset=asset).select_related("zone__floor")
    if start is not None:
        stays = stays.exclude(left_at__lt=start)
    if end is not None:
        stays = stays.filter(entered_at__lte=end)
    return stays.order_by("-entered_at")


def buildings() -> QuerySet[Building]:
    return Building.objects.select_related("site").prefetch_related(
        Prefetch("floors", queryset=Floor.objects.order_by("level", "name"))
    )


def floors() -> QuerySet[Floor]:
    return (
        Floor.objects.select_related("building")
        .prefetch_related(Prefetch("zones", queryset=Zone.objects.order_by("name")))
        .order_by("building__name", "level", "name")
    )


def zones() -> QuerySet[Zone]:
    return Zone.objects.select_related("department").order_by("floor_id", "name")


def scanners() -> QuerySet[Scanner]:
    return Scanner.objects.select_related("health").order_by("serial")
