"""Device health: daily tag battery samples, trends and replacement forecasts, and the
gateway-offline, tag-silent and low-battery alerts (through the shared alert lifecycle)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.db import transaction
from django.utils import timezone

from alerts.models import Alert, AlertState
from tracking.models import AssetLocation, AssetStatus, Presence, Scanner, ScannerHealth, Tag
from workflows import alerting, forecast
from workflows.config import setting
from workflows.models import BatterySample


@transaction.atomic
def snapshot_batteries(today: date | None = None) -> int:
    """Today's sample of every tag that reported a battery level: the newest level, and the
    lowest seen today. Run hourly: the day's row is updated in place."""
    today = today or timezone.localdate()
    levels = dict(Tag.objects.filter(battery_pct__isnull=False).values_list("pk", "battery_pct"))
    existing = {s.tag_id: s for s in BatterySample.objects.filter(day=today, tag_id__in=levels)}
    create, update = [], []
    for tag_id, pct in levels.items():
        sample = existing.get(tag_id)
        if sample is None:
            create.append(BatterySample(tag_id=tag_id, day=today, battery_pct=pct, min_pct=pct))
        else:
            sample.battery_pct = pct
            sample.min_pct = min(sample.min_pct, pct)
            update.append(sample)
    BatterySample.objects.bulk_create(create, ignore_conflicts=True)
    BatterySample.objects.bulk_update(update, ["battery_pct", "min_pct"])
    return len(levels)


def tag_forecast(tag: Tag, samples=None) -> dict:
    if samples is None:
        samples = list(tag.battery_samples.values_list("day", "battery_pct"))
    result = forecast.replacement_date(
        samples,
        threshold_pct=setting("BATTERY_REPLACE_PCT"),
        window_days=setting("BATTERY_WINDOW_DAYS"),
    )
    return {
        "tag_id": tag.tag_id,
        "asset_id": tag.asset_id,
        "asset": tag.asset.name if tag.asset_id else None,
        "battery_pct": tag.battery_pct,
        "samples": len(samples),
        "trend_pct_per_day": result.slope_pct_per_day,
        "replace_on": result.replace_on,
        "forecast": result.reason,
    }


def forecasts(tags=None) -> list[dict]:
    """A forecast per tag (one query for all the samples), soonest replacement first."""
    tags = list((tags if tags is not None else Tag.objects.all()).select_related("asset"))
    history: dict[int, list] = {t.pk: [] for t in tags}
    for tag_id, day, pct in BatterySample.objects.filter(tag_id__in=history).values_list(
        "tag_id", "day", "battery_pct"
    ):
        history[tag_id].append((day, pct))
    rows = [tag_forecast(tag, history[tag.pk]) for tag in tags]
    rows.sort(key=lambda r: (r["replace_on"] is None, r["replace_on"] or date.max, r["tag_id"]))
    return rows


def gateways_offline(scanner_ids, now: datetime | None = None) -> int:
    """Raise a gateway-offline alert for each scanner (the presence check just took them
    offline)."""
    now = now or timezone.now()
    count = 0
    for scanner in Scanner.objects.filter(pk__in=list(scanner_ids), is_active=True).select_related(
        "health", "floor"
    ):
        health = getattr(scanner, "health", None)
        heard = [t for t in (health.last_batch_at, health.last_heartbeat_at) if t] if health else []
        since = max(heard) if heard else now
        alerting.report(
            kind=alerting.GATEWAY_OFFLINE,
            subject=f"scanner:{scanner.pk}",
            title=f"Gateway {scanner.serial}",
            severity="warning",
            started_at=since,
            message=(
                f"Gateway {scanner.serial} on {scanner.floor} silent since {since:%Y-%m-%d %H:%M} "
                "UTC: tags near it are not being located"
            ),
            details={"scanner_id": scanner.pk, "floor_id": scanner.floor_id},
        )
        count += 1
    return count


