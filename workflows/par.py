"""Par levels: available clean assets per unit and type against target and critical minimum;
the live board and alerts below the critical minimum."""

from __future__ import annotations

from django.utils import timezone

from tracking.models import AssetLocation, AssetStatus, Presence
from workflows import alerting, rules
from workflows.models import ParLevel


def subject(par: ParLevel) -> str:
    return f"par:{par.pk}"


def available_assets(par: ParLevel) -> list[dict]:
    """Assets counted toward the par: available, present, located in one of the unit's zones."""
    return list(
        AssetLocation.objects.filter(
            asset__asset_type_id=par.asset_type_id,
            asset__status=AssetStatus.AVAILABLE,
            presence=Presence.PRESENT,
            zone_id__in=par.zone_ids(),
        )
        .order_by("asset__name")
        .values("asset_id", "asset__name", "zone_id", "zone__name", "floor_id")
    )


def levels(asset_type_ids=None):
    queryset = ParLevel.objects.filter(is_active=True).select_related(
        "asset_type", "department", "zone_group", "policy"
    )
    if asset_type_ids is not None:
        queryset = queryset.filter(asset_type_id__in=list(asset_type_ids))
    return queryset


def board(asset_type_ids=None, department_id=None) -> list[dict]:
    """The par board: one row per active par level, worst first."""
    queryset = levels(asset_type_ids)
    if department_id is not None:
        queryset = queryset.filter(department_id=department_id)
    order = {rules.PAR_CRITICAL: 0, rules.PAR_BELOW_TARGET: 1, rules.PAR_OK: 2}
    rows = []
    for par in queryset:
        assets = available_assets(par)
        state = rules.par_state(len(assets), par.target, par.critical_min)
        alert = alerting.open_alert_of(alerting.PAR_CRITICAL, subject(par))
        rows.append(
            {
                "id": par.pk,
                "asset_type": par.asset_type.slug,
                "asset_type_name": par.asset_type.name,
                "unit": par.unit_name,
                "department_id": par.department_id,
                "zone_group_id": par.zone_group_id,
                "target": par.target,
                "critical_min": par.critical_min,
                "available": state.available,
                "shortfall": state.shortfall,
                "state": state.state,
                "alert_id": alert.pk if alert else None,
                "assets": [
                    {"id": a["asset_id"], "name": a["asset__name"], "zone": a["zone__name"]}
                    for a in assets
                ],
            }
        )
    rows.sort(key=lambda row: (order[row["state"]], row["asset_type"], row["unit"]))
    return rows


def check_par_levels(asset_type_ids=None, now=None) -> int:
    """Raise or clear the below-critical alert of each par level; returns how many are critical."""
    now = now or timezone.now()
    critical = 0
    for par in levels(asset_type_ids):
        count = len(available_assets(par))
        state = rules.par_state(count, par.target, par.critical_min)
        if state.alert_severity is None:
            alerting.clear(
                kind=alerting.PAR_CRITICAL,
                subject=subject(par),
                ended_at=now,
                note=f"{count} available again (critical minimum {par.critical_min})",
            )
            continue
        critical += 1
        alerting.report(
            kind=alerting.PAR_CRITICAL,
            subject=subject(par),
            title=f"{par.asset_type.name} par, {par.unit_name}",
            severity=state.alert_severity,
            started_at=now,
            value=float(count),
            message=(
                f"{count} available {par.asset_type.name.lower()}(s) in {par.unit_name}: below "
                f"the critical minimum of {par.critical_min} (target {par.target})"
            ),
            policy=par.policy,
            details={"par_level": par.pk, "target": par.target, "critical_min": par.critical_min},
        )
    return critical
