"""Utilisation: how many hours assets spent in use, idle or being cleaned, per asset type and
department (the asset's owning department), over a period, from their zone stays.

What a stay counts as depends on the kind of zone (docs/exports.md):

- in use: patient rooms and operating rooms, where equipment serves a patient;
- idle: equipment storage and clean utility rooms, where it waits, ready;
- cleaning: soiled utility rooms, where it waits to be reprocessed;
- transit: corridors, lobbies, stairs, lifts, exits;
- other: every other zone (nurse stations, labs, pharmacy, offices...).

Utilisation is in-use hours over all located hours (the five categories together). Hours with no
zone stay (the asset was unheard, or between zones) count in none of them. The sums are computed
by the database, so a year of stays costs one grouped query.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.db.models import (
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    Q,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone

from hospital.models import ZoneKind
from tracking.models import Asset, ZoneStay

CATEGORY_OF_KIND = {
    ZoneKind.ROOM: "in_use",
    ZoneKind.OPERATING_ROOM: "in_use",
    ZoneKind.STORAGE: "idle",
    ZoneKind.CLEAN_UTILITY: "idle",
    ZoneKind.SOILED_UTILITY: "cleaning",
    ZoneKind.CORRIDOR: "transit",
    ZoneKind.LOBBY: "transit",
    ZoneKind.STAIRS: "transit",
    ZoneKind.ELEVATOR: "transit",
    ZoneKind.EXIT: "transit",
}
CATEGORIES = ("in_use", "idle", "cleaning", "transit", "other")
NO_DEPARTMENT = ""


@dataclass
class UtilisationRow:
    asset_type: str
    department: str
    assets: int
    in_use_h: float = 0.0
    idle_h: float = 0.0
    cleaning_h: float = 0.0
    transit_h: float = 0.0
    other_h: float = 0.0

    @property
    def located_h(self) -> float:
        return sum(getattr(self, f"{name}_h") for name in CATEGORIES)

    @property
    def utilisation_pct(self) -> float | None:
        located = self.located_h
        return round(100.0 * self.in_use_h / located, 1) if located else None

    def as_dict(self) -> dict:
        row = asdict(self)
        for name in CATEGORIES:
            row[f"{name}_h"] = round(row[f"{name}_h"], 2)
        row["located_h"] = round(self.located_h, 2)
        row["utilisation_pct"] = self.utilisation_pct
        return row


FIELDS = [
    "asset_type",
    "department",
    "assets",
    *(f"{name}_h" for name in CATEGORIES),
    "located_h",
    "utilisation_pct",
]


def utilisation(
    start: datetime, end: datetime, now: datetime | None = None
) -> list[UtilisationRow]:
    """One row per (asset type, department) that has assets, ordered by type then department.
    A stay still open counts until `now` (or the period's end, if that comes first)."""
    if end <= start:
        raise ValueError("the period's end must be after its start")
    open_until = min(end, now or timezone.now())
    rows: dict[tuple[str, str], UtilisationRow] = {}
    fleet = (
        Asset.objects.exclude(status="retired")
        .values("asset_type__slug", "department__name")
        .annotate(n=Count("pk"))
    )
    for group in fleet:
        key = (group["asset_type__slug"], group["department__name"] or NO_DEPARTMENT)
        rows[key] = UtilisationRow(*key, assets=group["n"])
    stays = (
        ZoneStay.objects.filter(Q(left_at__isnull=True) | Q(left_at__gt=start), entered_at__lt=end)
        .annotate(
            overlap=ExpressionWrapper(
                Least(
                    Coalesce("left_at", Value(open_until, output_field=DateTimeField())),
                    Value(end, output_field=DateTimeField()),
                )
                - Greatest("entered_at", Value(start, output_field=DateTimeField())),
                output_field=DurationField(),
            )
        )
        .values("asset__asset_type__slug", "asset__department__name", "zone__kind")
        .annotate(total=Sum(F("overlap")))
    )
    for group in stays:
        key = (group["asset__asset_type__slug"], group["asset__department__name"] or NO_DEPARTMENT)
        row = rows.setdefault(key, UtilisationRow(*key, assets=0))
        total = group["total"] or timedelta(0)
        category = CATEGORY_OF_KIND.get(group["zone__kind"], "other")
        hours = max(total.total_seconds(), 0.0) / 3600.0
        setattr(row, f"{category}_h", getattr(row, f"{category}_h") + hours)
    return [rows[key] for key in sorted(rows)]


def kinds_by_category() -> dict[str, list[str]]:
    """Which zone kinds count as which category (every kind not listed is `other`)."""
    grouped: dict[str, list[str]] = {name: [] for name in CATEGORIES}
    for kind in ZoneKind.values:
        grouped[CATEGORY_OF_KIND.get(kind, "other")].append(kind)
    return grouped


def as_csv(rows: list[dict]) -> str:
    """Rows as `UtilisationRow.as_dict` gives them, one CSV line each, with a header."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                **row,
                "utilisation_pct": "" if row["utilisation_pct"] is None else row["utilisation_pct"],
            }
        )
    return buffer.getvalue()
