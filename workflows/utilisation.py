"""Utilisation from status history: hours in use, idle (available) and in cleaning per asset,
asset type, department or floor, the peak number in use at once, and a verdict on the fleet
size ("do we own too many or too few pumps on this floor"). Where each asset was comes from its
zone stays (its floor is where it spent most located hours); the zone-kind view of the same
period is integrations.utilisation's, included for types and departments."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import datetime

from django.db.models import DateTimeField as DateTimeValue
from django.db.models import (
    DurationField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone

from integrations import utilisation as by_location
from tracking.models import Asset, AssetStatus, ZoneStay
from workflows import usage
from workflows.models import StatusChange

GROUPS = ("asset", "type", "department", "floor")
STATUS_COLUMNS = {
    AssetStatus.IN_USE: "in_use_h",
    AssetStatus.AVAILABLE: "idle_h",
    AssetStatus.NEEDS_CLEANING: "cleaning_h",
    AssetStatus.MAINTENANCE: "maintenance_h",
}
FIELDS = [
    "group",
    "asset_type",
    "department",
    "floor",
    "assets",
    "in_use_h",
    "idle_h",
    "cleaning_h",
    "maintenance_h",
    "utilisation_pct",
    "peak_in_use",
    "verdict",
]


def _intervals(start: datetime, end: datetime, assets) -> dict[int, list]:
    """Each asset's status intervals over the period, from its StatusChange history: the status
    at `start` is the last change before it, else the first change's old status, else the
    asset's current status (never changed)."""
    ids = [a.pk for a in assets]
    last_before = StatusChange.objects.filter(asset_id=OuterRef("pk"), at__lte=start).order_by(
        "-at", "-pk"
    )
    before = dict(
        Asset.objects.filter(pk__in=ids)
        .annotate(status_then=Subquery(last_before.values("new_status")[:1]))
        .exclude(status_then=None)
        .values_list("pk", "status_then")
    )
    during: dict[int, list] = defaultdict(list)
    first_old = {}
    for asset_id, at, old, new in (
        StatusChange.objects.filter(asset_id__in=ids, at__gt=start, at__lt=end)
        .order_by("at", "pk")
        .values_list("asset_id", "at", "old_status", "new_status")
    ):
        first_old.setdefault(asset_id, old)
        during[asset_id].append((at, new))
    return {
        a.pk: usage.status_intervals(
            before.get(a.pk) or first_old.get(a.pk) or a.status, during[a.pk], start, end
        )
        for a in assets
    }


def _home_floors(start: datetime, end: datetime, ids) -> dict[int, tuple[int, str]]:
    """The floor where each asset spent most of its located time in the period."""
    stays = (
        ZoneStay.objects.filter(
            Q(left_at__isnull=True) | Q(left_at__gt=start), entered_at__lt=end, asset_id__in=ids
        )
        .annotate(
            overlap=ExpressionWrapper(
                Least(
                    Coalesce("left_at", Value(end, output_field=DateTimeValue())),
                    Value(end, output_field=DateTimeValue()),
                )
                - Greatest("entered_at", Value(start, output_field=DateTimeValue())),
                output_field=DurationField(),
            )
        )
        .values("asset_id", "zone__floor_id", "zone__floor__name")
        .annotate(total=Sum(F("overlap")))
    )
    best: dict[int, tuple] = {}
    for row in stays:
        total = row["total"].total_seconds() if row["total"] else 0.0
        current = best.get(row["asset_id"])
        if current is None or total > current[0]:
            best[row["asset_id"]] = (total, row["zone__floor_id"], row["zone__floor__name"])
    return {asset: (floor, name) for asset, (_, floor, name) in best.items()}


def report(
    start: datetime,
    end: datetime,
    group: str = "type",
    *,
    asset_type: str | None = None,
    floor_id: int | None = None,
    now: datetime | None = None,
) -> dict:
    if end <= start:
        raise ValueError("the period's end must be after its start")
    if group not in GROUPS:
        raise ValueError(f"group must be one of {', '.join(GROUPS)}")
    until = min(end, now or timezone.now())
    assets = Asset.objects.exclude(status=AssetStatus.RETIRED).select_related(
        "asset_type", "department"
    )
    if asset_type:
        assets = assets.filter(asset_type__slug=asset_type)
    assets = list(assets)
    intervals = _intervals(start, until, assets) if until > start else {a.pk: [] for a in assets}
    floors = _home_floors(start, until, [a.pk for a in assets]) if until > start else {}
    if floor_id is not None:
        assets = [a for a in assets if floors.get(a.pk, (None,))[0] == floor_id]

    def key(asset) -> tuple:
        floor = floors.get(asset.pk, (None, ""))[1] or ""
        department = asset.department.name if asset.department else ""
        return {
            "asset": (asset.name, asset.asset_type.slug, department, floor),
            "type": (asset.asset_type.slug, asset.asset_type.slug, "", ""),
            "department": (
                f"{asset.asset_type.slug} / {department}",
                asset.asset_type.slug,
                department,
                "",
            ),
            "floor": (f"{asset.asset_type.slug} / {floor}", asset.asset_type.slug, "", floor),
        }[group]

    grouped: dict[tuple, list] = defaultdict(list)
    for asset in assets:
        grouped[key(asset)].append(asset)
    rows = []
    for (label, type_slug, department, floor), members in sorted(grouped.items()):
        hours: dict[str, float] = defaultdict(float)
        for asset in members:
            for status, h in usage.hours_by_status(intervals[asset.pk]).items():
                hours[status] += h
        row = {
            "group": label,
            "asset_type": type_slug,
            "department": department,
            "floor": floor,
            "assets": len(members),
        }
        for status, column in STATUS_COLUMNS.items():
            row[column] = round(hours.get(status, 0.0), 2)
        counted = row["in_use_h"] + row["idle_h"] + row["cleaning_h"]
        row["utilisation_pct"] = round(100.0 * row["in_use_h"] / counted, 1) if counted else None
        row["peak_in_use"] = usage.peak_concurrent(
            [intervals[a.pk] for a in members], AssetStatus.IN_USE
        )
        row["verdict"] = usage.verdict(len(members), row["peak_in_use"], row["utilisation_pct"])
        rows.append(row)
    answer = {
        "start": start,
        "end": end,
        "group": group,
        "rows": rows,
        "chart": chart(rows),
    }
    if group in ("type", "department"):
        answer["by_location"] = [r.as_dict() for r in by_location.utilisation(start, end, now)]
    return answer


def chart(rows: list[dict]) -> dict:
    """Chart.js-ready stacked bars: hours per status for each row's group."""
    series = [
        ("In use", "in_use_h"),
        ("Idle", "idle_h"),
        ("Cleaning", "cleaning_h"),
        ("Maintenance", "maintenance_h"),
    ]
    return {
        "labels": [row["group"] for row in rows],
        "datasets": [
            {"label": label, "data": [row[column] for row in rows]} for label, column in series
        ],
    }


def as_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        pct = row["utilisation_pct"]
        writer.writerow({**row, "utilisation_pct": "" if pct is None else pct})
    return buffer.getvalue()
