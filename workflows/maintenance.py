"""Preventive maintenance for biomed: next due date per asset and schedule, due and overdue
lists, maintenance alerts through the shared lifecycle, work orders, recall campaigns, and "due
near me" for a technician's floor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from alerts.models import Alert, AlertState
from tracking.models import Asset, AssetLocation, AssetStatus
from workflows import alerting, schedules
from workflows.config import setting
from workflows.models import (
    MaintenanceDue,
    MaintenanceSchedule,
    RecallCampaign,
    RecallUnit,
    WorkOrder,
)

OPEN_STATUSES = (WorkOrder.Status.OPEN, WorkOrder.Status.IN_PROGRESS, WorkOrder.Status.ON_HOLD)


@dataclass(frozen=True)
class DueItem:
    asset_id: int
    schedule_id: int
    due_on: date
    state: str


def due_items(today: date | None = None, asset_ids=None) -> list[DueItem]:
    """The next due date of every (asset, schedule) pair, retired assets left out."""
    today = today or timezone.localdate()
    soon = setting("MAINTENANCE_SOON_DAYS")
    active = list(MaintenanceSchedule.objects.filter(is_active=True))
    if not active:
        return []
    assets = Asset.objects.exclude(status=AssetStatus.RETIRED)
    if asset_ids is not None:
        assets = assets.filter(pk__in=list(asset_ids))
    per_type: dict[int, list[int]] = {}
    for pk, type_id in assets.values_list("pk", "asset_type_id"):
        per_type.setdefault(type_id, []).append(pk)
    wanted = set().union(*per_type.values()) if per_type else set()
    done = {
        (row["asset_id"], row["schedule_id"]): row["last"]
        for row in WorkOrder.objects.filter(
            status=WorkOrder.Status.DONE, schedule__isnull=False, asset_id__in=wanted
        )
        .values("asset_id", "schedule_id")
        .annotate(last=Max("completed_at"))
    }
    items = []
    for schedule in active:
        targets = (
            [schedule.asset_id]
            if schedule.asset_id and schedule.asset_id in wanted
            else per_type.get(schedule.asset_type_id, [])
            if schedule.asset_type_id
            else []
        )
        for asset_id in targets:
            last = done.get((asset_id, schedule.pk))
            due = schedules.next_due(
                starts_on=schedule.starts_on,
                last_done=timezone.localdate(last) if last else None,
                interval_days=schedule.interval_days,
                months=tuple(schedule.months or ()),
                day_of_month=schedule.day_of_month,
            )
            items.append(DueItem(asset_id, schedule.pk, due, schedules.due_state(due, today, soon)))
    return items


@transaction.atomic
def refresh_maintenance_due(today: date | None = None, asset_ids=None) -> int:
    """Store each asset's earliest due date (Asset.maintenance.due_on, the UI's
    `maintenance_due`) and open a preventive work order for what falls due soon and has none."""
    today = today or timezone.localdate()
    items = due_items(today, asset_ids)
    earliest: dict[int, DueItem] = {}
    for item in items:
        if item.asset_id not in earliest or item.due_on < earliest[item.asset_id].due_on:
            earliest[item.asset_id] = item
    stale = MaintenanceDue.objects.exclude(asset_id__in=list(earliest))
    if asset_ids is not None:
        stale = stale.filter(asset_id__in=list(asset_ids))
    stale.delete()
    for asset_id, item in earliest.items():
        MaintenanceDue.objects.update_or_create(
            asset_id=asset_id, defaults={"due_on": item.due_on, "schedule_id": item.schedule_id}
        )
    open_orders = set(
        WorkOrder.objects.filter(status__in=OPEN_STATUSES, schedule__isnull=False).values_list(
            "asset_id", "schedule_id"
        )
    )
    names = dict(MaintenanceSchedule.objects.values_list("pk", "name"))
    for item in items:
        if item.state == schedules.OK or (item.asset_id, item.schedule_id) in open_orders:
            continue
        WorkOrder.objects.create(
            asset_id=item.asset_id,
            schedule_id=item.schedule_id,
            kind=WorkOrder.Kind.PREVENTIVE,
            title=names[item.schedule_id],
            due_on=item.due_on,
        )
    return len(earliest)


def _locations(asset_ids) -> dict[int, dict]:
    rows = AssetLocation.objects.filter(asset_id__in=list(asset_ids)).values(
        "asset_id",
        "floor_id",
        "floor__name",
        "zone_id",
        "zone__name",
        "presence",
        "last_seen_at",
    )
    return {
        row["asset_id"]: {
            "floor_id": row["floor_id"],
            "floor": row["floor__name"],
            "zone_id": row["zone_id"],
            "zone": row["zone__name"],
            "presence": row["presence"],
            "last_seen": row["last_seen_at"],
        }
        for row in rows
    }


def due_list(
    *, today: date | None = None, within_days: int | None = None, floor_id: int | None = None
) -> list[dict]:
    """Due and overdue maintenance (due within `within_days`, default the "soon" window),
    overdue first, each with where the asset is now. With `floor_id`: only assets located on
    that floor ("maintenance due near me")."""
    today = today or timezone.localdate()
    horizon = today + timedelta(
        days=setting("MAINTENANCE_SOON_DAYS") if within_days is None else within_days
    )
    items = [item for item in due_items(today) if item.due_on <= horizon]
    locations = _locations({item.asset_id for item in items})
    if floor_id is not None:
        items = [i for i in items if (locations.get(i.asset_id) or {}).get("floor_id") == floor_id]
    assets = {
        a.pk: a
        for a in Asset.objects.filter(pk__in={i.asset_id for i in items}).select_related(
            "asset_type"
        )
    }
    names = dict(MaintenanceSchedule.objects.values_list("pk", "name"))
    orders = {
        (asset, schedule): pk
        for pk, asset, schedule in WorkOrder.objects.filter(
            status__in=OPEN_STATUSES, schedule__isnull=False
        ).values_list("pk", "asset_id", "schedule_id")
    }
    alerts = _open_maintenance_alerts({item.asset_id for item in items})
    rows = [
        {
            "asset_id": item.asset_id,
            "asset": assets[item.asset_id].name,
            "asset_type": assets[item.asset_id].asset_type.slug,
            "serial_number": assets[item.asset_id].serial_number,
            "schedule_id": item.schedule_id,
            "schedule": names[item.schedule_id],
            "due_on": item.due_on,
            "state": item.state,
            "days_overdue": max((today - item.due_on).days, 0),
            "work_order_id": orders.get((item.asset_id, item.schedule_id)),
            "alert_id": getattr(
                alerts.get(alert_subject(item.asset_id, item.schedule_id)), "pk", None
            ),
            "location": locations.get(item.asset_id),
        }
        for item in items
    ]
    rows.sort(key=lambda r: (r["due_on"], (r["location"] or {}).get("zone") or "", r["asset"]))
    return rows


# --- maintenance alerts ----------------------------------------------------------------------


def alert_subject(asset_id: int, schedule_id: int) -> str:
    return f"maintenance:{schedule_id}:asset:{asset_id}"


def _subject_ids(subject: str) -> tuple[int, int] | None:
    """(asset id, schedule id) of a maintenance alert's subject."""
    parts = subject.split(":")
    if len(parts) != 4 or parts[0] != "maintenance" or parts[2] != "asset":
        return None
    try:
        return int(parts[3]), int(parts[1])
    except ValueError:
        return None


