"""Periodic checks: assets unheard for too long are missing, silent scanners are offline."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone

from integrations import events
from tracking import activity
from tracking.models import AssetLocation, PositionSample, Presence, ScannerHealth

log = logging.getLogger(__name__)
#: Sent (robustly: a failing receiver never fails the check) after assets were marked missing
#: (`asset_ids`) or scanners offline (`scanner_ids`); workflows raises device-health alerts.
assets_marked_missing = Signal()
scanners_marked_offline = Signal()


def mark_missing_assets(now=None) -> int:
    """Flag assets whose newest reading is older than ASSET_MISSING_AFTER_S; returns how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.WARDWISE["ASSET_MISSING_AFTER_S"])
    missing = list(
        AssetLocation.objects.filter(presence=Presence.PRESENT, last_seen_at__lt=cutoff)
        .select_related("asset")
        .values_list("asset_id", "floor_id", "asset__status")
    )
    if not missing:
        return 0
    AssetLocation.objects.filter(asset_id__in=[m[0] for m in missing]).update(
        presence=Presence.MISSING
    )
    from tracking.live import publish_status_change

    for asset_id, floor_id, status in missing:
        publish_status_change(asset_id, floor_id, status, Presence.MISSING)
    events.assets_missing([m[0] for m in missing])
    assets_marked_missing.send_robust(sender=AssetLocation, asset_ids=[m[0] for m in missing])
    return len(missing)


def mark_offline_scanners(now=None) -> int:
    """Scanners with neither a batch nor a heartbeat for SCANNER_OFFLINE_AFTER_S go offline."""
    activity.write_all()
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.WARDWISE["SCANNER_OFFLINE_AFTER_S"])
    recent = Q(last_batch_at__gte=cutoff) | Q(last_heartbeat_at__gte=cutoff)
    stale = list(
        ScannerHealth.objects.filter(online=True).exclude(recent).values_list("pk", "scanner_id")
    )
    if not stale:
        return 0
    count = ScannerHealth.objects.filter(pk__in=[pk for pk, _ in stale], online=True).update(
        online=False
    )
    scanners_marked_offline.send_robust(
        sender=ScannerHealth, scanner_ids=[scanner for _, scanner in stale]
    )
    try:
        _push_quality_of_silenced_zones({scanner for _, scanner in stale}, now)
    except Exception:
        log.exception("location quality of the offline scanners' zones not pushed")
    return count


def _push_quality_of_silenced_zones(scanner_ids: set[int], now) -> None:
    """Assets in zones whose covering scanners are now all offline are no longer confirmed
    there: tell the floor maps at once rather than at their next position (which may never
    come if only those scanners heard them)."""
    from tracking import live, quality

    judge = quality.judge(now)
    coverage = quality.zone_coverage() if judge.offline_zones else {}
    zones = [zone for zone in judge.offline_zones if coverage.get(zone, frozenset()) & scanner_ids]
    if not zones:
        return
    live.publish_quality_changes(
        AssetLocation.objects.filter(zone_id__in=zones, presence=Presence.PRESENT), judge
    )


def prune_position_history(now=None) -> int:
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.WARDWISE["POSITION_HISTORY_DAYS"])
    deleted, _ = PositionSample.objects.filter(ts__lt=cutoff).delete()
    return deleted
