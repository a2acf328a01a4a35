"""Asset status history and status changes.

Every change of `Asset.status` is a StatusChange row: the database writes it (the trigger of
workflows/triggers.py), whatever made the change. What Wardwise itself changes is then
attributed in the same transaction:

- `set_status` is the one function for changing the status of assets without saving them (admin
  bulk actions, scripts): the rows are updated, each change is attributed to the person, written
  to the audit trail, pushed to the floor map, and the par levels are re-checked;
- `apply_rule` is the same for a zone rule (attributed to the rule, its zone and stay);
- `record_manual_change` attributes a change made by saving the asset (status buttons, API,
  admin form, CSV import, site files; django-auditlog audits the save itself).

A change nobody attributed was made outside Wardwise workflows (a queryset `.update()`, SQL):
`reconcile_status_history`, run every minute, writes its audit entry, pushes it live and
re-checks par; it also compares each asset's status with its last history row, for changes that
bypassed the trigger (a restore or bulk load with triggers disabled)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from auditlog.context import auditlog_value
from auditlog.models import LogEntry
from django.db import transaction
from django.db.models import F, Max, OuterRef, Q, Subquery
from django.db.models.signals import pre_save
from django.utils import timezone

from tracking import live
from tracking.models import Asset, AssetLocation, AssetStatus
from workflows import rules
from workflows.models import StatusChange
from workflows.triggers import OUTSIDE_NOTE

Source = StatusChange.Source

#: A row the trigger wrote during an asset save outside a transaction is attributed right after
#: the UPDATE commits; the reconciliation leaves rows this young alone.
RECONCILE_AFTER_S = 10.0


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


def history_mark(asset_ids: Iterable[int]) -> int:
    """The newest history row of these assets: rows written after it belong to a change now."""
    return (
        StatusChange.objects.filter(asset_id__in=list(asset_ids)).aggregate(mark=Max("pk"))["mark"]
        or 0
    )


def _attribute(
    old_statuses: dict[int, str], new: str, mark: int, attribution: dict
) -> dict[int, StatusChange]:
    """Attribute the rows the trigger wrote for these changes (after `mark`); write the row
    where there is none (a database without the trigger). One row per asset and change. The
    time is Wardwise's clock (`at`), as for every other time utilisation compares it with."""
    written = {}
    for row in StatusChange.objects.filter(
        asset_id__in=list(old_statuses),
        pk__gt=mark,
        source=Source.OUTSIDE,
        needs_reconciling=True,
        new_status=new,
    ).order_by("pk"):
        if row.old_status == old_statuses[row.asset_id]:
            written[row.asset_id] = row
    fields = {"note": "", **attribution, "needs_reconciling": False}
    for row in written.values():
        for name, value in fields.items():
            setattr(row, name, value)
    StatusChange.objects.bulk_update(list(written.values()), list(fields))
    missing = [
        StatusChange(asset_id=asset_id, old_status=old, new_status=new, **fields)
        for asset_id, old in old_statuses.items()
        if asset_id not in written
    ]
    for row in StatusChange.objects.bulk_create(missing):
        written[row.asset_id] = row
    return written


def _publish(asset_ids: list[int], status: str | None = None) -> None:
    """Push each asset's status (the given one, else its current one) to its floor's map once
    committed."""
    rows = AssetLocation.objects.filter(asset_id__in=asset_ids).values_list(
        "asset_id", "floor_id", "presence", "asset__status"
    )
    for asset_id, floor_id, presence, current in rows:
        shown = status or current
        transaction.on_commit(
            lambda a=asset_id, f=floor_id, s=shown, p=presence: live.publish_status_change(
                a, f, s, p
            ),
            robust=True,
        )


def _change(
    assets: list[Asset], new: str, *, audit: dict, at: datetime | None = None, **attribution
) -> list[StatusChange]:
    """Set `new` on locked assets whose status differs, attribute each change, audit it, push
    it live and re-check par. The caller holds the transaction and the row locks."""
    old = {asset.pk: asset.status for asset in assets}
    mark = history_mark(old)
    Asset.objects.filter(pk__in=list(old)).update(status=new)
    if at is not None:
        attribution["at"] = at
    written = _attribute(old, new, mark, attribution)
    changes = []
    for asset in assets:
        change = written[asset.pk]
        LogEntry.objects.log_create(
            asset,
            action=LogEntry.Action.UPDATE,
            changes={"status": [old[asset.pk], new]},
            actor=attribution.get("actor"),
            additional_data={**audit, "status_change_id": change.pk, "note": change.note},
        )
        asset.status = new
        changes.append(change)
    _publish(list(old), new)
    after_change({asset.asset_type_id for asset in assets})
    return changes


