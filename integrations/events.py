"""Location events for outbound webhooks: asset entered a zone, left a zone, went missing.

The pipeline and the presence check call in here (tracking.pipeline `_persist`,
tracking.presence `mark_missing_assets`). `emit` writes one WebhookDelivery row per interested
receiver in the caller's transaction (so an event exists exactly when the change it reports was
committed) and queues the deliveries once that transaction commits. With no active webhook the
hooks cost nothing but a cached lookup.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from hospital import prepared
from integrations.models import EventType, Webhook, WebhookDelivery

log = logging.getLogger(__name__)
ACTIVE_CACHE_S = 5.0
_active: tuple[float, list[tuple[int, list[str]]]] = (0.0, [])


def _receivers() -> list[tuple[int, list[str]]]:
    """(webhook id, event types) of the active webhooks, cached briefly per process."""
    global _active
    now = time.monotonic()
    if _active[0] <= now:
        receivers = list(Webhook.objects.filter(is_active=True).values_list("pk", "event_types"))
        _active = (now + ACTIVE_CACHE_S, receivers)
    return _active[1]


def forget_receivers() -> None:
    global _active
    _active = (0.0, [])


def _webhooks_changed(**kwargs) -> None:
    forget_receivers()


post_save.connect(_webhooks_changed, sender=Webhook, dispatch_uid="webhook-receivers-saved")
post_delete.connect(_webhooks_changed, sender=Webhook, dispatch_uid="webhook-receivers-deleted")


def wanted(event_type: str) -> bool:
    return any(event_type in (types or []) for _, types in _receivers())


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def emit(
    event_type: str, payload: dict, occurred_at: datetime | None = None, *, only=None
) -> list[int]:
    """Record the event for every active receiver that wants it (or, with `only`, for those of
    the given webhook ids that want it); returns the delivery ids."""
    targets = [
        pk
        for pk, types in _receivers()
        if event_type in (types or []) and (only is None or pk in only)
    ]
    if not targets:
        return []
    event_id = uuid.uuid4()
    document = {
        "id": str(event_id),
        "type": event_type,
        "occurred_at": _iso(occurred_at),
        "data": payload,
    }
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                webhook_id=pk, event_id=event_id, event_type=event_type, payload=document
            )
            for pk in targets
        ]
    )
    ids = [delivery.pk for delivery in deliveries]

    def queue() -> None:
        from integrations.tasks import deliver_webhook

        for pk in ids:
            deliver_webhook.delay(pk)

    transaction.on_commit(queue)
    return ids


def _asset_payloads(asset_ids) -> dict[int, dict]:
    from tracking.models import Asset

    rows = Asset.objects.filter(pk__in=asset_ids).values(
        "pk", "name", "asset_type__slug", "department__name", "status", "tag__tag_id"
    )
    return {
        row["pk"]: {
            "id": row["pk"],
            "name": row["name"],
            "type": row["asset_type__slug"],
            "department": row["department__name"],
            "status": row["status"],
            "tag": row["tag__tag_id"],
        }
        for row in rows
    }


def _zone_payloads(zone_ids) -> dict[int, dict]:
    from hospital.models import Zone

    rows = Zone.objects.filter(pk__in=zone_ids).values(
        "pk", "name", "kind", "floor_id", "floor__name", "floor__building__name"
    )
    return {
        row["pk"]: {
            "id": row["pk"],
            "name": row["name"],
            "kind": row["kind"],
            "floor_id": row["floor_id"],
            "floor": row["floor__name"],
            "building": row["floor__building__name"],
        }
        for row in rows
    }


@dataclass(frozen=True)
class ZoneChange:
    """One asset's move as the stay listeners see it: the stay it left (if any) and the stay it
    is in now (if any); zone ids None mean no zone."""

    asset_id: int
    left_zone_id: int | None
    left_at: datetime | None
    entered_zone_id: int | None
    entered_at: datetime | None
    stay_id: int | None


#: Other parts of the product that react to zone changes (workflows: status rules, geofences,
#: par levels), as (listener, wants) pairs: `wants()` says cheaply whether the listener has any
#: work configured; `listener(changes)` runs inside the pipeline's transaction.
_stay_listeners: list[tuple[Callable[[list[ZoneChange]], None], Callable[[], bool]]] = []


def add_stay_listener(listener, wants=lambda: True) -> None:
    """Register a zone-change listener once (a second registration of the same one is ignored)."""
    if all(existing is not listener for existing, _ in _stay_listeners):
        _stay_listeners.append((listener, wants))


def _tell_listeners(listeners, before: dict, after: dict, left_at: dict) -> None:
    """Each listener in its own savepoint: a failing listener is logged and rolled back alone,
    never failing the pipeline's write of the positions."""
    changes = []
    for asset in sorted(set(before) | set(after)):
        old, new = before.get(asset), after.get(asset)
        if old == new:
            continue
        changes.append(
            ZoneChange(
                asset_id=asset,
                left_zone_id=old[1] if old else None,
                left_at=left_at.get(old[0]) if old else None,
                entered_zone_id=new[1] if new else None,
                entered_at=new[2] if new else None,
                stay_id=new[0] if new else None,
            )
        )
    if not changes:
        return
    for listener in listeners:
        try:
            with transaction.atomic():
                listener(changes)
        except Exception:
            log.exception("zone-change listener %r failed", listener)