def _open_maintenance_alerts(asset_ids=None) -> dict[str, Alert]:
    alerts = Alert.objects.filter(source=alerting.SOURCE, kind=alerting.MAINTENANCE_DUE).exclude(
        state=AlertState.RESOLVED
    )
    wanted = None if asset_ids is None else set(asset_ids)
    return {
        alert.subject: alert
        for alert in alerts
        if wanted is None or (_subject_ids(alert.subject) or (None,))[0] in wanted
    }


def _why_over(alert: Alert, schedule: MaintenanceSchedule | None, due_now: date | None) -> str:
    """The resolution note of a maintenance alert whose incident is over."""
    ids = _subject_ids(alert.subject)
    if ids is not None:
        order = (
            WorkOrder.objects.filter(
                asset_id=ids[0],
                schedule_id=ids[1],
                status=WorkOrder.Status.DONE,
                completed_at__gte=alert.started_at,
            )
            .order_by("-completed_at")
            .first()
        )
        if order is not None:
            return (
                f"maintenance done: work order #{order.pk} completed "
                f"{timezone.localtime(order.completed_at):%Y-%m-%d %H:%M}"
            )
    if schedule is None or not schedule.raise_alerts or due_now is None:
        return "the schedule no longer applies to the asset (or its alerts were turned off)"
    return f"no longer due: the schedule now has it due on {due_now:%Y-%m-%d}"


