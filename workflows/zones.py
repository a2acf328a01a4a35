"""What happens when assets change zones (called by the pipeline through the zone-change hook
in integrations.events) and when they have stayed long enough (the periodic dwell sweep):
zone rules change statuses, geofences raise or clear alerts, par levels are re-checked."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from alerts.models import EscalationPolicy
from hospital import prepared
from hospital.models import Floor, Zone
from tracking.models import Asset, AssetLocation, Presence, ZoneStay
from workflows import alerting, geofence, rules
from workflows.config import configuration
from workflows.models import StatusChange
from workflows.status import apply_rule

log = logging.getLogger("wardwise.workflows")


def places(zone_ids) -> dict[int, tuple[geofence.Place, str]]:
    """(place, zone name) of each zone id. Read for every pipeline chunk with zone changes: on
    PostgreSQL one prepared statement instead of an ORM query compiled each time."""
    ids = sorted({z for z in zone_ids if z is not None})
    if connection.vendor == "postgresql":
        rows = prepared.rows(
            f"SELECT z.id, z.kind, z.floor_id, f.building_id, z.name FROM {prepared.table(Zone)} z "  # noqa: S608  # nosec B608
            f"JOIN {prepared.table(Floor)} f ON f.id = z.floor_id WHERE z.id = ANY(%s::bigint[])",
            [ids],
        )
    else:
        rows = Zone.objects.filter(pk__in=ids).values_list(
            "pk", "kind", "floor_id", "floor__building_id", "name"
        )
    return {
        pk: (geofence.Place(pk, kind, floor, building), name)
        for pk, kind, floor, building, name in rows
    }


def on_zone_changes(changes) -> None:
    """The pipeline's zone-change listener; runs inside its transaction (in a savepoint)."""
    config = configuration()
    if config.empty or not changes:
        return
    asset_ids = sorted({c.asset_id for c in changes})
    if connection.vendor == "postgresql":  # per pipeline chunk with zone changes: prepared
        rows = prepared.rows(
            f"SELECT id, status, asset_type_id, name FROM {prepared.table(Asset)} "  # noqa: S608  # nosec B608
            "WHERE id = ANY(%s::bigint[])",
            [asset_ids],
        )
    else:
        rows = Asset.objects.filter(pk__in=asset_ids).values_list(
            "pk", "status", "asset_type_id", "name"
        )
    assets = {pk: (status, type_id, name) for pk, status, type_id, name in rows}
    zones = places([c.left_zone_id for c in changes] + [c.entered_zone_id for c in changes])
    for change in changes:
        if change.asset_id not in assets:
            continue
        status, type_id, name = assets[change.asset_id]
        entered = zones.get(change.entered_zone_id)
        if config.rules and entered is not None:
            facts = rules.AssetFacts(status, type_id, entered[0].zone_id, entered[0].zone_kind)
            rule = rules.decide(config.rules, facts, rules.ENTER)
            if rule is not None:
                apply_rule(
                    change.asset_id,
                    rule,
                    facts,
                    trigger=rules.ENTER,
                    stay_id=change.stay_id,
                    at=change.entered_at,
                    zone_name=entered[1],
                )
        if config.fences:
            left = zones.get(change.left_zone_id)
            moment = change.entered_at or change.left_at or timezone.now()
            check_fences(
                config.fences,
                change.asset_id,
                name,
                type_id,
                left[0] if left else None,
                entered,
                moment,
            )
    moved_types = {assets[c.asset_id][1] for c in changes if c.asset_id in assets}
    if moved_types & config.par_type_ids:
        from workflows import par

        transaction.on_commit(lambda: par.check_par_levels(moved_types), robust=True)