class StayWatch:
    """Compares the open zone stays of some assets before and after the pipeline writes them,
    and emits entered/left events for the differences (writes are idempotent, so a replayed
    chunk finds no difference and emits nothing twice)."""

    def __init__(self, asset_ids):
        self.asset_ids = sorted(set(asset_ids))
        self.webhooks = bool(self.asset_ids) and (
            wanted(EventType.ZONE_ENTERED) or wanted(EventType.ZONE_LEFT)
        )
        self.listeners = (
            [listener for listener, wants in _stay_listeners if wants()] if self.asset_ids else []
        )
        self.active = self.webhooks or bool(self.listeners)
        self.before = self._open_stays() if self.active else {}

    def _open_stays(self) -> dict[int, tuple[int, int, datetime]]:
        """Read twice per pipeline chunk: on PostgreSQL one prepared statement (compiling the
        ORM query each time was a tenth of a worker's CPU at moderate load)."""
        from tracking.models import ZoneStay

        if connection.vendor == "postgresql":
            rows = prepared.rows(
                f"SELECT id, asset_id, zone_id, entered_at FROM {prepared.table(ZoneStay)} "  # noqa: S608  # nosec B608
                "WHERE asset_id = ANY(%s::bigint[]) AND left_at IS NULL",
                [self.asset_ids],
            )
        else:
            rows = ZoneStay.objects.filter(
                asset_id__in=self.asset_ids, left_at__isnull=True
            ).values_list("pk", "asset_id", "zone_id", "entered_at")
        return {asset: (pk, zone, entered) for pk, asset, zone, entered in rows}

    @staticmethod
    def _left_at(stay_ids: list[int]) -> dict[int, datetime]:
        """When the stays just closed were left; prepared on PostgreSQL like `_open_stays`."""
        from tracking.models import ZoneStay

        if not stay_ids:
            return {}
        if connection.vendor == "postgresql":
            rows = prepared.rows(
                f"SELECT id, left_at FROM {prepared.table(ZoneStay)} "  # noqa: S608  # nosec B608
                "WHERE id = ANY(%s::bigint[])",
                [stay_ids],
            )
        else:
            rows = ZoneStay.objects.filter(pk__in=stay_ids).values_list("pk", "left_at")
        return dict(rows)

    def emit_changes(self) -> int:
        if not self.active:
            return 0
        after = self._open_stays()
        left, entered = [], []
        for asset in self.asset_ids:
            old, new = self.before.get(asset), after.get(asset)
            if old == new:
                continue
            if old is not None:
                left.append((asset, old))
            if new is not None:
                entered.append((asset, new))
        if not left and not entered:
            return 0
        left_at = self._left_at([stay[0] for _, stay in left])
        if self.listeners:
            _tell_listeners(self.listeners, self.before, after, left_at)
        if not self.webhooks:
            return 0
        assets = _asset_payloads(self.asset_ids)
        zones = _zone_payloads({stay[1] for _, stay in left + entered})
        emitted = 0
        for asset, (stay_pk, zone, entered_at) in left:
            moment = left_at.get(stay_pk)
            emit(
                EventType.ZONE_LEFT,
                {
                    "asset": assets.get(asset),
                    "zone": zones.get(zone),
                    "entered_at": _iso(entered_at),
                    "left_at": _iso(moment),
                },
                moment,
            )
            emitted += 1
        for asset, (_stay_pk, zone, entered_at) in entered:
            emit(
                EventType.ZONE_ENTERED,
                {
                    "asset": assets.get(asset),
                    "zone": zones.get(zone),
                    "entered_at": _iso(entered_at),
                },
                entered_at,
            )
            emitted += 1
        return emitted


def assets_missing(asset_ids: list[int]) -> int:
    """Emit asset.missing for assets just marked missing (with their last zone)."""
    if not asset_ids or not wanted(EventType.ASSET_MISSING):
        return 0
    from tracking.models import AssetLocation

    rows = list(
        AssetLocation.objects.filter(asset_id__in=asset_ids).values_list(
            "asset_id", "zone_id", "last_seen_at"
        )
    )
    assets = _asset_payloads(asset_ids)
    zones = _zone_payloads({zone for _, zone, _ in rows if zone is not None})
    now = timezone.now()
    for asset, zone, last_seen in rows:
        emit(
            EventType.ASSET_MISSING,
            {
                "asset": assets.get(asset),
                "last_zone": zones.get(zone),
                "last_seen_at": _iso(last_seen),
            },
            now,
        )
    return len(rows)