def _alert_message(asset_name, schedule_name, item, level, location, order_id) -> str:
    if level.state == schedules.ALERT_OVERDUE:
        days = level.days_overdue
        text = (
            f"{schedule_name} for {asset_name} is {days} day{'s' if days != 1 else ''} "
            f"overdue (due {item.due_on:%Y-%m-%d})"
        )
    else:
        ahead = -level.days_overdue
        when = "today" if ahead == 0 else f"in {ahead} day{'s' if ahead != 1 else ''}"
        text = f"{schedule_name} for {asset_name} is due {when} ({item.due_on:%Y-%m-%d})"
    if location and location.get("zone"):
        text += f"; now in {location['zone']} ({location['floor']})"
    elif location and location.get("floor"):
        text += f"; last located on {location['floor']}"
    else:
        text += "; location unknown"
    if order_id:
        text += f"; work order #{order_id}"
    return text


def check_maintenance_alerts(
    today: date | None = None, asset_ids=None, now: datetime | None = None
) -> dict[str, int]:
    """Raise, update and resolve maintenance alerts through the shared lifecycle. One alert per
    asset, schedule and due date (the incident): opened when it falls due (or `alert_days_before`
    earlier), updated as the days pass and it turns overdue (severity rising), resolved
    automatically when the due date moves on (a completed work order) or the schedule no longer
    applies. Rechecking an unchanged day changes nothing. Returns how many are open, opened now
    and resolved now."""
    today = today or timezone.localdate()
    now = now or timezone.now()
    active = {
        s.pk: s for s in MaintenanceSchedule.objects.filter(is_active=True).select_related("policy")
    }
    items = due_items(today, asset_ids)
    due_now = {(i.asset_id, i.schedule_id): i.due_on for i in items}
    wanted: dict[str, tuple[DueItem, schedules.MaintenanceAlertLevel]] = {}
    for item in items:
        schedule = active[item.schedule_id]
        if not schedule.raise_alerts:
            continue
        level = schedules.maintenance_alert(
            item.due_on,
            today,
            days_before=schedule.alert_days_before,
            critical_after_days=schedule.critical_after_days,
        )
        if level is not None:
            wanted[alert_subject(item.asset_id, item.schedule_id)] = (item, level)

    counts = {"open": 0, "opened": 0, "resolved": 0}
    existing = _open_maintenance_alerts(asset_ids)
    for subject, alert in existing.items():
        target = wanted.get(subject)
        if target is not None and alert.details.get("due_on") == target[0].due_on.isoformat():
            continue
        ids = _subject_ids(subject)
        schedule = active.get(ids[1]) if ids else None
        alerting.clear(
            kind=alerting.MAINTENANCE_DUE,
            subject=subject,
            ended_at=now,
            note=_why_over(alert, schedule, due_now.get(ids) if ids else None),
        )
        existing[subject] = None
        counts["resolved"] += 1

    asset_ids_wanted = {item.asset_id for item, _ in wanted.values()}
    names = dict(Asset.objects.filter(pk__in=asset_ids_wanted).values_list("pk", "name"))
    locations = _locations(asset_ids_wanted)
    orders = {
        (asset, schedule): pk
        for pk, asset, schedule in WorkOrder.objects.filter(
            status__in=OPEN_STATUSES, schedule__isnull=False, asset_id__in=asset_ids_wanted
        ).values_list("pk", "asset_id", "schedule_id")
    }
    for subject, (item, level) in sorted(wanted.items()):
        schedule = active[item.schedule_id]
        order_id = orders.get((item.asset_id, item.schedule_id))
        start = item.due_on - timedelta(days=schedule.alert_days_before)
        started_at = min(timezone.make_aware(datetime.combine(start, time.min)), now)
        before = existing.get(subject)
        alerting.report(
            kind=alerting.MAINTENANCE_DUE,
            subject=subject,
            title=f"{names[item.asset_id]}: {schedule.name}",
            severity=level.severity,
            started_at=started_at,
            value=float(level.days_overdue),
            unit="d",
            message=_alert_message(
                names[item.asset_id],
                schedule.name,
                item,
                level,
                locations.get(item.asset_id),
                order_id,
            ),
            policy=schedule.policy,
            details={
                "asset_id": item.asset_id,
                "schedule_id": item.schedule_id,
                "due_on": item.due_on.isoformat(),
                "work_order_id": order_id,
            },
        )
        counts["open"] += 1
        counts["opened"] += before is None
    return counts


