"""Status changes people make to an asset (a nurse marks a pump in use or needing cleaning).
Who may set which status lives here; the change is audited by django-auditlog (the acting user
comes from its middleware) and pushed to the asset's floor map."""

from __future__ import annotations

from django.db import transaction

from hospital.roles import ADMIN, BIOMED, has_role
from tracking import live
from tracking.models import Asset, AssetLocation, AssetStatus

#: What anyone on the wards may set; equipment managers may also take assets out of service.
WARD_STATUSES = (AssetStatus.AVAILABLE, AssetStatus.IN_USE, AssetStatus.NEEDS_CLEANING)
MANAGER_STATUSES = (*WARD_STATUSES, AssetStatus.MAINTENANCE, AssetStatus.RETIRED)


class StatusNotAllowed(PermissionError):
    pass


def allowed_statuses(user) -> tuple[str, ...]:
    return MANAGER_STATUSES if has_role(user, BIOMED, ADMIN) else WARD_STATUSES


def change_status(asset: Asset, status: str, user) -> Asset:
    if status not in allowed_statuses(user):
        raise StatusNotAllowed(f"you may not set the status {status!r}")
    with transaction.atomic():
        asset = Asset.objects.select_for_update().get(pk=asset.pk)
        if asset.status == status:
            return asset
        asset.status = status
        asset.save(update_fields=["status"])
        location = AssetLocation.objects.filter(asset=asset).first()
        if location is not None:
            floor_id, presence = location.floor_id, location.presence
            transaction.on_commit(
                lambda: live.publish_status_change(asset.pk, floor_id, status, presence)
            )
    return asset