def check_fences(fences, asset_id, asset_name, type_id, before, after, moment: datetime) -> int:
    """Raise (outside quiet hours) or clear each fence's alert for this move."""
    raised = 0
    after_place = after[0] if after else None
    for fence in fences:
        if fence.asset_type_id is not None and fence.asset_type_id != type_id:
            continue
        result = geofence.crossing(fence.spec(), before, after_place)
        kind = alerting.GEOFENCE_EXIT if fence.event == geofence.EXIT else alerting.GEOFENCE_ENTER
        subject = f"geofence:{fence.pk}:asset:{asset_id}"
        if result == geofence.RESTORED:
            alerting.clear(
                kind=kind, subject=subject, ended_at=moment, note="the asset is back in bounds"
            )
            continue
        if result != geofence.BREACHED:
            continue
        local = timezone.localtime(moment).time()
        if geofence.in_quiet_hours(local, fence.quiet_start, fence.quiet_end):
            log.info("geofence %s crossed by asset %s in quiet hours", fence.pk, asset_id)
            continue
        verb = "left" if fence.event == geofence.EXIT else "entered"
        where = after[1] if after else "an unknown place"
        alerting.report(
            kind=kind,
            subject=subject,
            title=f"{asset_name}: {fence.name}",
            severity=fence.severity,
            started_at=moment,
            message=f"{asset_name} {verb} the fenced area ({fence.name}); now in {where}",
            policy=EscalationPolicy.objects.filter(pk=fence.policy_id).first(),
            details={
                "geofence": fence.pk,
                "asset_id": asset_id,
                "zone_id": after_place.zone_id if after_place else None,
            },
        )
        raised += 1
    return raised


def evaluate_dwell_rules(now: datetime | None = None) -> int:
    """Apply dwell rules to assets that have stayed long enough; returns the changes made.
    A rule fires at most once per stay, and not at all once a person changed the asset's status
    during the stay (people win over rules)."""
    now = now or timezone.now()
    dwell = [r for r in configuration().rules if r.trigger == rules.DWELL]
    if not dwell:
        return 0
    shortest = min(r.dwell_s for r in dwell)
    zone_ids = {r.zone_id for r in dwell if r.zone_id is not None}
    kinds = {r.zone_kind for r in dwell if r.zone_id is None}
    stays = list(
        ZoneStay.objects.filter(
            Q(zone_id__in=zone_ids) | Q(zone__kind__in=kinds),
            left_at__isnull=True,
            entered_at__lte=now - timedelta(seconds=shortest),
        )
    )
    present = set(
        AssetLocation.objects.filter(
            asset_id__in=[s.asset_id for s in stays], presence=Presence.PRESENT
        ).values_list("asset_id", flat=True)
    )
    stays = [s for s in stays if s.asset_id in present]
    if not stays:
        return 0
    fired: dict[int, set[int]] = defaultdict(set)
    for stay_id, rule_id in StatusChange.objects.filter(
        stay_id__in=[s.pk for s in stays], rule__isnull=False
    ).values_list("stay_id", "rule_id"):
        fired[stay_id].add(rule_id)
    manual = defaultdict(list)
    for asset_id, at in StatusChange.objects.filter(
        asset_id__in=[s.asset_id for s in stays],
        rule__isnull=True,
        at__gte=min(s.entered_at for s in stays),
    ).values_list("asset_id", "at"):
        manual[asset_id].append(at)
    assets = {
        pk: (status, type_id)
        for pk, status, type_id in Asset.objects.filter(
            pk__in=[s.asset_id for s in stays]
        ).values_list("pk", "status", "asset_type_id")
    }
    zones = places(s.zone_id for s in stays)
    changed = 0
    for stay in stays:
        if any(at >= stay.entered_at for at in manual[stay.asset_id]):
            continue
        status, type_id = assets[stay.asset_id]
        place, zone_name = zones[stay.zone_id]
        facts = rules.AssetFacts(
            status,
            type_id,
            stay.zone_id,
            place.zone_kind,
            dwell_s=(now - stay.entered_at).total_seconds(),
            fired=frozenset(fired[stay.pk]),
        )
        rule = rules.decide(dwell, facts, rules.DWELL)
        if rule is None:
            continue
        if apply_rule(
            stay.asset_id,
            rule,
            facts,
            trigger=rules.DWELL,
            stay_id=stay.pk,
            at=stay.entered_at + timedelta(seconds=rule.dwell_s),
            zone_name=zone_name,
        ):
            changed += 1
    return changed