def set_status(
    asset_ids: Iterable[int], status: str, *, actor=None, note: str = ""
) -> list[StatusChange]:
    """Change the status of many assets at once (admin bulk actions, scripts): the one way to do
    it without saving each asset. Assets already in `status` are left alone. Returns the
    changes made, each in the history and the audit trail with `actor` and `note`."""
    if status not in AssetStatus.values:
        raise ValueError(f"unknown status {status!r}")
    with transaction.atomic():
        assets = list(
            Asset.objects.select_for_update()
            .filter(pk__in=list(asset_ids))
            .exclude(status=status)
            .order_by("pk")
        )
        if not assets:
            return []
        return _change(
            assets,
            status,
            audit={"source": Source.BULK.value},
            at=timezone.now(),
            source=Source.BULK,
            actor=actor,
            note=note[:300],
        )


def record_manual_change(asset: Asset, old: str, new: str, mark: int = 0) -> StatusChange:
    """A change made by saving the asset (a person in the UI, API or admin; an import). The
    save's own audit entry comes from django-auditlog."""
    attribution = {"source": Source.SAVED, "actor": current_actor(), "at": timezone.now()}
    change = _attribute({asset.pk: old}, new, mark, attribution)[asset.pk]
    after_change({asset.asset_type_id})
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
    localization engine is not rebuilt), and the audit entry names the rule in its
    `additional_data`."""
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
        where = f" in {zone_name}" if zone_name else ""
        note = f"zone rule “{spec.name}”: {asset.status} → {spec.to_status}{where}"
        (change,) = _change(
            [asset],
            spec.to_status,
            audit={
                "source": Source.RULE.value,
                "rule_id": spec.id,
                "rule": spec.name,
                "zone_id": facts.zone_id,
            },
            at=at,
            source=Source.RULE,
            rule_id=spec.id,
            rule_name=spec.name,
            zone_id=facts.zone_id,
            stay_id=stay_id,
            note=note,
        )
    return change


def after_change(asset_type_ids: Iterable[int]) -> None:
    """Par levels of the types may have moved: check them once the change is committed."""
    from workflows import par

    types = set(asset_type_ids)
    if types:
        transaction.on_commit(lambda: par.check_par_levels(types), robust=True)


# --- changes made outside Wardwise workflows -------------------------------------------------


def _record_drift(now: datetime) -> list[int]:
    """Assets whose status differs from their last history row (a change that bypassed the
    trigger): record the difference now, as a change made outside Wardwise workflows. Assets
    with no history at all have nothing to compare with."""
    last = StatusChange.objects.filter(asset_id=OuterRef("pk")).order_by("-pk")

    def drifted(assets):
        return (
            assets.annotate(
                last_status=Subquery(last.values("new_status")[:1]),
                last_at=Subquery(last.values("at")[:1]),
            )
            .exclude(last_status=None)
            .exclude(status=F("last_status"))
        )

    candidates = list(drifted(Asset.objects.all()).values_list("pk", flat=True))
    if not candidates:
        return []
    with transaction.atomic():
        locked = Asset.objects.select_for_update().filter(pk__in=candidates).order_by("pk")
        list(locked.values_list("pk", flat=True))
        rows = [
            StatusChange(
                asset_id=pk,
                at=now,
                old_status=previous,
                new_status=status,
                source=Source.OUTSIDE,
                needs_reconciling=True,
                note=(
                    f"{OUTSIDE_NOTE}, found by the reconciliation: changed between "
                    f"{since:%Y-%m-%d %H:%M} and {now:%Y-%m-%d %H:%M} UTC"
                ),
            )
            for pk, status, previous, since in drifted(
                Asset.objects.filter(pk__in=candidates)
            ).values_list("pk", "status", "last_status", "last_at")
        ]
        return [row.pk for row in StatusChange.objects.bulk_create(rows)]


def reconcile_status_history(now: datetime | None = None) -> dict[str, int]:
    """The periodic reconciliation (every minute): record drift, then give every change made
    outside Wardwise workflows its audit entry (no actor; `additional_data.source` "outside"),
    push the assets' current status to the floor map and re-check their types' par levels."""
    now = now or timezone.now()
    found = _record_drift(now)
    settled_before = now - timedelta(seconds=RECONCILE_AFTER_S)
    with transaction.atomic():
        rows = list(
            StatusChange.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(Q(at__lte=settled_before) | Q(pk__in=found), needs_reconciling=True)
            .select_related("asset")
            .order_by("pk")
        )
        for row in rows:
            LogEntry.objects.log_create(
                row.asset,
                action=LogEntry.Action.UPDATE,
                changes={"status": [row.old_status, row.new_status]},
                actor=None,
                additional_data={
                    "source": Source.OUTSIDE.value,
                    "status_change_id": row.pk,
                    "note": row.note,
                    "changed_at": row.at.isoformat(),
                },
            )
        StatusChange.objects.filter(pk__in=[row.pk for row in rows]).update(needs_reconciling=False)
        _publish(sorted({row.asset_id for row in rows}))
        after_change({row.asset.asset_type_id for row in rows})
    return {"drift": len(found), "audited": len(rows)}
