"""Asset status history and automatic changes. Every change (a person's or a rule's) becomes a
StatusChange row, the history utilisation is computed from; a rule's change is also written to
django-auditlog with the rule named, and pushed to the floor map."""

from __future__ import annotations

from datetime import datetime

from auditlog.context import auditlog_value
from auditlog.models import LogEntry
from django.db import transaction
from django.db.models.signals import pre_save
from django.utils import timezone

from tracking import live
from tracking.models import Asset, AssetLocation
from workflows import rules
from workflows.models import StatusChange


def current_actor():
    """The signed-in person the auditlog middleware saw for this request, if any. The middleware
    leaves its context behind after the request and only disconnects its receiver, so the
    context counts only while that receiver is still connected (we are inside the request)."""
    context = auditlog_value.get(None) or {}
    duid = context.get("signal_duid")
    if duid is None or all(key[0] != duid for key, *_ in pre_save.receivers):
        return None
    actor = context.get("actor")
    return actor if getattr(actor, "is_authenticated", False) and hasattr(actor, "pk") else None


def record_manual_change(asset: Asset, old: str, new: str) -> StatusChange:
    """A change made by saving the asset (a person in the UI, API or admin; an import)."""
    change = StatusChange.objects.create(
        asset=asset, old_status=old, new_status=new, actor=current_actor()
    )
    _after_change(asset.asset_type_id)
    return change


def apply_rule(
    asset_id: int,
    spec: rules.ZoneRuleSpec,
    facts: rules.AssetFacts,
    *,
    trigger: str,
    stay_id: int | None,
    at: datetime | None = None,
    zone_name: str = "",
) -> StatusChange | None:
    """Change the asset's status as the rule says, if it still applies to the locked row.

    The row is updated with `.update()` (no save signals: a status is not site geometry, so the
    localization engine is not rebuilt), and the audit entry is written explicitly, naming the
    rule in its `additional_data`."""
    now = timezone.now()
    at = min(at or now, now)
    with transaction.atomic():
        asset = Asset.objects.select_for_update().filter(pk=asset_id).first()
        if asset is None:
            return None
        locked = rules.AssetFacts(
            status=asset.status,
            asset_type_id=asset.asset_type_id,
            zone_id=facts.zone_id,
            zone_kind=facts.zone_kind,
            dwell_s=facts.dwell_s,
            fired=facts.fired,
        )
        if not rules.matches(spec, locked, trigger):
            return None
        old = asset.status
        Asset.objects.filter(pk=asset_id).update(status=spec.to_status)
        asset.status = spec.to_status
        where = f" in {zone_name}" if zone_name else ""
        note = f"zone rule “{spec.name}”: {old} → {spec.to_status}{where}"
        change = StatusChange.objects.create(
            asset=asset,
            at=at,
            old_status=old,
            new_status=spec.to_status,
            rule_id=spec.id,
            rule_name=spec.name,
            zone_id=facts.zone_id,
            stay_id=stay_id,
            note=note,
        )
        LogEntry.objects.log_create(
            asset,
            action=LogEntry.Action.UPDATE,
            changes={"status": [old, spec.to_status]},
            additional_data={
                "source": "zone-rule",
                "rule_id": spec.id,
                "rule": spec.name,
                "zone_id": facts.zone_id,
                "status_change_id": change.pk,
                "note": note,
            },
        )
        location = AssetLocation.objects.filter(asset_id=asset_id).values_list(
            "floor_id", "presence"
        )
        placed = location.first()
        if placed is not None:
            floor_id, presence = placed
            transaction.on_commit(
                lambda: live.publish_status_change(asset_id, floor_id, spec.to_status, presence),
                robust=True,
            )
        _after_change(asset.asset_type_id)
    return change


def _after_change(asset_type_id: int) -> None:
    """Par levels of the type may have moved: check them once the change is committed."""
    from workflows import par

    transaction.on_commit(lambda: par.check_par_levels([asset_type_id]), robust=True)