def recall_matches(campaign: RecallCampaign):
    """Assets of the campaign's model (and manufacturer, when given) in its serial range."""
    assets = Asset.objects.filter(model__iexact=campaign.model.strip())
    if campaign.manufacturer.strip():
        assets = assets.filter(manufacturer__iexact=campaign.manufacturer.strip())
    return [
        asset
        for asset in assets.order_by("name")
        if schedules.serial_in_range(
            asset.serial_number, campaign.serial_first, campaign.serial_last
        )
    ]


@transaction.atomic
def launch_recall(campaign: RecallCampaign) -> int:
    """Mark every affected unit and open its recall work order; running it again only adds
    units that now match (new assets registered since). Returns the units added."""
    known = set(campaign.units.values_list("asset_id", flat=True))
    added = 0
    for asset in recall_matches(campaign):
        if asset.pk in known:
            continue
        order = WorkOrder.objects.create(
            asset=asset,
            kind=WorkOrder.Kind.RECALL,
            recall=campaign,
            title=f"Recall {campaign.reference}: {campaign.title}",
            notes=campaign.description,
        )
        RecallUnit.objects.create(campaign=campaign, asset=asset, work_order=order)
        added += 1
    return added


def recall_units(campaign: RecallCampaign) -> list[dict]:
    """Every affected unit with its status, work order and where it is right now."""
    units = list(campaign.units.select_related("asset", "work_order").order_by("asset__name"))
    locations = _locations(u.asset_id for u in units)
    return [
        {
            "asset_id": unit.asset_id,
            "asset": unit.asset.name,
            "serial_number": unit.asset.serial_number,
            "status": unit.status,
            "work_order_id": unit.work_order_id,
            "work_order_status": unit.work_order.status if unit.work_order else None,
            "location": locations.get(unit.asset_id),
        }
        for unit in units
    ]


def work_order_changed(order: WorkOrder) -> None:
    """A finished recall work order remediates its unit; a finished preventive one moves the
    asset's next due date, which resolves its maintenance alert."""
    if order.status != WorkOrder.Status.DONE:
        return
    if order.recall_id:
        RecallUnit.objects.filter(Q(work_order=order) | Q(campaign_id=order.recall_id)).filter(
            asset_id=order.asset_id
        ).update(status=RecallUnit.Status.REMEDIATED)
    if order.schedule_id:
        asset_id = order.asset_id
        transaction.on_commit(lambda: refresh_and_alert(asset_ids=[asset_id]), robust=True)


def refresh_and_alert(asset_ids=None) -> int:
    """Due dates and work orders, then the alerts, for these assets (all: None). After a
    schedule changes or a preventive work order is finished."""
    count = refresh_maintenance_due(asset_ids=asset_ids)
    check_maintenance_alerts(asset_ids=asset_ids)
    return count