def tags_silent(asset_ids, now: datetime | None = None) -> int:
    """Raise a tag-silent alert for each tagged asset just marked missing."""
    now = now or timezone.now()
    count = 0
    for location in (
        AssetLocation.objects.filter(asset_id__in=list(asset_ids), asset__tag__isnull=False)
        .exclude(asset__status=AssetStatus.RETIRED)
        .select_related("asset__tag", "zone")
    ):
        tag = location.asset.tag
        where = location.zone.name if location.zone else "no zone"
        alerting.report(
            kind=alerting.TAG_SILENT,
            subject=f"tag:{tag.tag_id}",
            title=f"{location.asset.name}: tag silent",
            severity="warning",
            started_at=location.last_seen_at,
            message=(
                f"Tag {tag.tag_id} of {location.asset.name} unheard since "
                f"{location.last_seen_at:%Y-%m-%d %H:%M} UTC; last confirmed in {where}"
            ),
            details={"asset_id": location.asset_id, "tag": tag.tag_id},
        )
        count += 1
    return count


def _open_subjects(kind: str) -> dict[str, Alert]:
    return {
        a.subject: a
        for a in Alert.objects.filter(source=alerting.SOURCE, kind=kind).exclude(
            state=AlertState.RESOLVED
        )
    }


def check_device_health(now: datetime | None = None) -> dict[str, int]:
    """The periodic reconciliation: raise what the presence hooks missed, clear what recovered
    (a gateway heard again, a tag heard again, a battery replaced), raise low batteries."""
    now = now or timezone.now()
    counts = {"gateways_offline": 0, "tags_silent": 0, "batteries_low": 0, "cleared": 0}
    open_gateways = _open_subjects(alerting.GATEWAY_OFFLINE)
    offline = set(
        ScannerHealth.objects.filter(online=False, scanner__is_active=True).values_list(
            "scanner_id", flat=True
        )
    )
    missed = [pk for pk in offline if f"scanner:{pk}" not in open_gateways]
    counts["gateways_offline"] = gateways_offline(missed, now) if missed else 0
    for subject in open_gateways:
        if int(subject.split(":", 1)[1]) not in offline:
            alerting.clear(
                kind=alerting.GATEWAY_OFFLINE, subject=subject, ended_at=now, note="heard again"
            )
            counts["cleared"] += 1

    open_tags = _open_subjects(alerting.TAG_SILENT)
    missing = dict(
        AssetLocation.objects.filter(presence=Presence.MISSING, asset__tag__isnull=False)
        .exclude(asset__status=AssetStatus.RETIRED)
        .values_list("asset__tag__tag_id", "asset_id")
    )
    missed = [asset for tag, asset in missing.items() if f"tag:{tag}" not in open_tags]
    counts["tags_silent"] = tags_silent(missed, now) if missed else 0
    for subject in open_tags:
        if subject.split(":", 1)[1] not in missing:
            alerting.clear(
                kind=alerting.TAG_SILENT, subject=subject, ended_at=now, note="tag heard again"
            )
            counts["cleared"] += 1

    low = setting("BATTERY_LOW_PCT")
    open_batteries = _open_subjects(alerting.BATTERY_LOW)
    for tag in Tag.objects.filter(battery_pct__isnull=False).select_related("asset"):
        subject = f"tag:{tag.tag_id}"
        if tag.battery_pct < low:
            name = tag.asset.name if tag.asset_id else tag.tag_id
            alerting.report(
                kind=alerting.BATTERY_LOW,
                subject=subject,
                title=f"{name}: tag battery low",
                severity="info",
                started_at=now,
                value=tag.battery_pct,
                unit="%",
                message=f"Tag {tag.tag_id} battery at {tag.battery_pct:g} % (below {low:g} %)",
                details={"tag": tag.tag_id, "asset_id": tag.asset_id},
            )
            counts["batteries_low"] += subject not in open_batteries
        elif subject in open_batteries:
            alerting.clear(
                kind=alerting.BATTERY_LOW,
                subject=subject,
                ended_at=now,
                note=f"battery at {tag.battery_pct:g} %",
            )
            counts["cleared"] += 1
    return counts


def battery_history(tag: Tag, days: int = 365) -> list[dict]:
    since = timezone.localdate() - timedelta(days=days)
    return list(tag.battery_samples.filter(day__gte=since).values("day", "battery_pct", "min_pct"))
